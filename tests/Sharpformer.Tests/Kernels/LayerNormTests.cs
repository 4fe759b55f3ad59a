using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// LayerNorm forward and backward against a double-accumulating reference on awkward shapes, with and
/// without beta, both SIMD paths, 1 and 2 threads (bit-identical across thread counts and repeats),
/// central finite differences for every input, and argument checks.
/// </summary>
[Collection("Simd")]
public class LayerNormTests
{
    public static TheoryData<int, int> Shapes
    {
        get
        {
            var data = new TheoryData<int, int>();
            foreach (int rows in new[] { 1, 3, 17, 65 })
                foreach (int cols in new[] { 1, 3, 17, 65, 257, 768 })
                    data.Add(rows, cols);
            data.Add(300, 128); // parallel: several row blocks
            data.Add(129, 385); // parallel, a partial last block and a column tail on both paths
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesDoubleReference(int rows, int cols)
    {
        var x = Random(rows * cols, 1, scale: 2, offset: 0.5); var g = Random(cols, 2, offset: 1); var b = Random(cols, 3);
        var dy = Random(rows * cols, 4); var dx0 = Random(rows * cols, 5); var dg0 = Random(cols, 6); var db0 = Random(cols, 7);

        // Reference in double: y, and the gradients added to the starting values.
        var ey = new double[rows * cols]; var edx = new double[rows * cols];
        var edg = dg0.Select(v => (double)v).ToArray(); var edb = db0.Select(v => (double)v).ToArray();
        var em = new double[rows]; var ers = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double m = 0, v = 0;
            for (int c = 0; c < cols; c++) m += x[r * cols + c];
            m /= cols;
            for (int c = 0; c < cols; c++) v += (x[r * cols + c] - m) * (x[r * cols + c] - m);
            double rs = 1 / Math.Sqrt(v / cols + 1e-5), sg = 0, sgx = 0;
            em[r] = m; ers[r] = rs;
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                double xh = (x[i] - m) * rs, gd = (double)g[c] * dy[i];
                ey[i] = xh * g[c] + b[c];
                sg += gd; sgx += gd * xh;
                edg[c] += dy[i] * xh; edb[c] += dy[i];
            }
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                double xh = (x[i] - m) * rs;
                edx[i] = dx0[i] + rs * ((double)g[c] * dy[i] - sg / cols - xh * sgx / cols);
            }
        }

