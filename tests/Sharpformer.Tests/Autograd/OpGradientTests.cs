using Sharpformer.Kernels;
using Sharpformer.Autograd;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Autograd.GradCheck;

namespace Sharpformer.Tests.Autograd;

/// <summary>Every op's backward vs central finite differences, on small awkward shapes.</summary>
public class OpGradientTests
{
    readonly Random rng = new(42);

    [Theory]
    [InlineData(1, 3, 5, true)]
    [InlineData(7, 17, 3, true)]
    [InlineData(2, 5, 4, false)]
    public void Linear(int rows, int inF, int outF, bool bias)
    {
        var x = Random(rng, 1, 1, rows, inF);
        var w = Random(rng, 0.5f, outF, inF);
        var b = bias ? Random(rng, 0.5f, outF) : null;
        var r = Constant(rng, 1, rows, outF);
        Check(() => Ops.Dot(Ops.Linear(x, w, b), r), b is null ? [x, w] : [x, w, b]);
    }

    public static TheoryData<string, bool, float> FusedLinearCases => new()
    {
        // input transform, residual, dropout
        { "as-is", true, 0.3f }, { "as-is", false, 0f }, { "layernorm", false, 0f }, { "layernorm-nobias", true, 0.25f },
        { "gelu", true, 0.3f }, { "gelu-erf", false, 0f }, { "relu", true, 0f },
    };

