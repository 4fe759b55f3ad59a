using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using LayerNorm = Sharpformer.Nn.LayerNorm;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// What a block records is softmax(QKᵀ/√d + mask) of its own queries and keys, recomputed here in double from the
/// block's weights and input, for every block the four models build (GPT, BERT, ViT, both translation decoders);
/// and attention rollout against a hand computation.
/// </summary>
public class AttentionRecorderTests
{
    const int B = 2, T = 5, S = 4, C = 8, H = 2, D = C / H;

    [Theory]
    [InlineData(NormPlacement.PreLN, true, false, false)]   // GPT
    [InlineData(NormPlacement.PostLN, false, false, true)]  // BERT: padded sequences
    [InlineData(NormPlacement.PreLN, false, false, false)]  // ViT
    [InlineData(NormPlacement.PostLN, true, true, false)]   // translation decoder, the 2017 paper's post-LN
    [InlineData(NormPlacement.PreLN, true, true, false)]    // translation decoder, pre-LN
    public void RecordedWeightsAreTheNaiveSoftmaxOfTheBlocksQueriesAndKeys(NormPlacement norm, bool causal, bool cross, bool padded)
    {
        var block = new TransformerBlock("b", new TransformerBlockOptions { Width = C, Heads = H, Norm = norm, Causal = causal, CrossAttention = cross, Activation = Activation.GeluErf });
        var rng = new InitRng(5);
        foreach (var p in block.Parameters)
        {
            rng.Normal(p.Value.Span, 0.4);
            if (p.Name.Contains("ln") && p.Name.EndsWith("weight", StringComparison.Ordinal)) foreach (ref var v in p.Value.Span) v += 1;
        }
        block.Eval();
        float[] x = new float[B * T * C], memory = new float[B * S * C];
        rng.Normal(x, 1.0);
        rng.Normal(memory, 1.0);
        int[] keyLengths = padded ? [T, 3] : [], memoryLengths = cross ? [S, 2] : [];

        var recorder = new AttentionRecorder();
        block.Recorder = recorder;
        using (Graph.NoGrad())
        {
            using var input = Tensor.FromArray(x, [B, T, C]);
            using var mem = Tensor.FromArray(memory, [B, S, C]);
            block.Forward(input, keyLengths, cross ? mem : null, memoryLengths);
        }
        Assert.Equal(cross ? 2 : 1, recorder.Maps.Count);

        var rows = Rows(x, B * T);
        var h = norm == NormPlacement.PreLN ? Norm(rows, block.Ln1) : rows;
        var qkv = Project(h, block.Attn.QkvProj);
        var self = Softmax(qkv, 0, qkv, C, T, T, causal, keyLengths);
        AssertEqual(self, recorder.Maps[0], T, T);
        if (!cross) return;

        // The block's state after self-attention, then the cross-attention's queries and the memory's keys.
        var attended = Project(Attend(self, qkv, 2 * C, T, T), block.Attn.OutProj);
        var x1 = rows.Select((r, i) => r.Zip(attended[i], (a, b) => a + b).ToArray()).ToArray();
        if (norm == NormPlacement.PostLN) x1 = Norm(x1, block.Ln1);
        var q = Project(norm == NormPlacement.PreLN ? Norm(x1, block.LnCross!) : x1, block.Cross!.QProj);
        var kv = Project(Rows(memory, B * S), block.Cross.KvProj);
        AssertEqual(Softmax(q, 0, kv, 0, T, S, false, memoryLengths), recorder.Maps[1], T, S);
        Assert.True(recorder.Maps[1].Cross);
    }

