using Sharpformer.Kernels;
using Sharpformer.Autograd;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using Sharpformer.Tests.Autograd;

namespace Sharpformer.Tests.Nn;

public class TransformerBlockTests
{
    static void Fill(TransformerBlock block, int seed)
    {
        var rng = new InitRng((ulong)seed);
        foreach (var p in block.Parameters)
        {
            rng.Normal(p.Value.Span, 0.3);
            if (p.Name.Contains("ln") && p.Name.EndsWith("weight")) foreach (ref var v in p.Value.Span) v += 1;
        }
    }

    [Fact]
    public void NamesFollowGpt2AndTheOracleFiles()
    {
        var block = new TransformerBlock("h.0", new TransformerBlockOptions { Width = 8, Heads = 2, CrossAttention = true });
        Assert.Equal(["h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
            "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_cross.weight", "h.0.ln_cross.bias",
            "h.0.cross_attn.q_proj.weight", "h.0.cross_attn.q_proj.bias", "h.0.cross_attn.kv_proj.weight",
            "h.0.cross_attn.kv_proj.bias", "h.0.cross_attn.c_proj.weight", "h.0.cross_attn.c_proj.bias",
            "h.0.ln_2.weight", "h.0.ln_2.bias", "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias",
            "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias"], block.Parameters.Select(p => p.Name));
        Assert.Equal([16, 8], block.FindParameter("h.0.cross_attn.kv_proj.weight")!.Shape);
        var noBias = new TransformerBlock("", new TransformerBlockOptions { Width = 8, Heads = 2, Bias = false });
        Assert.All(noBias.Parameters, p => Assert.EndsWith("weight", p.Name));
        Assert.Equal(6, noBias.Parameters.Count);
    }

    [Theory]
    [InlineData(NormPlacement.PreLN, Activation.GeluTanh, true, false)]
    [InlineData(NormPlacement.PostLN, Activation.Relu, false, false)]
    [InlineData(NormPlacement.PostLN, Activation.GeluErf, true, true)]
    [InlineData(NormPlacement.PreLN, Activation.Relu, true, true)]
    public void GradientsMatchFiniteDifferences(NormPlacement norm, Activation act, bool causal, bool cross)
    {
        var opts = new TransformerBlockOptions { Width = 8, Heads = 2, FeedForwardWidth = 12, Norm = norm, Activation = act, Causal = causal, CrossAttention = cross };
        var block = new TransformerBlock("blk", opts);
        Fill(block, 3);
        var rng = new Random(7);
        var x = GradCheck.Random(rng, 1, 2, 4, 8);
        var memory = cross ? GradCheck.Random(rng, 1, 2, 3, 8) : null;
        var r = GradCheck.Constant(rng, 2, 4, 8);
        int[] keyLengths = causal ? [] : [4, 2];
        int[] memoryLengths = cross ? [3, 2] : [];
        var inputs = new List<Tensor> { x };
        if (memory is not null) inputs.Add(memory);
        // a few parameters too (all of them would be slow): every weight's gradient is also checked by the oracle tests
        inputs.Add(block.Attn.QkvProj.Weight.Value);
        inputs.Add(block.Ln2.Weight.Value);
        if (cross) inputs.Add(block.Cross!.KvProj.Bias!.Value);
        GradCheck.Check(() => Ops.Dot(block.Forward(x, keyLengths, memory, memoryLengths), r), [.. inputs], eps: 1e-2f, atol: 4e-3, rtol: 2e-2);
    }

    [Fact]
    public void ResidualDropoutOnlyInTrainingAndSeedsAdvance()
    {
        var rngState = new DropoutRng(99);
        var block = new TransformerBlock("", new TransformerBlockOptions { Width = 8, Heads = 2, Dropout = 0.5f }, rngState);
        Fill(block, 1);
        using var x = GradCheck.Constant(new Random(1), 1, 3, 8);
        using (Graph.NoGrad())
        {
            block.Eval();
            var a = block.Forward(x).ToArray();
            Assert.Equal(99UL, rngState.State);
            Assert.Equal(a, block.Forward(x).ToArray());
            block.Train();
            var b = block.Forward(x).ToArray();
            ulong after = rngState.State;
            Assert.NotEqual(99UL, after);
            var c = block.Forward(x).ToArray();
            Assert.NotEqual(b, c);   // next call, next masks
            rngState.State = after;  // rewinding the state replays the masks
            Assert.Equal(c, block.Forward(x).ToArray());
        }
    }

    [Fact]
    public void MissingOrUnexpectedMemoryIsRejected()
    {
        var cross = new TransformerBlock("d", new TransformerBlockOptions { Width = 8, Heads = 2, CrossAttention = true });
        var plain = new TransformerBlock("e", new TransformerBlockOptions { Width = 8, Heads = 2 });
        using var x = new Tensor(1, 2, 8);
        using var m = new Tensor(2, 2, 8);
        Assert.Throws<ArgumentException>(() => cross.Forward(x));
        Assert.Throws<ArgumentException>(() => plain.Forward(x, memory: x));
        var e = Assert.Throws<ArgumentException>(() => cross.Forward(x, memory: m));
        Assert.Contains("[2, 2, 8]", e.Message);
        Assert.Throws<ArgumentException>(() => new TransformerBlock("", new TransformerBlockOptions { Width = 10, Heads = 3 }));
    }
}

public class PositionalEncodingTests
{
    [Fact]
    public void SinusoidsFollowTheTransformerPaper()
    {
        var pe = new PositionalEncoding("pe", 50, 6, PositionalEncodingKind.Sinusoidal);
        Assert.Empty(pe.Parameters);
        var t = pe.Table.Span;
        for (int pos = 0; pos < 50; pos++)
            for (int i = 0; i < 3; i++)
            {
                double angle = pos / Math.Pow(10000, 2.0 * i / 6);
                Assert.True(Math.Abs(Math.Sin(angle) - t[pos * 6 + 2 * i]) <= 1e-6, $"sin at {pos},{i}");
                Assert.True(Math.Abs(Math.Cos(angle) - t[pos * 6 + 2 * i + 1]) <= 1e-6, $"cos at {pos},{i}");
            }
        using var x = Tensor.FromArray(new float[2 * 3 * 6], 2, 3, 6);
        using var y = pe.Forward(x);
        Assert.Equal(t[..18].ToArray(), y.Span[18..].ToArray());
        using var tooLong = new Tensor(1, 51, 6);
        Assert.Throws<ArgumentException>(() => pe.Forward(tooLong));
    }

    [Fact]
    public void LearnedPositionsAreAParameter()
    {
        var pe = new PositionalEncoding("transformer.wpe", 8, 4, PositionalEncodingKind.Learned);
        Assert.Equal("transformer.wpe.weight", Assert.Single(pe.Parameters).Name);
        Assert.Same(pe.Weight!.Value, pe.Table);
    }
}
