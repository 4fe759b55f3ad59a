using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>AdamW against a hand-written double reference over several steps; SumOfSquares against a double sum.</summary>
[Collection("Simd")]
public class OptimTests
{
    /// <summary>torch.optim.AdamW's update written out in double, from the same float hyper-parameters.</summary>
    static void ReferenceStep(double[] p, float[] g, double[] m, double[] v, double lr, double b1, double b2, double eps, double wd, int t)
    {
        double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
        for (int i = 0; i < p.Length; i++)
        {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
            p[i] -= lr * (m[i] / bc1) / (Math.Sqrt(v[i] / bc2) + eps);
        }
    }

    [Theory]
    [InlineData(1, 0.1f)]
    [InlineData(3, 0f)]
    [InlineData(17, 0.1f)]
    [InlineData(65, 0.01f)]
    [InlineData(257, 0.1f)]
    [InlineData(100_003, 0.1f)] // parallel, with a tail
    public void AdamWMatchesDoubleReferenceOverSteps(int n, float weightDecay)
    {
        const float lr = 1e-2f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
        const int steps = 5;
        var p0 = Random(n, 1);
        var grads = Enumerable.Range(0, steps).Select(s => Random(n, 10 + s, scale: s == 2 ? 1e-6 : 1)).ToArray(); // one step of tiny gradients: eps matters
        if (n > 3) grads[1][3] = 0f;

        var rp = p0.Select(x => (double)x).ToArray(); var rm = new double[n]; var rv = new double[n];
        var refs = new List<double[]>();
        for (int t = 1; t <= steps; t++)
        {
            ReferenceStep(rp, grads[t - 1], rm, rv, lr, beta1, beta2, eps, weightDecay, t);
            refs.Add((double[])rp.Clone());
        }

        float[]? first = null;
        ForEachConfig((path, threads) =>
        {
            var p = (float[])p0.Clone(); var m = new float[n]; var v = new float[n];
            for (int t = 1; t <= steps; t++)
            {
                Optim.AdamW(p, grads[t - 1], m, v, lr, beta1, beta2, eps, weightDecay, t);
                // Each step moves p by about lr; float rounding of p (~6e-8 per step) and of the step dominate.
                for (int i = 0; i < n; i++)
                    if (Math.Abs(p[i] - refs[t - 1][i]) > 1e-6 * (1 + Math.Abs(refs[t - 1][i])))
                        Assert.Fail($"step {t}: p[{i}] = {p[i]}, expected {refs[t - 1][i]} ({path}, {threads} threads)");
            }
            for (int i = 0; i < n; i++)
            {
                Assert.True(Math.Abs(m[i] - rm[i]) <= 1e-6 * (1 + Math.Abs(rm[i])), $"m[{i}] = {m[i]}, expected {rm[i]}");
                Assert.True(Math.Abs(v[i] - rv[i]) <= 1e-6 * Math.Abs(rv[i]) + 1e-12, $"v[{i}] = {v[i]}, expected {rv[i]}");
            }
            // Element-wise, so the path and the thread count change nothing at all.
            if (first is null) first = p; else BitEqual(first, p, $"params ({path}, {threads} threads)");
        });
    }

    [Fact]
    public void FirstStepIsSignTimesLearningRateAfterDecay()
    {
        // At t = 1 with zero moments: m̂ = g and v̂ = g², so p1 = p0(1 - lr·wd) - lr·g/(|g| + eps).
        float[] p = [1f, -2f, 0.5f]; float[] g = [0.3f, -4f, 0f];
        var m = new float[3]; var v = new float[3];
        Optim.AdamW(p, g, m, v, lr: 0.1f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.5f, step: 1);
        Assert.Equal(1 * 0.95 - 0.1, p[0], 6);
        Assert.Equal(-2 * 0.95 + 0.1, p[1], 6);
        Assert.Equal(0.5 * 0.95, p[2], 6);
    }

    [Fact]
    public void ScalarTailDoesTheVectorLanesArithmetic()
    {
        // Every element gets the same inputs, so every output must be bit-identical wherever it falls.
        const int n = 16 * 3 + 7;
        foreach (var path in Paths)
        {
            var saved = Simd.Path;
            Simd.Path = path;
            try
            {
                var p = Enumerable.Repeat(0.37f, n).ToArray(); var g = Enumerable.Repeat(-0.0123f, n).ToArray();
                var m = Enumerable.Repeat(0.011f, n).ToArray(); var v = Enumerable.Repeat(3.3e-4f, n).ToArray();
                Optim.AdamW(p, g, m, v, 3e-4f, 0.9f, 0.99f, 1e-8f, 0.1f, 7);
                foreach (var a in new[] { p, m, v }) BitEqual(Enumerable.Repeat(a[0], n).ToArray(), a, $"lanes vs tail ({path})");
            }
            finally { Simd.Path = saved; }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(17)]
    [InlineData(65)]
    [InlineData(257)]
    [InlineData(32768 + 3)]
    [InlineData(3_000_007)]
    public void SumOfSquaresMatchesDoubleAndIgnoresThreadCount(int n)
    {
        var x = Random(n, n, scale: 3);
        double expected = 0;
        foreach (var t in x) expected += (double)t * t;
        var byPath = new Dictionary<SimdPath, double>();
        ForEachConfig((path, threads) =>
        {
            double s = Optim.SumOfSquares(x);
            Assert.True(Math.Abs(s - expected) <= 1e-12 * expected, $"sum of squares {s}, expected {expected} ({path}, {threads} threads)");
            if (byPath.TryGetValue(path, out double first)) Assert.Equal(BitConverter.DoubleToInt64Bits(first), BitConverter.DoubleToInt64Bits(s));
            else byPath[path] = s;
        }, threadCounts: [1, 2, 3]);
    }

    [Fact]
    public void BadArgumentsThrowNamingLengths()
    {
        var p = new float[5];
        var ex = Assert.Throws<ArgumentException>(() => Optim.AdamW(p, new float[4], new float[5], new float[5], 1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1));
        Assert.Contains("grad 4", ex.Message);
        Assert.Throws<ArgumentException>(() => Optim.AdamW(p, new float[5], new float[5], new float[6], 1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Optim.AdamW(p, new float[5], new float[5], new float[5], 1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 0));
    }
}
