using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Tests.Models;

/// <summary>
/// The encoder-decoder: config round trip and parameter count, padding invariance, and the cached decoders
/// (greedy, beam search) against naive ones that recompute the whole prefix every step.
/// </summary>
public class Seq2SeqTests
{
    const int Vocab = 23;

    static Seq2SeqConfig Small(string norm = "post", bool tie = true, string positions = "sinusoidal") => new()
    {
        VocabSize = Vocab, DModel = 16, Heads = 2, EncoderLayers = 2, DecoderLayers = 2, FfnDim = 24, Dropout = 0,
        MaxLength = 24, Norm = norm, TieEmbeddings = tie, Positions = positions, Activation = Activation.Relu,
    };

    static int[][] RandomSources(int count, int seed, int maxLength = 7)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, r.Next(1, maxLength + 1)).Select(_ => r.Next(4, Vocab)).ToArray()).ToArray();
    }

    [Theory]
    [InlineData("post", true, "sinusoidal")]
    [InlineData("pre", false, "learned")]
    public void ConfigRoundTripsAndCountsParameters(string norm, bool tie, string positions)
    {
        var config = Small(norm, tie, positions);
        var json = JsonSerializer.Serialize<ModelConfig>(config, ModelJsonContext.Default.ModelConfig);
        Assert.Contains("\"kind\": \"seq2seq\"", json);
        var back = Assert.IsType<Seq2SeqConfig>(JsonSerializer.Deserialize(json, ModelJsonContext.Default.ModelConfig));
        Assert.Equal(config, back);
        var model = back.Create(3);
        Assert.Equal(config.ParameterElements(), model.CountAllParameters());
        Assert.Equal(tie, model.FindParameter("shared.weight") is not null);
        Assert.Equal(norm == "pre", model.FindParameter("decoder.layer_norm.weight") is not null);
    }

    [Fact]
    public void BadConfigsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => (Small() with { Norm = "middle" }).Validate());
        Assert.Throws<ArgumentException>(() => (Small() with { Positions = "rotary" }).Validate());
        Assert.Throws<ArgumentException>(() => (Small() with { LabelSmoothing = 1f }).Validate());
        Assert.Throws<ArgumentException>(() => (Small() with { Heads = 3 }).Validate());
    }

    [Theory]
    [InlineData("post")]
    [InlineData("pre")]
    public void PaddingOnEitherSideChangesNothing(string norm)
    {
        var model = new Seq2Seq(Small(norm), 5);
        model.Eval();
        int[] source = [5, 9, 7], target = [0, 11, 12, 13];
        using var alone = model.Logits(source, [3], target, 1, 3, 4);
        // the same pair padded to S = 6, T = 7, beside a longer pair
        var src = new int[2 * 6];
        var tgt = new int[2 * 7];
        src.AsSpan().Fill(SubwordTokenizer.PadId);
        tgt.AsSpan().Fill(SubwordTokenizer.PadId);
        source.CopyTo(src, 0);
        target.CopyTo(tgt, 0);
        int[] other = [4, 5, 6, 7, 8, 9];
        other.CopyTo(src, 6);
        other.Concat([10]).ToArray().CopyTo(tgt, 7);
        using var padded = model.Logits(src, [3, 6], tgt, 2, 6, 7);
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < Vocab; v++)
            {
                float a = alone.Span[t * Vocab + v], b = padded.Span[t * Vocab + v];
                Assert.True(Math.Abs(a - b) <= 1e-5f * (1 + Math.Abs(a)), $"logit [{t}, {v}]: {a} alone, {b} padded");
            }
    }

    [Fact]
    public void LossIsLabelSmoothedCrossEntropyOfTheShiftedTarget()
    {
        var model = new Seq2Seq(Small() with { LabelSmoothing = 0.2f }, 2);
        model.Eval();
        var batch = new TranslationBatch(2, 8, 8);
        batch.Fill(new (int[], int[])[] { ([5, 6], [7, 8, 9]), ([10], [11]) });
        Assert.Equal(2, batch.SourceTime);
        Assert.Equal(4, batch.TargetTime);
        Assert.Equal([0, 7, 8, 9, 0, 11, 1, 1], batch.TargetInputs.ToArray());
        Assert.Equal([7, 8, 9, 2, 11, 2, -1, -1], batch.TargetOutputs.ToArray());
        using var loss = model.Loss(batch);
        using var logits = model.Logits(batch.SourceIds, batch.SourceLengths, batch.TargetInputs, 2, 2, 4);
        double total = 0;
        int counted = 0;
        var logp = new double[Vocab];
        for (int r = 0; r < 8; r++)
        {
            int gold = batch.TargetOutputs[r];
            if (gold < 0) continue;
            Seq2Seq.LogSoftmax(logits.Span.Slice(r * Vocab, Vocab), logp);
            for (int v = 0; v < Vocab; v++) total -= (0.2 / Vocab + (v == gold ? 0.8 : 0)) * logp[v];
            counted++;
        }
        Assert.Equal(total / counted, loss.Item, 4);
    }

    /// <summary>Next-token log-probabilities after a prefix, by running the whole model on it.</summary>
    static double[] FullStep(Seq2Seq model, int[] source, IReadOnlyList<int> prefix)
    {
        int[] input = [SubwordTokenizer.BosId, .. prefix];
        using var logits = model.Logits(source, [source.Length], input, 1, source.Length, input.Length);
        var logp = new double[Vocab];
        Seq2Seq.LogSoftmax(logits.Span.Slice((input.Length - 1) * Vocab, Vocab), logp);
        return logp;
    }

    static int[] NaiveGreedy(Seq2Seq model, int[] source, TranslationSearch search)
    {
        int limit = search.MaxTokens(source.Length, model.Config.MaxLength);
        var output = new List<int>();
        while (true)
        {
            var logp = FullStep(model, source, output);
            int next = output.Count == limit - 1 ? SubwordTokenizer.EosId : Array.IndexOf(logp, logp.Max());
            if (next == SubwordTokenizer.EosId) return [.. output];
            output.Add(next);
        }
    }

    /// <summary>fairseq's rules, one sentence at a time, with plain lists and a sort.</summary>
    static int[] NaiveBeam(Seq2Seq model, int[] source, TranslationSearch search)
    {
        int k = search.BeamSize, limit = search.MaxTokens(source.Length, model.Config.MaxLength);
        var beams = new List<(int[] Tokens, double Score)> { ([], 0) };
        var finished = new List<(int[] Tokens, double Score)>();
        for (int step = 0; beams.Count > 0 && finished.Count < k; step++)
        {
            var candidates = new List<(double Score, int Beam, int Token)>();
            for (int b = 0; b < beams.Count; b++)
            {
                var logp = FullStep(model, source, beams[b].Tokens);
                for (int v = 0; v < Vocab; v++)
                    if (step < limit - 1 || v == SubwordTokenizer.EosId) candidates.Add((beams[b].Score + logp[v], b, v));
            }
            var top = candidates.OrderByDescending(c => c.Score).ThenBy(c => c.Beam).ThenBy(c => c.Token).Take(2 * k).ToList();
            var next = new List<(int[] Tokens, double Score)>();
            for (int j = 0; j < top.Count; j++)
            {
                var (score, beam, token) = top[j];
                if (token == SubwordTokenizer.EosId)
                {
                    if (j < k && finished.Count < k) finished.Add((beams[beam].Tokens, search.Normalise(score, beams[beam].Tokens.Length + 1)));
                }
                else if (next.Count < k) next.Add(([.. beams[beam].Tokens, token], score));
            }
            beams = next;
        }
        return finished.Count == 0 ? [] : finished.MaxBy(f => f.Score).Tokens;
    }

    [Theory]
    [InlineData("post")]
    [InlineData("pre")]
    public void CachedGreedyEqualsFullRecomputation(string norm)
    {
        var model = new Seq2Seq(Small(norm, tie: norm == "post", positions: norm == "post" ? "sinusoidal" : "learned"), 7);
        var sources = RandomSources(9, 1);
        var search = new TranslationSearch { MaxLengthA = 1, MaxLengthB = 3, SentencesPerBatch = 4 };
        var cached = model.Translate(sources, search);
        model.Eval();
        for (int i = 0; i < sources.Length; i++) Assert.Equal(NaiveGreedy(model, sources[i], search), cached[i]);
        Assert.Contains(cached, c => c.Length > 0);
    }

    [Theory]
    [InlineData(3, LengthPenaltyKind.Fairseq, 1.0)]
    [InlineData(4, LengthPenaltyKind.Gnmt, 0.6)]
    [InlineData(2, LengthPenaltyKind.Fairseq, 0.0)]
    public void CachedBeamSearchEqualsNaiveBeamSearch(int beam, LengthPenaltyKind kind, double alpha)
    {
        var model = new Seq2Seq(Small("pre"), 11);
        var sources = RandomSources(7, 2);
        var search = new TranslationSearch { BeamSize = beam, PenaltyKind = kind, LengthPenalty = alpha, MaxLengthA = 1, MaxLengthB = 2, SentencesPerBatch = 3 };
        var cached = model.Translate(sources, search);
        model.Eval();
        for (int i = 0; i < sources.Length; i++) Assert.Equal(NaiveBeam(model, sources[i], search), cached[i]);
    }

    [Fact]
    public void BeamOfOneEqualsGreedy()
    {
        var model = new Seq2Seq(Small(), 13);
        var sources = RandomSources(8, 3);
        var greedy = model.Translate(sources, new TranslationSearch { MaxLengthB = 4 });
        model.Eval();
        for (int i = 0; i < sources.Length; i++)
            Assert.Equal(greedy[i], NaiveBeam(model, sources[i], new TranslationSearch { BeamSize = 1, MaxLengthB = 4 }));
    }

    [Fact]
    public void WrongBatchKindAndBadIdsAreRefused()
    {
        var model = new Seq2Seq(Small(), 1);
        Assert.Throws<ArgumentException>(() => model.Loss(new TokenBatch(1, 2)));
        Assert.Throws<ArgumentException>(() => model.Logits([99], [1], [0], 1, 1, 1));
        Assert.Throws<ArgumentException>(() => model.Translate([[]]));
        Assert.Throws<ArgumentException>(() => model.Translate([[5]], new TranslationSearch { BeamSize = 0 }));
    }
}
