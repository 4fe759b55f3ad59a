using Sharpformer.Kernels;
using Sharpformer.Autograd;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

// Bit-identical comparisons: run serially with the tests that flip the process-wide SIMD path.
[Collection("Simd")]
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

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // decode steps through the packed block weights
    public void DecodeWithCacheMatchesFullForward(bool packed)
    {
        var model = new Gpt(Tiny with { Activation = Activation.GeluErf }, seed: 5);
        var idx = Tokens(11, Tiny.VocabSize);
        using var full = model.Logits(idx, 1, idx.Length);
        using var weights = packed ? model.PackForDecode() : null;
        using var cache = model.NewCache(1, weights);
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

    /// <summary>One plain AdamW step over every parameter (decay on matrices only), as nanoGPT's optimizer.</summary>
    static void AdamStep(Gpt model, List<(float[] m, float[] v)> state, int step, float lr)
    {
        if (state.Count == 0) foreach (var p in model.Parameters) state.Add((new float[p.Length], new float[p.Length]));
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            var p = model.Parameters[i];
            Sharpformer.Kernels.Optim.AdamW(p.Value.Span, p.Grad.Span, state[i].m, state[i].v, lr, 0.9f, 0.95f, 1e-8f, p.Decay ? 0.1f : 0f, step);
        }
    }

    [Fact]
    public void TinyModelOverfitsOneBatch()
    {
        var model = new Gpt(Tiny with { Bias = false, Activation = Activation.GeluErf }, seed: 3);
        var idx = Tokens(2 * 12, Tiny.VocabSize, 2);
        var tgt = Tokens(2 * 12, Tiny.VocabSize, 5);
        var state = new List<(float[], float[])>();
        float loss = float.NaN;
        for (int step = 1; step <= 150; step++)
        {
            model.ZeroGrad();
            using var g = Graph.Record();
            var l = model.Loss(idx, tgt, 2, 12);
            loss = l.Item;
            l.Backward();
            AdamStep(model, state, step, 1e-2f);
        }
        Assert.True(loss < 0.1f, $"loss after 150 steps: {loss}");
    }

    static (float loss, float[][] grads) TrainTwoSteps(int threads)
    {
        int saved = Sharpformer.Kernels.Parallelism.ThreadCount;
        Sharpformer.Kernels.Parallelism.ThreadCount = threads;
        try
        {
            var model = new Gpt(Tiny with { Dropout = 0.2f }, seed: 11);
            var idx = Tokens(3 * 16, Tiny.VocabSize, 1);
            var tgt = Tokens(3 * 16, Tiny.VocabSize, 4);
            var state = new List<(float[], float[])>();
            float loss = 0;
            for (int step = 1; step <= 2; step++)
            {
                model.ZeroGrad();
                using var g = Graph.Record();
                var l = model.Loss(idx, tgt, 3, 16);
                loss = l.Item;
                l.Backward();
                if (step == 1) AdamStep(model, state, step, 1e-3f);
            }
            return (loss, model.Parameters.Select(p => p.Grad.ToArray()).ToArray());
        }
        finally { Sharpformer.Kernels.Parallelism.ThreadCount = saved; }
    }

    [Fact]
    public void TrainingIsBitIdenticalForTheSameSeedAndThreadCount()
    {
        var a = TrainTwoSteps(2);
        var b = TrainTwoSteps(2);
        Assert.Equal(BitConverter.SingleToInt32Bits(a.loss), BitConverter.SingleToInt32Bits(b.loss));
        for (int i = 0; i < a.grads.Length; i++) Assert.Equal(a.grads[i], b.grads[i]);
    }

    [Fact]
    public void ActivationCheckpointingGivesTheSameLossesAndGradients()
    {
        // With dropout, so the recomputation must replay the same masks; three steps so AdamW moves the weights.
        (float[] losses, float[][] grads, ulong dropoutSeed) Run(bool checkpointing)
        {
            var model = new Gpt(Tiny with { Dropout = 0.2f }, seed: 5) { ActivationCheckpointing = checkpointing };
            var losses = new float[3];
            for (int step = 0; step < 3; step++)
            {
                model.ZeroGrad();
                using (var g = Graph.Record())
                {
                    var loss = model.Loss(Tokens(32, Tiny.VocabSize, step), Tokens(32, Tiny.VocabSize, step + 1), 2, 16);
                    losses[step] = loss.Item;
                    loss.Backward();
                }
                foreach (var p in model.Parameters) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(p.Grad.Span, -0.05f, p.Value.Span, p.Value.Span);
            }
            return (losses, model.Parameters.Select(p => p.Grad.ToArray()).ToArray(), model.DropoutState);
        }
        var plain = Run(false);
        var recomputed = Run(true);
        Assert.Equal(plain.losses, recomputed.losses);
        Assert.Equal(plain.dropoutSeed, recomputed.dropoutSeed);
        for (int i = 0; i < plain.grads.Length; i++) Assert.Equal(plain.grads[i], recomputed.grads[i]);
        Assert.Contains(plain.grads, g => g.Any(x => x != 0));
    }

    [Fact]
    public void DropoutStateReplaysTheSameMasks()
    {
        var model = new Gpt(Tiny with { Dropout = 0.3f }, seed: 2);
        var idx = Tokens(16, Tiny.VocabSize);
        var tgt = Tokens(16, Tiny.VocabSize, 1);
        ulong seed = model.DropoutState;
        float first, second, eval;
        using (Graph.NoGrad()) first = model.Loss(idx, tgt, 1, 16).Item;
        Assert.NotEqual(seed, model.DropoutState);
        using (Graph.NoGrad()) second = model.Loss(idx, tgt, 1, 16).Item;
        Assert.NotEqual(first, second);
        model.DropoutState = seed;
        using (Graph.NoGrad()) Assert.Equal(first, model.Loss(idx, tgt, 1, 16).Item);
        model.Eval();
        ulong before = model.DropoutState;
        using (Graph.NoGrad()) eval = model.Loss(idx, tgt, 1, 16).Item;
        Assert.Equal(before, model.DropoutState);
        Assert.NotEqual(first, eval);
    }

    [Fact]
    public void InitFollowsGpt2()
    {
        var model = new Gpt(new GptConfig { VocabSize = 64, BlockSize = 64, NLayer = 8, NHead = 4, NEmbd = 64 }, seed: 1);
        static double Std(ReadOnlySpan<float> s)
        {
            double sum = 0, sq = 0;
            foreach (var v in s) { sum += v; sq += (double)v * v; }
            double mean = sum / s.Length;
            return Math.Sqrt(sq / s.Length - mean * mean);
        }
        Assert.InRange(Std(model.Wte.Weight.Value.Span), 0.019, 0.021);
        Assert.InRange(Std(model.Blocks[0].Mlp.Fc.Weight.Value.Span), 0.019, 0.021);
        double residual = 0.02 / Math.Sqrt(16);
        Assert.InRange(Std(model.Blocks[3].Mlp.Proj.Weight.Value.Span), residual * 0.95, residual * 1.05);
        Assert.InRange(Std(model.Blocks[3].Attn.OutProj.Weight.Value.Span), residual * 0.95, residual * 1.05);
        Assert.All(model.Blocks[2].Attn.QkvProj.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(model.LnF.Weight.Value.ToArray(), v => Assert.Equal(1f, v));
        var again = new Gpt(model.Config, seed: 1);
        Assert.Equal(model.Wte.Weight.Value.ToArray(), again.Wte.Weight.Value.ToArray());
        var other = new Gpt(model.Config, seed: 2);
        Assert.NotEqual(model.Wte.Weight.Value.ToArray(), other.Wte.Weight.Value.ToArray());
    }

    [Fact]
    public void BadInputsAreRejectedClearly()
    {
        var model = new Gpt(Tiny);
        Assert.Contains("block size", Assert.Throws<ArgumentException>(() => model.Logits(new int[17], 1, 17)).Message);
        Assert.Contains("token 23", Assert.Throws<ArgumentException>(() => model.Logits([1, 23], 1, 2)).Message);
        Assert.Contains("target 99", Assert.Throws<ArgumentException>(() => model.Loss([1, 2], [3, 99], 1, 2)).Message);
        Assert.Throws<ArgumentException>(() => model.Logits([1, 2, 3], 2, 2));
        using var cache = model.NewCache();
        model.Decode(new int[16], cache);
        Assert.Contains("block size", Assert.Throws<ArgumentException>(() => model.Decode([1], cache)).Message);
        Assert.Throws<ArgumentException>(() => new Gpt(Tiny with { NHead = 3 }));
    }

    [Fact]
    public void BatchedDecodeMatchesSingleStreams()
    {
        var model = new Gpt(Tiny, seed: 9);
        int[] a = [1, 2, 3, 4], b = [7, 8, 9, 10];
        using var both = model.NewCache(streams: 2);
        var got = model.Decode([.. a[..3], .. b[..3]], both).ToArray();
        got = model.Decode([a[3], b[3]], both).ToArray();
        using var single = model.NewCache();
        var ea = model.Decode(a, single).ToArray();
        single.Reset();
        var eb = model.Decode(b, single).ToArray();
        AssertRow(ea, got[..23]);
        AssertRow(eb, got[23..]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // decode steps through the packed block weights
    public void StreamsCopiedIntoOneCacheDecodeBitForBitAsAlone(bool packed)
    {
        // A larger model than Tiny, so a decode step's products split over threads as a real one's do.
        var model = new Gpt(new GptConfig { VocabSize = 65, BlockSize = 32, NLayer = 2, NHead = 4, NEmbd = 128, Bias = true }, seed: 3);
        int[][] contexts = [[1, 2, 3, 4, 5], [9, 8, 7, 6, 5], [30, 31, 32, 33, 34]];
        int[] next = [11, 12, 13];
        using var weights = packed ? model.PackForDecode() : null;
        using var all = model.NewCache(3, weights);
        using var one = model.NewCache(1, weights);
        var expected = new List<float[]>();
        for (int s = 0; s < 3; s++)
        {
            one.Reset();
            model.Decode(contexts[s], one);
            all.CopyStream(one, s);
            expected.Add(model.Decode([next[s]], one).ToArray());
        }
        var got = model.Decode(next, all).ToArray();
        for (int s = 0; s < 3; s++) Assert.Equal(expected[s], got[(s * 65)..((s + 1) * 65)]);
        Assert.Throws<ArgumentException>(() => one.CopyStream(all, 0));
        Assert.Throws<ArgumentException>(() => new Gpt(model.Config, seed: 4).NewCache(1, weights ?? model.PackForDecode()));
    }
}
