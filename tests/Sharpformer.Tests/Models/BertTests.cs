using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>
/// BERT against PyTorch (files from tools/oracle/make_bert_references.py, Hugging Face names, so the name
/// mapping is exercised too), padding independence, and the masking rule.
/// </summary>
public class BertTests
{
    static SafetensorsFile Open(string name) => SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", name + ".safetensors"));

    /// <summary>
    /// OracleTests' tolerance (relative 1e-4), plus 1e-8: the key bias's gradient is zero in exact maths (softmax
    /// ignores a shift shared by all keys), so both sides hold only rounding noise there.
    /// </summary>
    static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) =>
        Sharpformer.Tests.Oracle.OracleTests.AssertClose(expected, actual, what, floor: 1e-8);

    static BertConfig SmallConfig(JsonElement c) => new()
    {
        VocabSize = c.GetProperty("vocab_size").GetInt32(), HiddenSize = c.GetProperty("hidden_size").GetInt32(),
        NumHiddenLayers = c.GetProperty("num_hidden_layers").GetInt32(), NumAttentionHeads = c.GetProperty("num_attention_heads").GetInt32(),
        IntermediateSize = c.GetProperty("intermediate_size").GetInt32(), MaxPositionEmbeddings = c.GetProperty("max_position_embeddings").GetInt32(),
        TypeVocabSize = c.GetProperty("type_vocab_size").GetInt32(), LayerNormEps = c.GetProperty("layer_norm_eps").GetSingle(),
        PreLayerNorm = c.GetProperty("pre_layer_norm").GetBoolean(), NumLabels = c.GetProperty("num_labels").GetInt32(),
        HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0,
    };

    [Theory]
    [InlineData("bert_small_postln")]
    [InlineData("bert_small_preln")]
    [InlineData("bert_small_classifier")]
    public void MatchesPyTorchHiddenStatesLogitsLossAndEveryGradient(string file)
    {
        using var f = Open(file);
        var config = SmallConfig(JsonDocument.Parse(f.Metadata["config"]).RootElement);
        var model = new Bert(config);
        Assert.Equal(f.Tensors.Count(t => t.Name.StartsWith("param.", StringComparison.Ordinal)), HuggingFaceBert.Export(model).Count);
        Assert.Equal(config.ParameterElements(), model.CountAllParameters());
        HuggingFaceBert.Import(model, (name, destination) => f.ReadFloats("param." + name, destination));

        int[] ids = f.ReadInts("ids"), segments = f.ReadInts("segments"), lengths = f.ReadInts("lengths");
        int B = f["ids"].Shape[0], T = f["ids"].Shape[1];
        AssertClose(f.ReadFloats("hidden"), model.HiddenStates(ids, segments, lengths, B, T).Span, "hidden");

        Batch batch;
        if (config.IsClassifier)
        {
            AssertClose(f.ReadFloats("logits"), model.ClassLogits(ids, segments, lengths, B, T).Span, "logits");
            var b = new LabeledSequenceBatch(B, T);
            ids.CopyTo(b.Ids, 0); segments.CopyTo(b.Segments, 0); lengths.CopyTo(b.Lengths, 0); f.ReadInts("labels").CopyTo(b.Labels, 0);
            batch = b;
        }
        else
        {
            AssertClose(f.ReadFloats("logits"), model.MaskedLmLogits(ids, segments, lengths, B, T).Span, "logits");
            var b = new MaskedLmBatch(B, T);
            ids.CopyTo(b.Ids, 0); segments.CopyTo(b.Segments, 0); lengths.CopyTo(b.Lengths, 0); f.ReadInts("targets").CopyTo(b.Targets, 0);
            batch = b;
        }
        using (Graph.Record())
        {
            var loss = model.Loss(batch);
            AssertClose(f.ReadFloats("loss"), [loss.Item], "loss");
            loss.Backward();
        }
        foreach (var (name, grad, _) in HuggingFaceBert.Export(model, gradients: true))
            AssertClose(f.ReadFloats("grad." + name), grad, "grad." + name);
    }

    static BertConfig Tiny(bool preLn = false, int labels = 0) => new()
    {
        VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 10,
        PreLayerNorm = preLn, NumLabels = labels, HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f,
    };

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 3)]
    public void EachSequenceOfAPaddedBatchGetsTheOutputsItGetsAlone(bool preLn, int labels)
    {
        var model = new Bert(Tiny(preLn, labels), seed: 5);
        model.Eval();
        int[][] sequences = [[2, 7, 8, 9, 10, 11, 3], [2, 12, 3], [2, 13, 14, 15, 3, 16, 17, 3]];
        int[][] segmentsOf = [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]];
        int B = sequences.Length, T = 8;
        var ids = new int[B * T];
        var segments = new int[B * T];
        var lengths = new int[B];
        for (int b = 0; b < B; b++)
        {
            sequences[b].CopyTo(ids, b * T);
            segmentsOf[b].CopyTo(segments, b * T);
            lengths[b] = sequences[b].Length;
        }
        Func<int[], int[], int[], int, int, Tensor> head = labels > 0 ? (i, s, l, b, t) => model.ClassLogits(i, s, l, b, t) : (i, s, l, b, t) => model.MaskedLmLogits(i, s, l, b, t);
        var together = head(ids, segments, lengths, B, T).Span.ToArray();
        for (int b = 0; b < B; b++)
        {
            int n = sequences[b].Length;
            var alone = head(sequences[b], segmentsOf[b], [n], 1, n).Span;
            int width = labels > 0 ? labels : model.Config.VocabSize * n;
            var mine = together.AsSpan(b * (labels > 0 ? labels : model.Config.VocabSize * T), width);
            for (int i = 0; i < width; i++) Assert.True(Math.Abs(mine[i] - alone[i]) <= 1e-5f, $"sequence {b}, value {i}: {mine[i]} padded vs {alone[i]} alone");
        }
    }

    [Fact]
    public void MaskingChoosesFifteenPercentOfOrdinaryTokensSplitEightyTenTenAndNeverSpecials()
    {
        int[] specials = [0, 1, 2, 3, 4];
        var rule = new MaskingRule(MaskId: 4, VocabSize: 100, SpecialIds: specials.ToHashSet());
        var rnd = new Random(3);
        var sequences = Enumerable.Range(0, 50).Select(_ =>
        {
            int n = rnd.Next(5, 32);
            var s = new int[n];
            for (int t = 0; t < n; t++) s[t] = rnd.Next(5, 100);
            s[0] = 2;
            s[n / 2] = 3; // a [SEP] inside, as a text pair has
            s[^1] = 3;
            return s;
        }).ToArray();
        var source = new MaskedLmSequences(sequences, batchSize: 8, maxLength: 32, rule);
        var rng = new Rng(11);
        long ordinary = 0, chosen = 0, masked = 0, random = 0, kept = 0;
        for (int step = 0; step < 400; step++)
        {
            var b = (MaskedLmBatch)source.Next(ref rng);
            for (int r = 0; r < b.Batch; r++)
                for (int t = 0; t < b.Time; t++)
                {
                    int i = r * b.Time + t, target = b.Targets[i];
                    if (t >= b.Lengths[r])
                    {
                        Assert.Equal(-1, target);
                        Assert.Equal(0, b.Ids[i]);
                        continue;
                    }
                    bool special = target < 0 && specials.Contains(b.Ids[i]) && b.Ids[i] != 4;
                    if (target < 0)
                    {
                        if (!special) ordinary++;
                        continue;
                    }
                    Assert.DoesNotContain(target, specials);
                    ordinary++;
                    chosen++;
                    if (b.Ids[i] == 4) masked++;
                    else if (b.Ids[i] == target) kept++;
                    else { random++; Assert.DoesNotContain(b.Ids[i], specials); }
                }
        }
        double rate = chosen / (double)ordinary;
        Assert.InRange(rate, 0.14, 0.16);
        Assert.InRange(masked / (double)chosen, 0.78, 0.82);
        Assert.InRange(random / (double)chosen, 0.085, 0.115);
        Assert.InRange(kept / (double)chosen, 0.085, 0.115);
    }

    [Fact]
    public void TheSameGeneratorStateDrawsTheSameMasks()
    {
        var rule = new MaskingRule(4, 50, new HashSet<int> { 0, 1, 2, 3, 4 });
        int[][] sequences = [[2, 5, 6, 7, 8, 9, 10, 3], [2, 11, 12, 13, 3]];
        var a = new MaskedLmSequences(sequences, 4, 8, rule);
        var b = new MaskedLmSequences(sequences, 4, 8, rule);
        var r1 = new Rng(9);
        a.Next(ref r1);
        var r2 = Rng.FromState(r1.State);
        var first = (MaskedLmBatch)a.Next(ref r1);
        var second = (MaskedLmBatch)b.Next(ref r2);
        Assert.Equal(first.Ids, second.Ids);
        Assert.Equal(first.Targets, second.Targets);
    }

    [Fact]
    public void AClassifiersEvaluationCountsTheExamplesItsLogitsLabelCorrectly()
    {
        var model = new Bert(Tiny(labels: 3), seed: 4);
        model.Eval();
        var batch = new LabeledSequenceBatch(6, 5);
        for (int b = 0; b < 6; b++)
        {
            batch.Lengths[b] = 2 + b % 4;
            batch.Labels[b] = b % 3;
            for (int t = 0; t < batch.Lengths[b]; t++) batch.Ids[b * 5 + t] = (7 * b + 3 * t) % 40;
        }
        var (loss, correct) = model.Evaluate(batch);
        var probabilities = model.ClassProbabilities(batch.Ids, batch.Segments, batch.Lengths, 6, 5);
        int expected = Enumerable.Range(0, 6).Count(b => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities.AsSpan(b * 3, 3)) == batch.Labels[b]);
        Assert.Equal(expected, correct);
        Assert.Equal(model.Loss(batch).Item, loss);
    }

    [Fact]
    public void AClassifierFromAMaskedLmModelKeepsItsEncoderBitForBitUnderAFreshHead()
    {
        var pretrained = new Bert(Tiny(), seed: 5);
        var (classifier, fresh) = pretrained.ToClassifier(["ham", "spam", "eggs"], seed: 9);
        Assert.Equal(3, classifier.Config.NumLabels);
        Assert.Equal(["ham", "spam", "eggs"], Enumerable.Range(0, 3).Select(classifier.Config.LabelName));
        Assert.Equal(["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"], fresh);
        var newborn = new Bert(Tiny(labels: 3), seed: 9); // what the fresh parameters must hold: the seed's own initialisation
        foreach (var p in classifier.Parameters)
        {
            var expected = fresh.Contains(p.Name) ? newborn.FindParameter(p.Name)! : pretrained.FindParameter(p.Name)!;
            Assert.True(expected.Value.Span.SequenceEqual(p.Value.Span), p.Name);
        }
        Assert.Equal(pretrained.Parameters.Count(p => p.Name.StartsWith("bert.", StringComparison.Ordinal)), classifier.Parameters.Count - 4);
        Assert.False(classifier.FindParameter("classifier.weight")!.Value.Span.IndexOfAnyExcept(0f) < 0); // N(0, 0.02), not zeros

        // A classifier over other labels keeps its pooler and replaces only the classifier; the same labels keep everything.
        var (again, replaced) = classifier.ToClassifier(["a", "b"], seed: 2);
        Assert.Equal(["classifier.weight", "classifier.bias"], replaced);
        Assert.True(classifier.FindParameter("bert.pooler.dense.weight")!.Value.Span.SequenceEqual(again.FindParameter("bert.pooler.dense.weight")!.Value.Span));
        Assert.Empty(classifier.ToClassifier(["x", "y", "z"]).Fresh);
        var probabilities = again.ClassProbabilities([2, 5, 6, 3], [], [4], 1, 4);
        Assert.Equal(1f, probabilities.Sum(), 5);
    }

    [Fact]
    public void TrainingLowersTheMaskedLmLossAndTheConfigRoundTripsThroughJson()
    {
        var config = Tiny() with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        var json = JsonSerializer.Serialize<ModelConfig>(config, ModelJsonContext.Default.ModelConfig);
        Assert.Contains("\"kind\": \"bert\"", json);
        var back = (BertConfig)JsonSerializer.Deserialize(json, ModelJsonContext.Default.ModelConfig)!;
        Assert.Equal(config.HiddenAct, back.HiddenAct);
        Assert.Equal(config.IntermediateSize, back.IntermediateSize);

        var model = new Bert(back, seed: 1);
        var rule = new MaskingRule(4, 40, new HashSet<int> { 0, 1, 2, 3, 4 }, Probability: 0.3);
        int[][] sequences = [[2, 5, 6, 7, 8, 9, 3], [2, 10, 11, 12, 3], [2, 5, 6, 7, 13, 3]];
        var source = new MaskedLmSequences(sequences, 6, 8, rule);
        var adam = new Sharpformer.Training.AdamW(model.Parameters, 0.9f, 0.99f, 0f);
        var rng = new Rng(1);
        float first = 0, last = 0;
        for (int step = 0; step < 60; step++)
        {
            var batch = source.Next(ref rng);
            model.ZeroGrad();
            using (Graph.Record())
            {
                var loss = model.Loss(batch);
                if (step == 0) first = loss.Item;
                last = loss.Item;
                loss.Backward();
            }
            adam.Update(3e-3f);
        }
        Assert.True(last < first * 0.6, $"loss {first} → {last}");
    }

    [Fact]
    public void BadConfigsAndWrongBatchesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new Bert(Tiny() with { HiddenAct = "swish" }));
        Assert.Throws<ArgumentException>(() => new Bert(Tiny() with { NumLabels = 1 }));
        Assert.Throws<ArgumentException>(() => new Bert(Tiny() with { NumAttentionHeads = 3 }));
        var mlm = new Bert(Tiny());
        Assert.Throws<ArgumentException>(() => mlm.Loss(new LabeledSequenceBatch(1, 4)));
        Assert.Throws<InvalidOperationException>(() => mlm.ClassLogits([2, 3], [], [2], 1, 2));
    }
}

