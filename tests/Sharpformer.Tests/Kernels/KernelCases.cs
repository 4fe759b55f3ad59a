using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>Shared pieces of the kernel tests: seeded inputs and a loop over SIMD paths and thread counts.</summary>
static class KernelCases
{
    public static float[] Random(int n, int seed, double scale = 1, double offset = 0)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((r.NextDouble() * 2 - 1) * scale + offset);
        return x;
    }

    public static readonly SimdPath[] Paths = [SimdPath.Vector512, SimdPath.Vector256];

    /// <summary>Runs body for both SIMD paths and thread counts 1 and 2, restoring the process-wide settings after.</summary>
    public static void ForEachConfig(Action<SimdPath, int> body, int[]? threadCounts = null)
    {
        var saved = (Simd.Path, Parallelism.ThreadCount);
        try
        {
            foreach (var path in Paths)
                foreach (int threads in threadCounts ?? [1, 2])
                {
                    Simd.Path = path;
                    Parallelism.ThreadCount = threads;
                    body(path, threads);
                }
        }
        finally
        {
            Simd.Path = saved.Path;
            Parallelism.ThreadCount = saved.ThreadCount;
        }
    }

    /// <summary>Asserts two arrays are bit-identical, naming the first difference.</summary>
    public static void BitEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, expected bit-identical {expected[i]:R}");
    }
}