        var firstOfPath = new Dictionary<SimdPath, float[]>();
        ForEachConfig((path, threads) =>
        {
            foreach (bool withBeta in new[] { true, false })
            {
                var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
                LayerNorm.Forward(x, g, withBeta ? b : default, y, mean, rstd, rows, cols);
                for (int r = 0; r < rows; r++)
                {
                    Assert.True(Math.Abs(mean[r] - em[r]) <= 1e-6 * (1 + Math.Abs(em[r])), $"mean[{r}] = {mean[r]}, expected {em[r]}");
                    Assert.True(Math.Abs(rstd[r] - ers[r]) <= 2e-6 * ers[r], $"rstd[{r}] = {rstd[r]}, expected {ers[r]}");
                }
                // xhat is O(1) (|xhat| ≤ √cols): float error ~1e-6·(|xhat|·|g| + |b|).
                for (int i = 0; i < y.Length; i++)
                {
                    double want = withBeta ? ey[i] : ey[i] - b[i % cols];
                    Assert.True(Math.Abs(y[i] - want) <= 2e-6 * (1 + Math.Abs(want)), $"y[{i / cols},{i % cols}] = {y[i]}, expected {want} ({path}, {threads} threads, beta {withBeta})");
                }

                var dx = (float[])dx0.Clone(); var dg = (float[])dg0.Clone(); var db = withBeta ? (float[])db0.Clone() : [];
                LayerNorm.Backward(dy, x, g, mean, rstd, dx, dg, db, rows, cols);
                for (int i = 0; i < dx.Length; i++)
                    Assert.True(Math.Abs(dx[i] - edx[i]) <= 1e-5 * (1 + Math.Abs(edx[i])), $"dx[{i / cols},{i % cols}] = {dx[i]}, expected {edx[i]} ({path}, {threads} threads)");
                // dgamma/dbeta sum over rows: float error grows with the row count.
                for (int c = 0; c < cols; c++)
                {
                    Assert.True(Math.Abs(dg[c] - edg[c]) <= 1e-6 * rows * (1 + Math.Abs(edg[c])), $"dgamma[{c}] = {dg[c]}, expected {edg[c]} ({path}, {threads} threads)");
                    if (withBeta) Assert.True(Math.Abs(db[c] - edb[c]) <= 1e-6 * rows * (1 + Math.Abs(edb[c])), $"dbeta[{c}] = {db[c]}, expected {edb[c]}");
                }

                if (!withBeta) continue;
                // Fixed row blocks: the same bits for any thread count and on a repeat.
                float[] all = [.. y, .. mean, .. rstd, .. dx, .. dg, .. db];
                if (firstOfPath.TryGetValue(path, out var first)) BitEqual(first, all, $"outputs across thread counts ({path})");
                else firstOfPath[path] = all;
                var dx2 = (float[])dx0.Clone(); var dg2 = (float[])dg0.Clone(); var db2 = (float[])db0.Clone();
                LayerNorm.Backward(dy, x, g, mean, rstd, dx2, dg2, db2, rows, cols);
                BitEqual(dg, dg2, "dgamma on a repeat");
                BitEqual(dx, dx2, "dx on a repeat");
            }
        });
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        // L = Σ w·y. Central differences of the float kernel taken in double with eps = 1e-2: the loss sums
        // 3·17 terms rounded at ~6e-8 each, so rounding contributes ≲ 3e-5 and truncation ~1e-5; tolerance 2e-4.
        const int rows = 3, cols = 17; const float eps = 1e-2f;
        var x = Random(rows * cols, 11); var g = Random(cols, 12, offset: 1); var b = Random(cols, 13); var w = Random(rows * cols, 14);
        double Loss()
        {
            var y = new float[rows * cols];
            LayerNorm.Forward(x, g, b, y, new float[rows], new float[rows], rows, cols);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)w[i] * y[i];
            return s;
        }
        var mean = new float[rows]; var rstd = new float[rows];
        LayerNorm.Forward(x, g, b, new float[rows * cols], mean, rstd, rows, cols);
        var dx = new float[rows * cols]; var dg = new float[cols]; var db = new float[cols];
        LayerNorm.Backward(w, x, g, mean, rstd, dx, dg, db, rows, cols);
        foreach (var (name, values, grad) in new[] { ("x", x, dx), ("gamma", g, dg), ("beta", b, db) })
            for (int i = 0; i < values.Length; i++)
            {
                float saved = values[i];
                values[i] = saved + eps; double up = Loss();
                values[i] = saved - eps; double down = Loss();
                values[i] = saved;
                double fd = (up - down) / (2.0 * eps);
                Assert.True(Math.Abs(grad[i] - fd) <= 2e-4, $"d{name}[{i}] = {grad[i]}, finite difference {fd}");
            }
    }

    [Fact]
    public void BadShapesThrowNamingThemBeforeWriting()
    {
        const int rows = 3, cols = 17;
        var x = new float[rows * cols]; var y = Enumerable.Repeat(9f, rows * cols).ToArray(); var g = new float[cols];
        var ex = Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, new float[cols + 1], default, y, new float[rows], new float[rows], rows, cols));
        Assert.Contains("[3, 17]", ex.Message); Assert.Contains("gamma 18", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x.AsSpan(1), g, default, y, new float[rows], new float[rows], rows, cols));
        Assert.Contains("x holds 50", ex.Message);
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, g, new float[3], y, new float[rows], new float[rows], rows, cols));
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, g, default, y, new float[rows - 1], new float[rows], rows, cols));
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, g, default, y, new float[rows], new float[rows], rows, 0));
        Assert.All(y, v => Assert.Equal(9f, v));
        var dg = Enumerable.Repeat(9f, cols).ToArray();
        ex = Assert.Throws<ArgumentException>(() => LayerNorm.Backward(new float[5], x, g, new float[rows], new float[rows], y, dg, default, rows, cols));
        Assert.Contains("dy holds 5", ex.Message);
        Assert.Throws<ArgumentException>(() => LayerNorm.Backward(x, x, g, new float[rows], new float[rows], y, new float[cols - 1], default, rows, cols));
        Assert.All(dg, v => Assert.Equal(9f, v));
    }
}