/// <summary>The masked-LM head's buffers across batches whose masked counts differ (the tensor pool is process-wide, hence the collection).</summary>
[Collection("Pool")]
public class BertPoolTests
{
    [Fact]
    public void BatchesWithDifferentMaskCountsTakeNoNewBuffersAndFlopsCountOnlyTheHeadRowsComputed()
    {
        var config = new BertConfig { VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 10 };
        TensorPool.Trim(); // other tests' idle buffers would change which buffer a request takes (this collection runs alone)
        var model = new Bert(config, seed: 3);
        var rule = new MaskingRule(4, 40, new HashSet<int> { 0, 1, 2, 3, 4 });
        int[][] sequences = [.. Enumerable.Range(0, 20).Select(i => new[] { 2 }.Concat(Enumerable.Range(0, 7).Select(j => 5 + (i * 7 + j) % 35)).Append(3).ToArray())];
        var source = new MaskedLmSequences(sequences, 6, 10, rule);
        var rng = new Rng(5);
        var counts = new HashSet<int>();
        void Step()
        {
            var batch = (MaskedLmBatch)source.Next(ref rng);
            counts.Add(batch.MaskedPositions().Length);
            model.ZeroGrad();
            using var g = Graph.Record();
            model.Loss(batch).Backward();
        }
        // The pool may add a buffer or two while the head's sizes settle (a request takes an idle buffer up to twice its size); then none.
        for (int i = 0; i < 12; i++) Step();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long buffers = TensorPool.Allocations;
        for (int i = 0; i < 12; i++) Step();
        Assert.True(counts.Count > 2, $"masked counts {string.Join(", ", counts)}");
        Assert.Equal(buffers, TensorPool.Allocations);

        // One more masked row changes nothing until the rows computed (a multiple of 64) change.
        var one = new MaskedLmBatch(1, 8);
        one.Lengths[0] = 8;
        one.Targets.AsSpan().Fill(-1);
        one.Targets[1] = 5;
        long flops = model.FlopsPerExample(one);
        one.Targets[2] = 6;
        Assert.Equal(flops, model.FlopsPerExample(one));
        long blocks = 6L * config.BlockParameters * 8, attention = 12L * 16 * 8 * 8, head = 6L * (16 * 16 + 16 * 40) * 64;
        Assert.Equal(blocks + attention + head, flops);
    }
}
