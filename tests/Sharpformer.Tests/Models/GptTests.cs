using Sharpformer.Autograd;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

public class GptTests
{
    static readonly GptConfig Tiny = new() { VocabSize = 23, BlockSize = 16, NLayer = 2, NHead = 2, NEmbd = 16, Bias = true };

    static int[] Tokens(int n, int vocab, int salt = 0)
    {
        var t = new int[n];
        for (int i = 0; i < n; i++) t[i] = (i * 7 + salt * 3 + 1) % vocab;
        return t;
    }

    [Fact]
    public void ParameterNamesFollowHuggingFaceGpt2()
    {
        var model = new Gpt(Tiny);
        var names = model.Parameters.Select(p => p.Name).ToArray();
        Assert.Equal("transformer.wte.weight", names[0]);
        Assert.Equal("transformer.wpe.weight", names[1]);
        Assert.Equal(["transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias", "transformer.h.0.attn.c_attn.weight",
            "transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.attn.c_proj.bias",
            "transformer.h.0.ln_2.weight", "transformer.h.0.ln_2.bias", "transformer.h.0.mlp.c_fc.weight",
            "transformer.h.0.mlp.c_fc.bias", "transformer.h.0.mlp.c_proj.weight", "transformer.h.0.mlp.c_proj.bias"], names[2..14]);
        Assert.Equal(["transformer.ln_f.weight", "transformer.ln_f.bias"], names[^2..]);
        Assert.Equal(2 + 12 * 2 + 2, names.Length);
        Assert.Equal([16 * 3, 16], model.Parameters[4].Shape);
        Assert.True(model.Parameters[0].Decay);
        Assert.False(model.Parameters[3].Decay);
    }

    [Fact]
    public void ParameterCountMatchesNanoGptFormula()
    {
        var model = new Gpt(Tiny);
        int c = 16, v = 23, l = 2, t = 16;
        long perBlock = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c);
        long all = v * c + t * c + l * perBlock + 2 * c;
        Assert.Equal(all, model.CountParameters(nonEmbedding: false));
        Assert.Equal(all - t * c, model.ParameterCount);
        Assert.Equal(6 * (all - t * c) + 12L * l * 2 * 8 * 10, model.FlopsPerToken(10));
    }

    [Fact]
    public void DecodeWithCacheMatchesFullForward()
    {
        var model = new Gpt(Tiny with { Activation = Activation.GeluErf }, seed: 5);
        var idx = Tokens(11, Tiny.VocabSize);
        using var full = model.Logits(idx, 1, idx.Length);
        using var cache = model.NewCache();
        var got = model.Decode(idx.AsSpan(0, 6), cache).ToArray();
        AssertRow(full.Span.Slice(5 * 23, 23), got);
        for (int t = 6; t < idx.Length; t++)
        {
            got = model.Decode(idx.AsSpan(t, 1), cache).ToArray();
            AssertRow(full.Span.Slice(t * 23, 23), got);
        }
        Assert.Equal(11, cache.Length);
        cache.Reset();
        got = model.Decode(idx.AsSpan(0, 3), cache).ToArray();
        AssertRow(full.Span.Slice(2 * 23, 23), got);
    }

    static void AssertRow(ReadOnlySpan<float> expected, float[] actual)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f + 1e-4f * Math.Abs(expected[i]), $"logit {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void LossIsNearLogVocabAtInitAndBackwardFillsGrads()
    {
        var model = new Gpt(Tiny);
        var idx = Tokens(2 * 8, Tiny.VocabSize);
        var tgt = Tokens(2 * 8, Tiny.VocabSize, 1);
        using (Graph.Record())
        {
            var loss = model.Loss(idx, tgt, 2, 8);
            Assert.InRange(loss.Item, MathF.Log(23) - 0.2f, MathF.Log(23) + 0.2f);
            loss.Backward();
        }
        foreach (var p in model.Parameters)
            Assert.True(p.Grad.Span.ToArray().Any(g => g != 0), p.Name);
    }
}