    [Fact]
    public void RolloutAveragesHeadsAddsTheResidualAndMultipliesUpTheLayers()
    {
        // Two layers of two heads over two tokens, worked by hand:
        // layer 0: heads [[1, 0], [.5, .5]] and [[0, 1], [.5, .5]] → mean [[.5, .5], [.5, .5]] → (A + I)/2 = [[.75, .25], [.25, .75]]
        // layer 1: heads [[1, 0], [1, 0]] twice → [[1, 0], [1, 0]] → [[1, 0], [.5, .5]]
        // rollout = layer1 · layer0 = [[.75, .25], [.5, .5]]
        var layer0 = new AttentionRecorder.Map("l0", false, 1, 2, 2, 2, [1, 0, .5f, .5f, 0, 1, .5f, .5f]);
        var layer1 = new AttentionRecorder.Map("l1", false, 1, 2, 2, 2, [1, 0, 1, 0, 1, 0, 1, 0]);
        var rollout = AttentionRollout.Compute([layer0, layer1]);
        Assert.Equal(new double[,] { { .75, .25 }, { .5, .5 } }, rollout);
        // One head only: layer 0 head 1 is [[0, 1], [.5, .5]] → [[.5, .5], [.25, .75]]; times [[1, 0], [.5, .5]].
        Assert.Equal(new double[,] { { .5, .5 }, { .375, .625 } }, AttentionRollout.Compute([layer0, layer1], [1]));
        for (int i = 0; i < 2; i++) Assert.Equal(1.0, rollout[i, 0] + rollout[i, 1], 12);
        Assert.Throws<ArgumentException>(() => AttentionRollout.Compute([new AttentionRecorder.Map("x", true, 1, 1, 2, 3, new float[6])]));
    }

    static double[][] Rows(float[] values, int n) => Enumerable.Range(0, n).Select(i => values.Skip(i * C).Take(C).Select(v => (double)v).ToArray()).ToArray();

    static double[][] Project(double[][] rows, Linear layer)
    {
        var w = layer.Weight.Value.Span.ToArray();
        var b = layer.Bias?.Value.Span.ToArray();
        int outputs = layer.OutFeatures, inputs = layer.InFeatures;
        return rows.Select(r => Enumerable.Range(0, outputs).Select(o =>
        {
            double sum = b?[o] ?? 0;
            for (int i = 0; i < inputs; i++) sum += r[i] * w[o * inputs + i];
            return sum;
        }).ToArray()).ToArray();
    }

    static double[][] Norm(double[][] rows, LayerNorm ln)
    {
        var g = ln.Weight.Value.Span.ToArray();
        var b = ln.Bias?.Value.Span.ToArray();
        return rows.Select(r =>
        {
            double mean = r.Average(), variance = r.Select(v => (v - mean) * (v - mean)).Average(), rstd = 1 / Math.Sqrt(variance + ln.Eps);
            return r.Select((v, i) => (v - mean) * rstd * g[i] + (b?[i] ?? 0)).ToArray();
        }).ToArray();
    }

    /// <summary>p[b, h, i, j] = softmax over visible j of q_i·k_j/√d (queries at column qAt of their rows, keys at kAt).</summary>
    static double[,,,] Softmax(double[][] q, int qAt, double[][] k, int kAt, int tq, int tk, bool causal, int[] lengths)
    {
        var p = new double[B, H, tq, tk];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < tq; i++)
                {
                    int visible = Math.Min(lengths.Length > 0 ? lengths[b] : tk, causal ? i + 1 + tk - tq : tk);
                    var scores = Enumerable.Range(0, visible).Select(j =>
                        Enumerable.Range(0, D).Sum(e => q[b * tq + i][qAt + h * D + e] * k[b * tk + j][kAt + h * D + e]) / Math.Sqrt(D)).ToArray();
                    double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
                    for (int j = 0; j < visible; j++) p[b, h, i, j] = Math.Exp(scores[j] - max) / sum;
                }
        return p;
    }

    /// <summary>P·V per head, back to rows [B·Tq, C] (values at column vAt of the key rows).</summary>
    static double[][] Attend(double[,,,] p, double[][] v, int vAt, int tq, int tk)
    {
        var rows = new double[B * tq][];
        for (int b = 0; b < B; b++)
            for (int i = 0; i < tq; i++)
            {
                rows[b * tq + i] = new double[C];
                for (int h = 0; h < H; h++)
                    for (int j = 0; j < tk; j++)
                        for (int e = 0; e < D; e++) rows[b * tq + i][h * D + e] += p[b, h, i, j] * v[b * tk + j][vAt + h * D + e];
            }
        return rows;
    }

    static void AssertEqual(double[,,,] expected, AttentionRecorder.Map map, int tq, int tk)
    {
        Assert.Equal((B, H, tq, tk), (map.Batch, map.Heads, map.Queries, map.Keys));
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < tq; i++)
                {
                    var row = map.Row(b, h, i);
                    for (int j = 0; j < tk; j++) Assert.True(Math.Abs(row[j] - expected[b, h, i, j]) < 1e-5, $"b{b} h{h} query {i} key {j}: {row[j]} vs {expected[b, h, i, j]}");
                    Assert.Equal(1.0, row.ToArray().Sum(v => (double)v), 5);
                }
    }
}
