using Sharpformer.Kernels;
using Sharpformer.Nn;

namespace Sharpformer.Tests.Kernels;

/// <summary>The probabilities the fused kernel never forms: against a naive softmax(QKᵀ/√d + mask) in double, rows summing to 1, and P·V equal to the fused kernel's output.</summary>
public class AttentionWeightsTests
{
    [Theory]
    [InlineData(1, 1, 1, 1, 4, false)]
    [InlineData(2, 3, 5, 5, 8, true)]
    [InlineData(2, 2, 3, 7, 5, true)]   // fewer queries than keys: bottom-right causal alignment (a decode step)
    [InlineData(3, 2, 17, 17, 16, false)]
    [InlineData(2, 4, 9, 13, 8, false)] // cross-attention shape
    [InlineData(2, 2, 6, 6, 8, true, 60.0)] // scores of several hundred (a sharp induction head): exp would overflow without the row max
    public void EqualNaiveSoftmaxAndReproduceTheFusedKernel(int batch, int heads, int tq, int tk, int d, bool causal, double queryStd = 1.0)
    {
        int c = heads * d;
        var rng = new InitRng(11);
        float[] q = new float[batch * tq * c], kv = new float[batch * tk * 2 * c];
        rng.Normal(q, queryStd);
        rng.Normal(kv, 1.0);
        int[] lengths = Enumerable.Range(0, batch).Select(b => b == 0 ? tk : Math.Max(1, tk - 2 * b)).ToArray();
        var shape = new AttentionShape(batch, heads, tq, tk, d, causal);
        var p = new float[batch * heads * tq * tk];
        AttentionWeights.Compute(shape, q, c, kv, 2 * c, p, lengths);

        var output = new float[batch * tq * c];
        var lse = new float[batch * heads * tq];
        Attention.Forward(shape, q, c, kv, kv.AsSpan(c), 2 * c, output, lse, lengths);

        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < tq; i++)
                {
                    var row = p.AsSpan(((b * heads + h) * tq + i) * tk, tk);
                    int visible = causal ? Math.Min(lengths[b], i + (tk - tq) + 1) : lengths[b];
                    var scores = new double[visible];
                    for (int j = 0; j < visible; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < d; e++) dot += (double)q[(b * tq + i) * c + h * d + e] * kv[(b * tk + j) * 2 * c + h * d + e];
                        scores[j] = dot / Math.Sqrt(d);
                    }
                    double max = visible > 0 ? scores.Max() : 0, sum = scores.Sum(x => Math.Exp(x - max));
                    for (int j = 0; j < tk; j++)
                    {
                        double want = j < visible ? Math.Exp(scores[j] - max) / sum : 0;
                        Assert.True(Math.Abs(row[j] - want) < 1e-5, $"b{b} h{h} i{i} j{j}: {row[j]} vs {want}");
                    }
                    if (visible > 0) Assert.Equal(1.0, row.ToArray().Sum(x => (double)x), 5);
                    // P·V is the fused kernel's output for this head.
                    for (int e = 0; e < d; e++)
                    {
                        double pv = 0;
                        for (int j = 0; j < tk; j++) pv += row[j] * kv[(b * tk + j) * 2 * c + c + h * d + e];
                        Assert.True(Math.Abs(pv - output[(b * tq + i) * c + h * d + e]) < 1e-4, $"P·V differs at b{b} h{h} i{i} e{e}");
                    }
                }
    }

    [Fact]
    public void ABufferOfTheWrongSizeIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => AttentionWeights.Compute(new AttentionShape(1, 1, 2, 2, 2, true), new float[4], 2, new float[8], 4, new float[3]));
        Assert.Contains("[1, 1, 2, 2]", e.Message);
    }
}
