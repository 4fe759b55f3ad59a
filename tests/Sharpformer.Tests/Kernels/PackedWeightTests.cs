using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Products with a packed weight (the decode steps' GEMM) against a naive double-accumulating reference, within
/// 1e-5 of each element's magnitude; and their rows bit-identical whatever the rows beside them, the vector
/// width or the thread count, which batched sampling relies on.
/// </summary>
[Collection("Simd")]
public class PackedWeightTests
{
    static float[] Run(PackedWeight w, float[] x, int m)
    {
        var y = new float[m * w.Columns];
        w.Multiply(x, m, y);
        return y;
    }

    // m covers the 4-row kernel alone (1..4), one 12-row strip padded (5..12), a strip plus the 4-row kernel (13..16)
    // and two strips (24); n covers whole panels, a partial last panel and odd panel counts per thread; k odd.
    [Theory]
    [InlineData(1, 7, 5)]
    [InlineData(3, 96, 33)]
    [InlineData(5, 161, 64)]
    [InlineData(10, 384, 128)]
    [InlineData(13, 33, 47)]
    [InlineData(16, 200, 31)]
    [InlineData(24, 65, 130)]
    public void MatchesReference(int m, int n, int k)
    {
        var weight = KernelCases.Random(n * k, 1);
        var bias = KernelCases.Random(n, 2);
        var x = KernelCases.Random(m * k, 3);
        foreach (var withBias in new[] { true, false })
        {
            var w = new PackedWeight(weight, withBias ? bias : default, n, k);
            KernelCases.ForEachConfig((path, threads) =>
            {
                var y = Run(w, x, m);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = withBias ? bias[j] : 0, mag = withBias ? Math.Abs(bias[j]) : 0;
                        for (int p = 0; p < k; p++)
                        {
                            double t = (double)x[i * k + p] * weight[j * k + p];
                            s += t; mag += Math.Abs(t);
                        }
                        Assert.True(Math.Abs(y[i * n + j] - s) <= 1e-5 * (mag + 1e-6), $"{path} {threads} threads, bias {withBias}: y[{i},{j}] = {y[i * n + j]}, expected {s}");
                    }
            }, [1, 2, 3]);
        }
    }

    [Fact]
    public void EachRowIsTheSameWhateverRowsRunBesideItAndOnEitherPath()
    {
        const int n = 200, k = 97;
        var w = new PackedWeight(KernelCases.Random(n * k, 4), KernelCases.Random(n, 5), n, k);
        var x = KernelCases.Random(16 * k, 6);
        float[][] alone = [];
        KernelCases.ForEachConfig((_, _) => alone = Enumerable.Range(0, 16).Select(i => Run(w, x[(i * k)..((i + 1) * k)], 1)).ToArray(), [1]);
        KernelCases.ForEachConfig((path, threads) =>
        {
            foreach (int m in new[] { 1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13, 15, 16 }) // every strip split of either path
            {
                var y = Run(w, x, m);
                for (int i = 0; i < m; i++) KernelCases.BitEqual(alone[i], y.AsSpan(i * n, n), $"{path}, {threads} threads, row {i} of {m}");
            }
        }, [1, 2, 3]);
    }

    [Fact]
    public void TheEpilogueGivesWhatTheSameFunctionGivesAfterwards()
    {
        const int m = 10, n = 200, k = 33;
        var w = new PackedWeight(KernelCases.Random(n * k, 7), KernelCases.Random(n, 8), n, k);
        var x = KernelCases.Random(m * k, 9);
        KernelCases.ForEachConfig((path, threads) =>
        {
            var y = new float[m * n]; var z = new float[m * n];
            w.Multiply(x, m, y, (v, o) => Activations.GeluForward(v, o), z);
            var expected = new float[m * n];
            Activations.GeluForward(Run(w, x, m), expected);
            KernelCases.BitEqual(Run(w, x, m), y, $"{path}, {threads} threads: y");
            KernelCases.BitEqual(expected, z, $"{path}, {threads} threads: gelu(y)");
        }, [1, 2, 3]);
        Assert.Throws<ArgumentException>(() => w.Multiply(x, m, new float[m * n], (v, o) => v.CopyTo(o), new float[5]));
    }

    [Fact]
    public void BadShapesThrowNamingThem()
    {
        var e = Assert.Throws<ArgumentException>(() => new PackedWeight(new float[10], default, 3, 4));
        Assert.Contains("[3, 4]", e.Message);
        var w = new PackedWeight(new float[12], default, 3, 4);
        Assert.Throws<ArgumentException>(() => w.Multiply(new float[7], 2, new float[6]));
        w.Dispose();
        Assert.Throws<ObjectDisposedException>(() => w.Multiply(new float[8], 2, new float[6]));
    }
}
