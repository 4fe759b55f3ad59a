using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Dropout: the SIMD mask equals the scalar rule Uniform(seed, i) >= p element by element on every path and
/// thread count, keep rates lie within statistical bounds, p = 0 is the identity, and the backward is checked
/// against the mask and against finite differences.
/// </summary>
[Collection("Simd")]
public class DropoutTests
{
    [Theory]
    [InlineData(1, 0.2f)]
    [InlineData(3, 0.5f)]
    [InlineData(17, 0.1f)]
    [InlineData(65, 0.2f)]
    [InlineData(257, 0.9f)]
    [InlineData(70001, 0.2f)] // parallel, with a tail
    public void MaskFollowsTheCounterRuleOnEveryPathAndThreadCount(int n, float p)
    {
        const ulong seed = 0xDEADBEEF12345UL;
        var x = Random(n, n);
        var dy = Random(n, n + 1);
        var dx0 = Random(n, n + 2);
        float scale = 1f / (1f - p);
        float[]? firstY = null, firstDx = null;
        ForEachConfig((path, threads) =>
        {
            var y = new float[n];
            var keep = Enumerable.Repeat((byte)7, n).ToArray();
            Dropout.Forward(x, y, keep, p, seed);
            for (int i = 0; i < n; i++)
            {
                bool kept = Dropout.Uniform(seed, (ulong)i) >= p;
                if (keep[i] != (kept ? 1 : 0)) Assert.Fail($"keep[{i}] = {keep[i]}, rule says {kept} ({path}, {threads} threads)");
                float expected = kept ? x[i] * scale : 0f;
                if (y[i] != expected) Assert.Fail($"y[{i}] = {y[i]}, expected {expected} ({path})");
            }
            var dx = (float[])dx0.Clone();
            Dropout.Backward(dy, keep, dx, p);
            for (int i = 0; i < n; i++)
            {
                double expected = dx0[i] + (keep[i] != 0 ? (double)dy[i] * scale : 0);
                Assert.True(Math.Abs(dx[i] - expected) <= 1e-6 * (1 + Math.Abs(expected)), $"dx[{i}] = {dx[i]}, expected {expected} ({path})");
            }
            if (firstY is null) { firstY = y; firstDx = dx; }
            else { BitEqual(firstY, y, "y across paths and thread counts"); BitEqual(firstDx!, dx, "dx across paths and thread counts"); }
        });
    }

    /// <summary>The short-row form attention uses on its probabilities gives Forward's values on every path, tails included.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(50)]
    [InlineData(65)]
    [InlineData(257)]
    public unsafe void ARowDropsAsForwardDoes(int n)
    {
        const ulong seed = 0x5EED5UL;
        var x = Random(n, n);
        var expected = new float[n];
        Dropout.Forward(x, expected, new byte[n], 0.3f, seed);
        ForEachConfig((path, threads) =>
        {
            var row = (float[])x.Clone();
            fixed (float* r = row) Dropout.Row(r, n, 0.3f, seed);
            BitEqual(expected, row, $"row of {n} ({path})");
        });
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.2f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    public void KeepRateIsWithinStatisticalBounds(float p)
    {
        const int n = 200_000;
        var x = new float[n]; var y = new float[n]; var keep = new byte[n];
        for (ulong seed = 1; seed <= 3; seed++)
        {
            Dropout.Forward(x, y, keep, p, seed * 0x1234567UL);
            double rate = keep.Count(b => b != 0) / (double)n;
            double sigma = Math.Sqrt(p * (1 - p) / n);
            Assert.True(Math.Abs(rate - (1 - p)) <= 5 * sigma, $"keep rate {rate} for p = {p}, seed {seed}: expected {1 - p} ± {5 * sigma}");
            // Neighbouring elements are independent: the rate of kept pairs is (1-p)^2 within bounds.
            int pairs = 0;
            for (int i = 0; i + 1 < n; i += 2) if (keep[i] != 0 && keep[i + 1] != 0) pairs++;
            double pairRate = pairs / (n / 2.0), q = (1 - p) * (1 - p);
            Assert.True(Math.Abs(pairRate - q) <= 5 * Math.Sqrt(q * (1 - q) / (n / 2.0)), $"kept-pair rate {pairRate}, expected {q}");
        }
    }

    [Fact]
    public void ZeroIsTheIdentityOneDropsAllAndSeedsDiffer()
    {
        const int n = 1000;
        var x = Random(n, 5);
        var y = new float[n]; var keep = new byte[n];
        Dropout.Forward(x, y, keep, 0f, 42);
        BitEqual(x, y, "p = 0");
        Assert.All(keep, b => Assert.Equal(1, b));
        var dx = new float[n];
        Dropout.Backward(x, keep, dx, 0f);
        BitEqual(x, dx, "backward at p = 0");

        Dropout.Forward(x, y, keep, 1f, 42);
        Assert.All(keep, b => Assert.Equal(0, b));
        Assert.All(y, v => Assert.Equal(0f, v));

        var keep2 = new byte[n];
        Dropout.Forward(x, y, keep, 0.5f, 1);
        Dropout.Forward(x, y, keep2, 0.5f, 2);
        int same = Enumerable.Range(0, n).Count(i => keep[i] == keep2[i]);
        Assert.InRange(same, 400, 600); // independent masks agree on about half the elements
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        // L = sum_i w_i * y_i(x). The mask depends only on (seed, i), so central differences in double with
        // eps = 1e-2 see the same mask; y is linear in x, so the only error is float rounding (tolerance 1e-3).
        const int n = 65; const float p = 0.3f, eps = 1e-2f; const ulong seed = 99;
        var x = Random(n, 1); var w = Random(n, 2);
        var y = new float[n]; var keep = new byte[n];
        double Loss()
        {
            Dropout.Forward(x, y, keep, p, seed);
            double s = 0;
            for (int i = 0; i < n; i++) s += (double)w[i] * y[i];
            return s;
        }
        Loss();
        var dx = new float[n];
        Dropout.Backward(w, keep, dx, p);
        for (int i = 0; i < n; i++)
        {
            float saved = x[i];
            x[i] = saved + eps; double up = Loss();
            x[i] = saved - eps; double down = Loss();
            x[i] = saved;
            double fd = (up - down) / (2.0 * eps);
            Assert.True(Math.Abs(dx[i] - fd) <= 1e-3, $"dx[{i}] = {dx[i]}, finite difference {fd}");
        }
    }

    [Fact]
    public void BadArgumentsThrowNamingLengths()
    {
        var x = new float[17]; var keep = new byte[17];
        var ex = Assert.Throws<ArgumentException>(() => Dropout.Forward(x, new float[16], keep, 0.1f, 1));
        Assert.Contains("16", ex.Message);
        Assert.Throws<ArgumentException>(() => Dropout.Forward(x, new float[17], new byte[16], 0.1f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(x, new float[17], keep, -0.1f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(x, new float[17], keep, 1.5f, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(x, new float[17], keep, float.NaN, 1));
        ex = Assert.Throws<ArgumentException>(() => Dropout.Backward(x, keep, new float[18], 0.1f));
        Assert.Contains("18", ex.Message);
    }
}