    /// <summary>residual + dropout(f(x)·Wᵀ + b) against finite differences, for every input f and the fused residual and dropout.</summary>
    [Theory]
    [MemberData(nameof(FusedLinearCases))]
    public void FusedLinear(string transform, bool withResidual, float dropout)
    {
        int rows = 7, inF = 13, outF = 5;
        var x = Random(rng, 1.5f, rows, inF);
        if (transform == "relu") foreach (ref var v in x.Span) if (MathF.Abs(v) < 0.05f) v = 0.3f; // keep clear of the kink
        var w = Random(rng, 0.5f, outF, inF);
        var b = Random(rng, 0.5f, outF);
        var gamma = Random(rng, 1, inF);
        var beta = transform == "layernorm" ? Random(rng, 1, inF) : null;
        var residual = withResidual ? Random(rng, 1, rows, outF) : null;
        var r = Constant(rng, rows, outF);
        var input = transform switch
        {
            "as-is" => LinearInput.AsIs,
            "layernorm" or "layernorm-nobias" => LinearInput.LayerNorm(gamma, beta, 1e-5f),
            "gelu" => LinearInput.Activated(Sharpformer.Kernels.Activation.GeluTanh),
            "gelu-erf" => LinearInput.Activated(Sharpformer.Kernels.Activation.GeluErf),
            _ => LinearInput.Activated(Sharpformer.Kernels.Activation.Relu),
        };
        var inputs = new List<Tensor> { x, w, b };
        if (transform.StartsWith("layernorm", StringComparison.Ordinal)) inputs.Add(gamma);
        if (beta is not null) inputs.Add(beta);
        if (residual is not null) inputs.Add(residual);
        Check(() => Ops.Dot(Ops.Linear(x, w, b, input, residual, dropout, seed: 99), r), [.. inputs], eps: 1e-2f, atol: 3e-3, rtol: 2e-2);
        // x an intermediate whose gradient the op starts (the activation case then works in place).
        Check(() => Ops.Dot(Ops.Linear(Ops.Scale(x, 1.5f), w, b, input, residual, dropout, seed: 99), r), [.. inputs], eps: 1e-2f, atol: 3e-3, rtol: 2e-2);

        // The same values as the unfused ops (up to rounding).
        using (Graph.NoGrad())
        {
            var h = transform switch
            {
                "as-is" => x,
                "layernorm" or "layernorm-nobias" => Ops.LayerNorm(x, gamma, beta),
                "gelu" => Ops.Gelu(x),
                "gelu-erf" => Ops.GeluErf(x),
                _ => Ops.Relu(x),
            };
            var z = Ops.Dropout(Ops.Linear(h, w, b), dropout, 99);
            var expected = (residual is null ? z : Ops.Add(residual, z)).ToArray();
            var fused = Ops.Linear(x, w, b, input, residual, dropout, 99).ToArray();
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], fused[i], 1e-5f);
        }
    }

    [Fact]
    public void EmbeddingWithPositionsAndDropout()
    {
        var table = Random(rng, 1, 6, 4);
        var positions = Random(rng, 1, 5, 4);
        int[] ids = [5, 0, 5, 2, 3, 5];
        var r = Constant(rng, 2, 3, 4);
        Check(() => Ops.Dot(Ops.Embedding(ids, table, 2, 3, positions, 0.4f, seed: 7), r), [table, positions]);
        using (Graph.NoGrad())
        {
            var expected = Ops.Dropout(Ops.AddPositions(Ops.Embedding(ids, table, 2, 3), positions), 0.4f, 7).ToArray();
            Assert.Equal(expected, Ops.Embedding(ids, table, 2, 3, positions, 0.4f, 7).ToArray());
        }
    }

    [Theory]
    [InlineData(3, 17, true)]
    [InlineData(5, 4, false)]
    public void LayerNorm(int rows, int cols, bool bias)
    {
        var x = Random(rng, 2, rows, cols);
        var g = Random(rng, 1, cols);
        var b = bias ? Random(rng, 1, cols) : null;
        var r = Constant(rng, rows, cols);
        Check(() => Ops.Dot(Ops.LayerNorm(x, g, b), r), b is null ? [x, g] : [x, g, b], eps: 1e-2f, atol: 3e-3, rtol: 2e-2);
    }

    [Fact]
    public void GeluTanh()
    {
        var x = Random(rng, 3, 3, 11);
        var r = Constant(rng, 3, 11);
        Check(() => Ops.Dot(Ops.Gelu(x), r), [x]);
    }

    [Fact]
    public void GeluErf()
    {
        var x = Random(rng, 3, 3, 11);
        var r = Constant(rng, 3, 11);
        Check(() => Ops.Dot(Ops.GeluErf(x), r), [x]);
    }

    [Fact]
    public void Tanh()
    {
        var x = Random(rng, 3, 3, 11);
        var r = Constant(rng, 3, 11);
        Check(() => Ops.Dot(Ops.Tanh(x), r), [x]);
        using (Graph.NoGrad()) Assert.Equal(MathF.Tanh(x.Span[5]), Ops.Tanh(x).Span[5], 6);
    }

    [Fact]
    public void Relu()
    {
        var x = Random(rng, 3, 4, 9);
        foreach (ref var v in x.Span) if (MathF.Abs(v) < 0.05f) v = 0.3f; // keep clear of the kink
        var r = Constant(rng, 4, 9);
        Check(() => Ops.Dot(Ops.Relu(x), r), [x]);
    }

    [Fact]
    public void AddSameShapeAndBroadcast()
    {
        var a = Random(rng, 1, 2, 3, 5);
        var b = Random(rng, 1, 2, 3, 5);
        var bias = Random(rng, 1, 5);
        var table = Random(rng, 1, 3, 5);
        var r = Constant(rng, 2, 3, 5);
        Check(() => Ops.Dot(Ops.Add(Ops.Add(Ops.Add(a, b), bias), table), r), [a, b, bias, table]);
        Check(() => Ops.Dot(Ops.Add(a, a), r), [a]);
    }

    [Fact]
    public void AddPositions()
    {
        var x = Random(rng, 1, 2, 3, 5);
        var table = Random(rng, 1, 7, 5);
        var r = Constant(rng, 2, 3, 5);
        Check(() => Ops.Dot(Ops.AddPositions(x, table), r), [x, table]);
    }

    [Fact]
    public void ScaleAndDot()
    {
        var x = Random(rng, 1, 4, 6);
        var y = Random(rng, 1, 4, 6);
        Check(() => Ops.Dot(Ops.Scale(x, -1.7f), y), [x, y]);
    }

    [Fact]
    public void DropoutUsesItsMaskInBackward()
    {
        var x = Random(rng, 1, 3, 33);
        var r = Constant(rng, 3, 33);
        Check(() => Ops.Dot(Ops.Dropout(x, 0.3f, 1234), r), [x]);
        using (Graph.NoGrad())
        {
            var a = Ops.Dropout(x, 0.3f, 1234).ToArray();
            var b = Ops.Dropout(x, 0.3f, 1235).ToArray();
            Assert.NotEqual(a, b);
            int zeros = a.Count(v => v == 0);
            Assert.InRange(zeros, 10, 50); // about 30 of 99
        }
    }

    [Fact]
    public void Embedding()
    {
        var table = Random(rng, 1, 6, 4);
        int[] ids = [5, 0, 5, 2, 3, 5];
        var r = Constant(rng, 2, 3, 4);
        Check(() => Ops.Dot(Ops.Embedding(ids, table, 2, 3), r), [table]);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void SelfAttention(bool causal, bool lengths)
    {
        int batch = 2, time = 5, heads = 2, c = 6;
        var qkv = Random(rng, 1, batch, time, 3 * c);
        var r = Constant(rng, batch, time, c);
        int[] keyLengths = lengths ? [3, 5] : [];
        Check(() => Ops.Dot(Ops.SelfAttention(qkv, heads, causal, keyLengths), r), [qkv]);
    }

    /// <summary>Dropout on the attention probabilities: backward replays the forward's masks (a short and a tiled sequence).</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(9)]
    public void SelfAttentionWithDropout(int time)
    {
        int batch = 2, heads = 2, c = 8;
        var qkv = Random(rng, 1, batch, time, 3 * c);
        var r = Constant(rng, batch, time, c);
        Check(() => Ops.Dot(Ops.SelfAttention(qkv, heads, causal: true, dropout: 0.3f, seed: 11), r), [qkv]);
        using (Graph.NoGrad())
        {
            var plain = Ops.SelfAttention(qkv, heads, causal: true).ToArray();
            var dropped = Ops.SelfAttention(qkv, heads, causal: true, dropout: 0.3f, seed: 11).ToArray();
            Assert.Equal(dropped, Ops.SelfAttention(qkv, heads, causal: true, dropout: 0.3f, seed: 11).ToArray());
            Assert.NotEqual(plain, dropped);
            // Row 0 sees one key: with it dropped its output is 0, kept it is v / (1 − p).
            for (int b = 0; b < batch; b++)
                for (int d = 0; d < c; d++)
                {
                    float v = qkv.Span[b * time * 3 * c + 2 * c + d], o = dropped[b * time * c + d];
                    Assert.True(o == 0 || Math.Abs(o - v / 0.7f) < 1e-5f, $"row 0 of batch {b}: {o} is neither 0 nor {v / 0.7f}");
                }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CrossAttention(bool lengths)
    {
        int batch = 2, tq = 3, tk = 5, heads = 2, c = 4;
        var q = Random(rng, 1, batch, tq, c);
        var kv = Random(rng, 1, batch, tk, 2 * c);
        var r = Constant(rng, batch, tq, c);
        int[] keyLengths = lengths ? [5, 2] : [];
        Check(() => Ops.Dot(Ops.CrossAttention(q, kv, heads, keyLengths), r), [q, kv]);
    }

    [Fact]
    public void CrossEntropyWithIgnoredRows()
    {
        var logits = Random(rng, 2, 2, 3, 7);
        int[] targets = [6, -1, 0, 3, -1, 1];
        Check(() => Ops.CrossEntropy(logits, targets), [logits]);
        using (Graph.NoGrad())
        {
            // mean over the four counted rows, computed in double from the logits
            var s = logits.Span;
            double total = 0;
            for (int row = 0; row < 6; row++)
            {
                if (targets[row] < 0) continue;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < 7; j++) max = Math.Max(max, s[row * 7 + j]);
                for (int j = 0; j < 7; j++) sum += Math.Exp(s[row * 7 + j] - max);
                total += max + Math.Log(sum) - s[row * 7 + targets[row]];
            }
            Assert.Equal(total / 4, Ops.CrossEntropy(logits, targets).Item, 5);
        }
    }

    [Fact]
    public void CrossEntropyWithLabelSmoothing()
    {
        var logits = Random(rng, 2, 2, 3, 7);
        int[] targets = [6, -1, 0, 3, -1, 1];
        Check(() => Ops.CrossEntropy(logits, targets, 0.1f), [logits]);
    }

    [Fact]
    public void CrossEntropyAfterAnotherUseAccumulates()
    {
        // logits used twice: through Dot (gradient arrives first in backward order) and CrossEntropy
        var x = Random(rng, 1, 3, 5);
        var w = Random(rng, 1, 4, 5);
        var r = Constant(rng, 3, 4);
        int[] targets = [1, 3, -1];
        Check(() =>
        {
            var logits = Ops.Linear(x, w);
            return Ops.Add(Ops.CrossEntropy(logits, targets), Ops.Dot(logits, r));
        }, [x, w]);
    }

    [Fact]
    public void SharedInputAccumulatesFromEveryUse()
    {
        var x = Random(rng, 1, 2, 6);
        var w = Random(rng, 1, 6, 6);
        var r = Constant(rng, 2, 6);
        Check(() => Ops.Dot(Ops.Add(Ops.Linear(x, w), Ops.Gelu(x)), r), [x, w]);
    }

    [Fact]
    public void ReshapePrependRowTakePosition()
    {
        var x = Random(rng, 1, 2, 6);
        var cls = Random(rng, 1, 4);
        var r = Constant(rng, 1, 4);
        // x [2, 6] → [1, 3, 4] → class token in front → [1, 4, 4]; read positions 0 and 2
        Check(() =>
        {
            var seq = Ops.Reshape(x, 1, 3, 4);
            var withCls = Ops.PrependRow(seq, cls);
            var a = Ops.TakePosition(withCls, 0);
            var b = Ops.TakePosition(withCls, 2);
            return Ops.Add(Ops.Dot(Ops.Reshape(Ops.Add(a, b), 2, 2), Ops.Reshape(r, 2, 2)), Ops.Dot(withCls, withCls));
        }, [x, cls]);
        using (Graph.NoGrad())
        {
            var y = Ops.PrependRow(Ops.Reshape(x, 1, 3, 4), cls);
            Assert.Equal(cls.ToArray(), y.Span[..4].ToArray());
            Assert.Equal(x.ToArray(), y.Span[4..].ToArray());
        }
        Assert.Throws<ArgumentException>(() => Ops.Reshape(x, 5, 2));
    }
}
