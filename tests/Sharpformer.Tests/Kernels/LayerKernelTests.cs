using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>GELU (both forms), ReLU and LayerNorm against double-precision references on awkward sizes, both SIMD paths.</summary>
[Collection("Simd")]
public class LayerKernelTests
{
    static float[] Random(int n, int seed, float scale = 3)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    static double Erf(double x)
    {
        // High-precision series/continued fraction is overkill here: integrate exp(-t^2) with Simpson's rule.
        int n = 2000; double h = x / n, s = 0;
        for (int i = 0; i <= n; i++) { double t = i * h, w = i == 0 || i == n ? 1 : i % 2 == 1 ? 4 : 2; s += w * Math.Exp(-t * t); }
        return 2 / Math.Sqrt(Math.PI) * s * h / 3;
    }

    static readonly Func<double, double> GeluTanh = x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    static readonly Func<double, double> GeluErf = x => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(257)]
    [InlineData(70001)]
    public void ActivationsMatchReferenceAndDerivative(int n)
    {
        var saved = Simd.Path;
        try
        {
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
            {
                Simd.Path = path;
                var x = Random(n, n); var dy = Random(n, n + 1, 1);
                foreach (var (name, f, fwd, bwd) in new (string, Func<double, double>, SpanAction, GradAction)[]
                {
                    ("gelu-tanh", GeluTanh, Activations.GeluForward, Activations.GeluBackward),
                    ("gelu-erf", GeluErf, Activations.GeluErfForward, Activations.GeluErfBackward),
                    ("relu", v => Math.Max(v, 0), Activations.ReluForward, Activations.ReluBackward),
                })
                {
                    var y = new float[n]; var dx = Enumerable.Repeat(0.5f, n).ToArray();
                    fwd(x, y);
                    bwd(x, dy, dx);
                    for (int i = 0; i < Math.Min(n, 3000); i++)
                    {
                        double v = x[i], expected = f(v);
                        Assert.True(Math.Abs(y[i] - expected) <= 2e-6 * (1 + Math.Abs(expected)), $"{name}({v}) = {y[i]}, expected {expected} ({path})");
                        const double h = 1e-4;
                        double slope = name == "relu" ? (v > 0 ? 1 : 0) : (f(v + h) - f(v - h)) / (2 * h);
                        double grad = 0.5 + dy[i] * slope;
                        Assert.True(Math.Abs(dx[i] - grad) <= 2e-5 * (1 + Math.Abs(grad)), $"{name}'({v}): {dx[i]}, expected {grad} ({path})");
                    }
                }
            }
        }
        finally { Simd.Path = saved; }
    }

    delegate void SpanAction(ReadOnlySpan<float> x, Span<float> y);
    delegate void GradAction(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    [Theory]
    [InlineData(1, 3)]
    [InlineData(3, 17)]
    [InlineData(65, 257)]
    [InlineData(300, 128)]
    public void LayerNormMatchesReference(int rows, int cols)
    {
        var x = Random(rows * cols, 1); var g = Random(cols, 2, 1); var b = Random(cols, 3, 1); var dy = Random(rows * cols, 4, 1);
        foreach (int threads in new[] { 1, 2 })
        {
            var saved = Parallelism.ThreadCount;
            Parallelism.ThreadCount = threads;
            try
            {
                var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
                LayerNorm.Forward(x, g, b, y, mean, rstd, rows, cols);
                var dx = new float[rows * cols]; var dg = new float[cols]; var db = new float[cols];
                LayerNorm.Backward(dy, x, g, mean, rstd, dx, dg, db, rows, cols);
                var edg = new double[cols]; var edb = new double[cols];
                for (int r = 0; r < rows; r++)
                {
                    var row = x.Skip(r * cols).Take(cols).Select(v => (double)v).ToArray();
                    double m = row.Average(), rs = 1 / Math.Sqrt(row.Select(v => (v - m) * (v - m)).Average() + 1e-5);
                    double sg = 0, sgx = 0;
                    for (int c = 0; c < cols; c++)
                    {
                        double xh = (row[c] - m) * rs, gd = dy[r * cols + c] * g[c];
                        Assert.True(Math.Abs(y[r * cols + c] - (xh * g[c] + b[c])) < 1e-4, $"y[{r},{c}]");
                        sg += gd; sgx += gd * xh;
                        edg[c] += dy[r * cols + c] * xh; edb[c] += dy[r * cols + c];
                    }
                    for (int c = 0; c < cols; c++)
                    {
                        double xh = (row[c] - m) * rs, gd = dy[r * cols + c] * g[c];
                        double expected = rs * (gd - sg / cols - xh * sgx / cols);
                        Assert.True(Math.Abs(dx[r * cols + c] - expected) < 1e-4 * (1 + Math.Abs(expected)), $"dx[{r},{c}] = {dx[r * cols + c]}, expected {expected}");
                    }
                }
                for (int c = 0; c < cols; c++)
                {
                    Assert.True(Math.Abs(dg[c] - edg[c]) < 1e-4 * (1 + Math.Abs(edg[c])), $"dgamma[{c}]");
                    Assert.True(Math.Abs(db[c] - edb[c]) < 1e-4 * (1 + Math.Abs(edb[c])), $"dbeta[{c}]");
                }
            }
            finally { Parallelism.ThreadCount = saved; }
        }
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, new float[cols + 1], default, new float[rows * cols], new float[rows], new float[rows], rows, cols));
    }
}
