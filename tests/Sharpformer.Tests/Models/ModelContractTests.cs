using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Tests.Models;

/// <summary>
/// The model contract is not GPT in disguise: a bidirectional encoder that classifies sequences trains
/// through the same Trainer, saves, resumes bit for bit and loads again through the same checkpoint code.
/// </summary>
[Collection("Simd")]
public class ModelContractTests
{
    static readonly EncoderClassifierConfig Shape = new() { VocabSize = 12, MaxLength = 10, NLayer = 1, NHead = 2, NEmbd = 16, NumLabels = 3, Dropout = 0.1f };

    static readonly RunSettings Run = new()
    {
        BatchSize = 8, BlockSize = 10, GradientAccumulationSteps = 1, MaxIters = 16, EvalInterval = 8, EvalIters = 2,
        LogInterval = 1, LearningRate = 3e-3f, WarmupIters = 2, LrDecayIters = 16, MinLr = 3e-4f, AlwaysSaveCheckpoint = true,
    };

    /// <summary>Label = which of the tokens 1, 2, 3 occurs most often in a random sequence of 2..10 tokens (ties to the smallest).</summary>
    static List<(int[] Ids, int Label)> Task(int count, ulong seed)
    {
        var rng = new Rng(seed);
        var examples = new List<(int[], int)>();
        for (int i = 0; i < count; i++)
        {
            var ids = new int[2 + rng.NextInt(9)];
            for (int t = 0; t < ids.Length; t++) ids[t] = 1 + rng.NextInt(11);
            var counts = new[] { 1, 2, 3 }.Select(k => ids.Count(x => x == k)).ToArray();
            examples.Add((ids, Array.IndexOf(counts, counts.Max())));
        }
        return examples;
    }

    static Trainer NewTrainer(RunSettings run, int seed = 1337) =>
        new(Shape.Create(seed), run, new LabeledSequences(Task(400, 1), run.BatchSize, run.BlockSize, Shape.NumLabels),
            new LabeledSequences(Task(100, 2), run.BatchSize, run.BlockSize, Shape.NumLabels));

    static readonly TokenizerSpec Vocabulary = new() { Kind = "char", VocabSize = 12, Chars = "abcdefghijkl" };

    [Fact]
    public void ConfigIsPolymorphicJsonWithAKindAndTheRegistryBuildsTheModel()
    {
        string json = JsonSerializer.Serialize<ModelConfig>(Shape, ModelJsonContext.Default.ModelConfig);
        Assert.StartsWith("{\n  \"kind\": \"encoder-classifier\"", json.ReplaceLineEndings("\n"));
        var back = JsonSerializer.Deserialize(json, ModelJsonContext.Default.ModelConfig);
        Assert.Equal(Shape, back);
        Assert.IsType<EncoderClassifier>(back!.Create());
        var gpt = JsonSerializer.Deserialize("{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 8, \"vocab_size\": 5, \"block_size\": 4, \"kind\": \"gpt\"}", ModelJsonContext.Default.ModelConfig);
        Assert.IsType<Gpt>(gpt!.Create());
        Assert.Equal(gpt.Create().CountAllParameters(), gpt.ParameterElements());
        Assert.Equal(Shape.Create().CountAllParameters(), Shape.ParameterElements());
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("{\"kind\": \"gpt\", \"n_layers\": 2}", ModelJsonContext.Default.ModelConfig));
    }

    [Fact]
    public void EncoderClassifierLearnsThroughTheSameTrainer()
    {
        var run = Run with { MaxIters = 300, EvalInterval = 150, LrDecayIters = 300, BatchSize = 32 };
        var model = (EncoderClassifier)(Shape with { Dropout = 0 }).Create();
        var trainer = new Trainer(model, run, new LabeledSequences(Task(2000, 1), run.BatchSize, run.BlockSize, Shape.NumLabels),
            new LabeledSequences(Task(200, 2), run.BatchSize, run.BlockSize, Shape.NumLabels));
        var evals = new List<EvalReport>();
        trainer.OnEval = evals.Add;
        trainer.Run();
        Assert.True(evals[^1].ValLoss < evals[0].ValLoss - 0.3, $"val loss {evals[0].ValLoss} -> {evals[^1].ValLoss}");
        Assert.True(evals[^1].ValAccuracy > 0.7 && evals[^1].TrainAccuracy > 0.7, $"evaluation's accuracy {evals[^1].ValAccuracy}");

        // Accuracy on unseen sequences, padded together in one batch.
        var test = Task(300, 3);
        var ids = new int[test.Count * 10];
        for (int i = 0; i < test.Count; i++) test[i].Ids.CopyTo(ids, i * 10);
        model.Eval();
        using var logits = model.Logits(ids, test.Select(e => e.Ids.Length).ToArray(), test.Count, 10);
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            var row = logits.Span.Slice(i * 3, 3);
            if (row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)) == test[i].Label) correct++;
        }
        Assert.True(correct > 0.7 * test.Count, $"accuracy {correct}/{test.Count}");
    }

    [Fact]
    public void SavesResumesBitForBitAndLoadsAgainThroughTheCheckpoint()
    {
        string root = Directory.CreateTempSubdirectory("sf-contract-").FullName;
        try
        {
            string folder = Path.Combine(root, "checkpoint");
            var full = NewTrainer(Run);
            var losses = new List<float>();
            full.OnStep = r => losses.Add(r.Loss);
            full.SaveCheckpoint = t =>
            {
                if (t.Iteration == Run.EvalInterval) Checkpoint.Save(folder, t.Model, Vocabulary, Run, t);
            };
            full.Run();

            var (loaded, config) = Checkpoint.Load(folder);
            Assert.Equal("encoder-classifier", config.Model.Kind);
            Assert.Equal(Shape, config.Model);
            Assert.Equal(Vocabulary, config.Tokenizer);
            Assert.Equal(Run, config.Training);
            var resumed = new Trainer(loaded, config.Training!, new LabeledSequences(Task(400, 1), Run.BatchSize, Run.BlockSize, Shape.NumLabels),
                new LabeledSequences(Task(100, 2), Run.BatchSize, Run.BlockSize, Shape.NumLabels));
            Checkpoint.RestoreTrainer(folder, resumed);
            Assert.Equal(Run.EvalInterval, resumed.Iteration);
            var resumedLosses = new List<float>();
            resumed.OnStep = r => resumedLosses.Add(r.Loss);
            resumed.Run();

            Assert.Equal(losses.Skip(Run.EvalInterval), resumedLosses);
            foreach (var p in full.Model.Parameters)
                Assert.Equal(p.Value.ToArray(), loaded.FindParameter(p.Name)!.Value.ToArray());

            // Weights only, then again: the same model comes back.
            Checkpoint.Save(folder, loaded, Vocabulary);
            var (again, _) = Checkpoint.Load(folder);
            Assert.IsType<EncoderClassifier>(again);
            foreach (var p in loaded.Parameters) Assert.Equal(p.Value.ToArray(), again.FindParameter(p.Name)!.Value.ToArray());
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void AModelRefusesABatchOfAnotherTask()
    {
        var gpt = new GptConfig { VocabSize = 12, BlockSize = 10, NLayer = 1, NHead = 2, NEmbd = 16 }.Create();
        var rng = new Rng(1);
        var batch = new LabeledSequences(Task(10, 1), 2, 10, 3).Next(ref rng);
        var e = Assert.Throws<ArgumentException>(() => gpt.Loss(batch));
        Assert.Contains("gpt model trains on next-token windows", e.Message);
    }
}
