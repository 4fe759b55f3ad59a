using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Tests.Models;

[Collection("Simd")]
public class VitTests
{
    static readonly VitConfig Shape = new()
    {
        ImageSize = 8, PatchSize = 4, NumChannels = 1, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2,
        IntermediateSize = 32, NumLabels = 3, HiddenDropoutProb = 0.1f, ImageMean = [0.5f], ImageStd = [0.25f],
    };

    static readonly RunSettings Run = new()
    {
        BatchSize = 8, BlockSize = 5, GradientAccumulationSteps = 1, MaxIters = 12, EvalInterval = 6, EvalIters = 2,
        LogInterval = 1, LearningRate = 3e-3f, WarmupIters = 2, LrDecayIters = 12, MinLr = 3e-4f, AlwaysSaveCheckpoint = true,
    };

    /// <summary>8×8 grey images of noise with a bright bar: label 0 a horizontal bar, 1 a vertical bar, 2 none.</summary>
    static ImageSet Bars(int count, ulong seed)
    {
        var rng = new Rng(seed);
        var pixels = new byte[count * 64];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            var image = pixels.AsSpan(i * 64, 64);
            for (int j = 0; j < 64; j++) image[j] = (byte)rng.NextInt(100);
            labels[i] = rng.NextInt(3);
            int at = rng.NextInt(8);
            for (int k = 0; k < 8; k++)
                if (labels[i] == 0) image[at * 8 + k] = 255;
                else if (labels[i] == 1) image[k * 8 + at] = 255;
        }
        return new ImageSet(pixels, labels, 1, 8, 8, ["horizontal", "vertical", "none"]);
    }

    static ImageBatches Source(ImageSet set, int batch) => new(set, batch, Shape.ImageMean, Shape.ImageStd, new ImageAugmentation(Padding: 1));

    [Fact]
    public void ConfigRoundTripsAsJsonAndCountsItsParameters()
    {
        var config = Shape.WithClasses(["a", "b", "c"]) with { Pooling = VitPooling.Mean };
        string json = JsonSerializer.Serialize<ModelConfig>(config, ModelJsonContext.Default.ModelConfig);
        Assert.Contains("\"kind\": \"vit\"", json);
        Assert.Contains("\"pooling\": \"mean\"", json);
        var back = (VitConfig)JsonSerializer.Deserialize(json, ModelJsonContext.Default.ModelConfig)!;
        Assert.Equal(["a", "b", "c"], back.ClassNames);
        Assert.Equal(VitPooling.Mean, back.Pooling);
        Assert.Equal(config.ParameterElements(), back.Create().CountAllParameters());
        Assert.Equal(["0", "1", "2"], Shape.ClassNames);
        var e = Assert.Throws<ArgumentException>(() => (Shape with { ImageSize = 10 }).Validate());
        Assert.Contains("multiple of patch_size", e.Message);
        Assert.Throws<ArgumentException>(() => (Shape with { ImageMean = [0.5f, 0.5f] }).Validate());
    }

    [Fact]
    public void ParametersCarryHuggingFaceNamesOutsideTheBlocks()
    {
        var names = Shape.Create().Parameters.Select(p => p.Name).ToArray();
        Assert.Equal("vit.embeddings.patch_embeddings.projection.weight", names[0]);
        Assert.Contains("vit.embeddings.cls_token", names);
        Assert.Contains("vit.embeddings.position_embeddings", names);
        Assert.Contains("vit.encoder.layer.0.attn.c_attn.weight", names);
        Assert.Contains("vit.layernorm.weight", names);
        Assert.Equal("classifier.bias", names[^1]);
    }

    [Fact]
    public void WeightDecaySparesClsTokenPositionsBiasesAndGainsAsTimm()
    {
        var model = (Vit)Shape.Create();
        string[] spared = [.. model.Parameters.Where(p => !model.DecaysWeight(p)).Select(p => p.Name)];
        string[] expected = ["vit.embeddings.cls_token", "vit.embeddings.position_embeddings", .. model.Parameters.Where(p => p.Shape.Length == 1).Select(p => p.Name)];
        Assert.Equal(expected.Order(), spared.Order());
        Assert.True(model.DecaysWeight(model.PatchWeight));
        Assert.True(model.DecaysWeight(model.Classifier.Parameters[0]));

        // The trainer's AdamW follows the model: with zero gradients a step only decays, so the spared stay put.
        var trainer = new Trainer(model, Run with { WeightDecay = 0.5f }, Source(Bars(10, 1), 4), Source(Bars(10, 2), 4));
        var before = model.Parameters.Select(p => p.Value.ToArray()).ToArray();
        model.ZeroGrad();
        trainer.Optimizer.Update(0.1f);
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            var p = model.Parameters[i];
            Assert.Equal(model.DecaysWeight(p), trainer.Optimizer.Decays(i));
            if (model.DecaysWeight(p)) Assert.Equal(before[i][0] * 0.95f, p.Value.Span[0], 1e-6f);
            else Assert.Equal(before[i], p.Value.ToArray());
        }
        var gpt = new GptConfig { BlockSize = 8, VocabSize = 5, NLayer = 1, NHead = 1, NEmbd = 4 }.Create();
        Assert.True(gpt.DecaysWeight(gpt.FindParameter("transformer.wpe.weight")!)); // nanoGPT decays every matrix
    }

    [Theory]
    [InlineData(VitPooling.Cls)]
    [InlineData(VitPooling.Mean)]
    public void LogitsHaveOneRowPerImageAndEveryParameterGetsAGradient(VitPooling pooling)
    {
        var model = (Vit)(Shape with { Pooling = pooling }).Create();
        var rng = new Rng(3);
        var batch = (ImageBatch)Source(Bars(20, 1), 5).Next(ref rng);
        using var logits = model.Logits(batch.Pixels, 5);
        Assert.Equal([5, 3], logits.Shape.ToArray());
        using (Graph.Record())
        {
            var loss = model.Loss(batch);
            Assert.True(float.IsFinite(loss.Span[0]));
            loss.Backward();
        }
        foreach (var p in model.Parameters)
            Assert.True(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(p.Grad.Span) > 0, p.Name);
        Assert.Throws<ArgumentException>(() => model.Logits(batch.Pixels.AsSpan(1), 5));
        var probabilities = model.Probabilities(Bars(4, 2).Pixels, 4, batchSize: 3);
        for (int i = 0; i < 4; i++) Assert.Equal(1f, probabilities.AsSpan(i * 3, 3).ToArray().Sum(), 1e-5f);
    }

    [Fact]
    public void ImageBatchesNormaliseAugmentAndRepeatForASeed()
    {
        var set = Bars(10, 1);
        var first = new Rng(7);
        var second = new Rng(7);
        var a = ((ImageBatch)Source(set, 4).Next(ref first)).Pixels.ToArray();
        var b = ((ImageBatch)Source(set, 4).Next(ref second)).Pixels.ToArray();
        Assert.Equal(a, b);
        var plain = new Rng(1);
        var batch = (ImageBatch)new ImageBatches(set, 1, [0.5f], [0.25f]).Next(ref plain);
        var index = new Rng(1).NextInt(set.Count);
        Assert.Equal((set.Image(index)[0] / 255f - 0.5f) / 0.25f, batch.Pixels[0], 1e-5f);
        Assert.Equal(set.Labels[index], batch.Labels[0]);
    }

    [Fact]
    public void ATinyVitLearnsBarsThroughTheTrainer()
    {
        var run = Run with { MaxIters = 150, EvalInterval = 75, LrDecayIters = 150, BatchSize = 32, LearningRate = 5e-3f };
        var model = (Vit)(Shape with { HiddenDropoutProb = 0 }).Create();
        var trainer = new Trainer(model, run, Source(Bars(600, 1), run.BatchSize), Source(Bars(100, 2), run.BatchSize));
        var evals = new List<EvalReport>();
        trainer.OnEval = evals.Add;
        trainer.Run();
        var test = Bars(200, 3);
        var probabilities = model.Probabilities(test.Pixels, test.Count);
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            var row = probabilities.AsSpan(i * 3, 3);
            if (row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)) == test.Labels[i]) correct++;
        }
        Assert.True(correct > 0.8 * test.Count, $"accuracy {correct}/{test.Count}");

        // Evaluation reports the accuracy the trainer measured: chance at the start, the test's figure at the end.
        Assert.InRange(evals[0].ValAccuracy!.Value, 0f, 0.6f);
        Assert.True(evals[^1].ValAccuracy > 0.8 && evals[^1].TrainAccuracy > 0.8, $"val accuracy {evals[^1].ValAccuracy}");
        var rng = new Rng(1);
        var batch = (ImageBatch)new ImageBatches(test, 50, Shape.ImageMean, Shape.ImageStd).Next(ref rng);
        model.Eval();
        var (loss, right) = model.Evaluate(batch);
        using var logits = model.Logits(batch.Pixels, 50);
        int expected = Enumerable.Range(0, 50).Count(i => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.Span.Slice(i * 3, 3)) == batch.Labels[i]);
        Assert.Equal(expected, right);
        Assert.Equal(model.Loss(batch).Item, loss);
    }

    [Fact]
    public void SavesResumesBitForBitAndLoadsAgainThroughTheCheckpoint()
    {
        string root = Directory.CreateTempSubdirectory("sf-vit-").FullName;
        try
        {
            string folder = Path.Combine(root, "checkpoint");
            var noTokenizers = new Dictionary<string, TokenizerSpec>();
            Trainer NewTrainer(Model model) => new(model, Run, Source(Bars(100, 1), Run.BatchSize), Source(Bars(30, 2), Run.BatchSize));
            var full = NewTrainer(Shape.Create());
            var losses = new List<float>();
            full.OnStep = r => losses.Add(r.Loss);
            full.SaveCheckpoint = t =>
            {
                if (t.Iteration == Run.EvalInterval) Checkpoint.Save(folder, t.Model, noTokenizers, Run, t);
            };
            full.Run();

            var (loaded, config) = Checkpoint.Load(folder);
            Assert.Equal("vit", config.Model.Kind);
            Assert.IsType<Vit>(loaded);
            var resumed = NewTrainer(loaded);
            Checkpoint.RestoreTrainer(folder, resumed);
            var resumedLosses = new List<float>();
            resumed.OnStep = r => resumedLosses.Add(r.Loss);
            resumed.Run();
            Assert.Equal(losses.Skip(Run.EvalInterval), resumedLosses);
            foreach (var p in full.Model.Parameters)
                Assert.Equal(p.Value.ToArray(), loaded.FindParameter(p.Name)!.Value.ToArray());
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void AVitRefusesTokenBatches()
    {
        var e = Assert.Throws<ArgumentException>(() => Shape.Create().Loss(new TokenBatch(1, 2)));
        Assert.Contains("vit model trains on labelled images", e.Message);
    }
}
