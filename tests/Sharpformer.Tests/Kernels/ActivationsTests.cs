using System.Runtime.Intrinsics;
using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// GELU (tanh and erf forms), ReLU and tanh against double references and their derivatives on awkward lengths,
/// both SIMD paths, 1 and 2 threads (results are bit-identical across all four), finite differences of the
/// kernels themselves, and the float exp they are built on.
/// </summary>
[Collection("Simd")]
public class ActivationsTests
{
    /// <summary>erf in double to ~1e-15: Taylor series for |z| &lt; 3, the erfc continued fraction beyond.</summary>
    internal static double Erf(double z)
    {
        double a = Math.Abs(z);
        if (a < 3)
        {
            double term = a, sum = a;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-18 * sum; n++)
            {
                term *= -a * a / n;
                sum += term / (2 * n + 1);
            }
            return Math.CopySign(2 / Math.Sqrt(Math.PI) * sum, z);
        }
        double k = a;
        for (int n = 60; n >= 1; n--) k = a + n / 2.0 / k;
        return Math.CopySign(1 - Math.Exp(-a * a) / (Math.Sqrt(Math.PI) * k), z);
    }

    /// <summary>Φ(x) = 0.5(1 + erf(x/√2)), computed as 0.5·erfc(−x/√2) without cancellation for x &lt; 0.</summary>
    static double Phi(double x)
    {
        double z = x / Math.Sqrt(2);
        if (z >= -3) return 0.5 * (1 + Erf(z));
        double a = -z, k = a;
        for (int n = 60; n >= 1; n--) k = a + n / 2.0 / k;
        return 0.5 * Math.Exp(-a * a) / (Math.Sqrt(Math.PI) * k);
    }

    const double S = 0.7978845608028654, C = 0.044715;
    static double GeluTanh(double x) => x / (1 + Math.Exp(-2 * S * (x + C * x * x * x))); // = 0.5x(1 + tanh u), no cancellation
    static double GeluTanhGrad(double x)
    {
        double t = Math.Tanh(S * (x + C * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * S * (1 + 3 * C * x * x);
    }
    static double GeluErf(double x) => x * Phi(x);
    static double GeluErfGrad(double x) => Phi(x) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    delegate void Fwd(ReadOnlySpan<float> x, Span<float> y);
    delegate void Bwd(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite);

    /// <summary>
    /// Name, kernels, reference and derivative, and the allowed error |got − want| ≤ rel·|want| + abs·|x|.
    /// tanh form: exp is good to 2 ulp but its argument −2u carries ~2 ulp of |u|, so the relative error grows
    /// to ~|u|·2.4e-7 in the far negative tail (|u| ≤ 25 here): 8e-6 relative. erf form: A&amp;S 7.1.26's
    /// |error| ≤ 1.5e-7 in erf gives ≤ 7.5e-8·|x| absolute. tanh: Cephes' polynomial (~1e-7) and exp's 2 ulp,
    /// a few roundings more: 5e-7 relative, derivative included (sech² computed from e^(−2|x|) in the tails).
    /// </summary>
    static readonly (string name, Fwd fwd, Bwd bwd, Func<double, double> f, Func<double, double> df, double rel, double abs)[] Kinds =
    [
        ("gelu-tanh", Activations.GeluForward, Activations.GeluBackward, GeluTanh, GeluTanhGrad, 8e-6, 1e-7),
        ("gelu-erf", Activations.GeluErfForward, Activations.GeluErfBackward, GeluErf, GeluErfGrad, 1e-6, 2e-7),
        ("relu", Activations.ReluForward, Activations.ReluBackward, x => Math.Max(x, 0), x => x > 0 ? 1 : 0, 0, 0),
        ("tanh", Activations.TanhForward, Activations.TanhBackward, Math.Tanh, x => 1 / (Math.Cosh(x) * Math.Cosh(x)), 5e-7, 0),
    ];

    static float[] Inputs(int n, int seed)
    {
        var x = Random(n, seed, scale: 6);
        float[] special = [0f, -0f, 1e-3f, -1e-3f, 0.5f, -0.5f, 3f, -3f, -5.5f, 10f, -10f, 20f, -20f, 1e-30f];
        for (int i = 0; i < Math.Min(n, special.Length); i++) x[(i * 7919) % n] = special[i];
        return x;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(17)]
    [InlineData(65)]
    [InlineData(257)]
    [InlineData(768)]
    [InlineData(70001)] // parallel, with a tail
    public void MatchReferenceAndDerivativeOnEveryPath(int n)
    {
        var x = Inputs(n, n);
        var dy = Random(n, n + 1);
        var dx0 = Random(n, n + 2);
        foreach (var k in Kinds)
        {
            float[]? firstY = null, firstDx = null;
            ForEachConfig((path, threads) =>
            {
                var y = new float[n];
                k.fwd(x, y);
                var dx = (float[])dx0.Clone();
                k.bwd(x, dy, dx, false);
                // Overwriting, into a separate buffer and in place over dy, is adding into zeros, bit for bit.
                var zeros = new float[n];
                k.bwd(x, dy, zeros, false);
                var over = Random(n, 5);
                k.bwd(x, dy, over, true);
                BitEqual(zeros, over, $"{k.name} overwrite ({path}, {threads} threads)");
                var inPlace = (float[])dy.Clone();
                k.bwd(x, inPlace, inPlace, true);
                BitEqual(zeros, inPlace, $"{k.name} in place ({path}, {threads} threads)");
                for (int i = 0; i < n; i++)
                {
                    double want = k.f(x[i]);
                    if (Math.Abs(y[i] - want) > k.rel * Math.Abs(want) + k.abs * Math.Abs(x[i]) + 1e-38)
                        Assert.Fail($"{k.name}({x[i]:R}) = {y[i]:R}, expected {want:R} ({path}, {threads} threads)");
                    double grad = k.df(x[i]), wantDx = dx0[i] + dy[i] * grad;
                    // dx adds dy·f'(x) to a value of order 1: float rounding of the sum (6e-8) plus the derivative's error.
                    if (Math.Abs(dx[i] - wantDx) > 1.2e-7 * Math.Abs(wantDx) + Math.Abs(dy[i]) * (2e-6 * Math.Abs(grad) + 4 * k.abs * (1 + Math.Abs(x[i]))) + 1e-38)
                        Assert.Fail($"{k.name}'({x[i]:R}): dx = {dx[i]:R}, expected {wantDx:R} ({path}, {threads} threads)");
                }
                // Every lane does the same IEEE operations on both paths, and chunks do not interact.
                if (firstY is null) { firstY = y; firstDx = dx; }
                else { BitEqual(firstY, y, $"{k.name} y ({path}, {threads} threads)"); BitEqual(firstDx!, dx, $"{k.name} dx ({path}, {threads} threads)"); }
            });
        }
    }

    [Fact]
    public void BackwardMatchesFiniteDifferencesOfTheKernel()
    {
        // Central differences of the float kernel, taken in double with eps = 1e-2: truncation error
        // eps²/6·|f'''| ≤ 2e-5 and rounding 2·6e-8·|f|/(2·eps) ≤ 4e-5; tolerance 1e-4. (ReLU skips |x| < eps.)
        var x = Inputs(257, 5);
        const float eps = 1e-2f;
        foreach (var k in Kinds)
        {
            var dx = new float[x.Length];
            k.bwd(x, Enumerable.Repeat(1f, x.Length).ToArray(), dx, false);
            var p = new float[1]; var q = new float[1];
            for (int i = 0; i < x.Length; i++)
            {
                if (k.name == "relu" && Math.Abs(x[i]) < eps) continue;
                k.fwd([x[i] + eps], p);
                k.fwd([x[i] - eps], q);
                double fd = ((double)p[0] - q[0]) / (2.0 * eps);
                Assert.True(Math.Abs(dx[i] - fd) <= 1e-4, $"{k.name}'({x[i]}) = {dx[i]}, finite difference {fd}");
            }
        }
    }

    [Fact]
    public void ResultDoesNotDependOnPosition()
    {
        // The same input everywhere gives the same output everywhere: vector lanes and the padded tail agree.
        const int n = 16 * 4 + 13;
        foreach (var k in Kinds)
            foreach (float v in new[] { -2.7f, 0.3f, 1.9f })
            {
                var x = Enumerable.Repeat(v, n).ToArray(); var y = new float[n]; var dx = new float[n];
                k.fwd(x, y);
                k.bwd(x, x, dx, false);
                BitEqual(Enumerable.Repeat(y[0], n).ToArray(), y, $"{k.name}({v}) by position");
                BitEqual(Enumerable.Repeat(dx[0], n).ToArray(), dx, $"{k.name}'({v}) by position");
            }
    }

    [Fact]
    public void FastExpIsWithinTwoUlpAndUnderflowsToZero()
    {
        const int n = 200_003;
        var xs = new float[n];
        for (int i = 0; i < n; i++) xs[i] = -87.3f + (88.3f + 87.3f) * i / (n - 1);
        double worst = 0;
        for (int i = 0; i + 16 <= n; i += 16)
        {
            var e512 = Lanes512.Exp(Vector512.Create(xs, i));
            var e256 = Lanes256.Exp(Vector256.Create(xs, i));
            for (int j = 0; j < 16; j++)
            {
                double want = Math.Exp(xs[i + j]);
                worst = Math.Max(worst, Math.Abs(e512[j] - want) / want);
                if (j < 8) Assert.Equal(e512[j], e256[j]);
            }
        }
        Assert.True(worst <= 2.4e-7, $"worst relative error {worst:E3} (2 ulp = 2.4e-7)");
        var low = Lanes512.Exp(Vector512.Create(-87.4f).WithElement(1, float.NegativeInfinity).WithElement(2, -1000f).WithElement(3, 0f));
        Assert.Equal(0f, low[0]); Assert.Equal(0f, low[1]); Assert.Equal(0f, low[2]); Assert.Equal(1f, low[3]);
    }

    [Fact]
    public void MismatchedLengthsThrowNamingThem()
    {
        var ex = Assert.Throws<ArgumentException>(() => Activations.GeluForward(new float[17], new float[16]));
        Assert.Contains("17", ex.Message); Assert.Contains("16", ex.Message);
        Assert.Throws<ArgumentException>(() => Activations.GeluErfBackward(new float[17], new float[17], new float[18]));
        Assert.Throws<ArgumentException>(() => Activations.ReluBackward(new float[17], new float[3], new float[17]));
    }
}
