using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

// Bit-identical comparisons: run serially with the tests that flip the process-wide SIMD path.
[Collection("Simd")]
public class TrainerTests
{
    static readonly RunSettings Tiny = new()
    {
        BlockSize = 16, BatchSize = 4, GradientAccumulationSteps = 2, MaxIters = 12, EvalInterval = 6, EvalIters = 2, LogInterval = 1,
        LearningRate = 3e-3f, WarmupIters = 3, LrDecayIters = 12, MinLr = 3e-4f, AlwaysSaveCheckpoint = true,
    };

    static readonly GptConfig TinyGpt = new() { VocabSize = 23, BlockSize = 16, NLayer = 2, NHead = 2, NEmbd = 32, Dropout = 0.1f, Bias = false, Activation = Activation.GeluErf };

    static Trainer NewTrainer(RunSettings run, GptConfig model, ArrayTokenSource train, ArrayTokenSource val, int? seed = null) =>
        new(new Gpt(model, seed ?? run.Seed), run, new LanguageModelBatches(train, run.BatchSize, run.BlockSize, "train"),
            new LanguageModelBatches(val, run.BatchSize, run.BlockSize, "val"));

    /// <summary>A repetitive text mapped onto 23 token ids; skip moves the window so train and val differ.</summary>
    static ArrayTokenSource Corpus(int length, int skip)
    {
        var text = string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 60));
        return new ArrayTokenSource(text.Skip(skip * 7).Take(length).Select(c => c * 7 % 23).ToArray());
    }

    sealed record Snapshot(TrainerProgress Progress, Dictionary<string, float[]> Weights, Dictionary<string, (float[] M, float[] V)> Moments);

    static Snapshot Capture(Trainer t) => new(
        t.Progress,
        t.Model.Parameters.ToDictionary(p => p.Name, p => p.Value.ToArray()),
        t.Optimizer.Moments().ToDictionary(m => m.Name, m => ((float[])m.M.Clone(), (float[])m.V.Clone())));

    [Fact]
    public void ResumedRunReproducesTheUninterruptedOneBitForBit()
    {
        // Both runs use the process's thread count (tests do not change it behind other tests' backs).
        var train = Corpus(900, 1);
        var val = Corpus(300, 2);

        // One run of 2N iterations, keeping the checkpoint taken at iteration N.
        var full = NewTrainer(Tiny, TinyGpt, train, val);
        var fullLosses = new List<float>();
        Snapshot? atN = null;
        full.OnStep = r => fullLosses.Add(r.Loss);
        full.SaveCheckpoint = t => atN ??= Capture(t);
        full.Run();
        Assert.NotNull(atN);
        Assert.Equal(Tiny.EvalInterval, atN.Progress.Iteration);

        // A fresh process-like start from that checkpoint.
        var resumed = NewTrainer(Tiny, TinyGpt, train, val, seed: 99);
        var resumedModel = resumed.Model;
        foreach (var p in resumedModel.Parameters) atN.Weights[p.Name].CopyTo(p.Value.Span);
        resumed.Optimizer.LoadMoments(name => atN.Moments[name]);
        resumed.Restore(atN.Progress);
        var resumedLosses = new List<float>();
        resumed.OnStep = r => resumedLosses.Add(r.Loss);
        resumed.Run();

        Assert.Equal(fullLosses.Skip(Tiny.EvalInterval), resumedLosses);
        foreach (var p in full.Model.Parameters)
            Assert.Equal(p.Value.ToArray(), resumedModel.FindParameter(p.Name)!.Value.ToArray());
    }

    [Fact]
    public void LossFallsAndEvaluationIsReported()
    {
        var config = Tiny with { MaxIters = 60, EvalInterval = 30, GradientAccumulationSteps = 1, LrDecayIters = 60 };
        var t = NewTrainer(config, TinyGpt with { Dropout = 0 }, Corpus(900, 1), Corpus(300, 2));
        var evals = new List<EvalReport>();
        t.OnEval = evals.Add;
        t.Run();
        Assert.Equal([0, 30, 60], evals.Select(e => e.Iteration));
        Assert.True(evals[^1].ValLoss < evals[0].ValLoss - 1.0, $"val loss {evals[0].ValLoss} -> {evals[^1].ValLoss}");
        Assert.True(evals[0].IsBest);
        Assert.All(evals, e => Assert.Null(e.ValAccuracy)); // a language model is no classifier
    }

    [Fact]
    public void CorpusShorterThanABlockIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => NewTrainer(Tiny, TinyGpt, Corpus(900, 1), Corpus(16, 2)));
        Assert.Contains("block-size", e.Message);
        Assert.Contains("val", e.Message);
    }

    [Theory]
    [InlineData(1e6f)]
    [InlineData(float.PositiveInfinity)]
    public void DivergenceStopsTheRunBeforeAnythingIsSaved(float learningRate)
    {
        var run = Tiny with { LearningRate = float.IsFinite(learningRate) ? learningRate : 1e30f, GradClip = 0, MaxIters = 30, EvalInterval = 2, WarmupIters = 0 };
        if (!float.IsFinite(learningRate)) Assert.Throws<ArgumentException>(() => NewTrainer(Tiny with { LearningRate = learningRate }, TinyGpt, Corpus(900, 1), Corpus(300, 2)));
        var t = NewTrainer(run, TinyGpt, Corpus(900, 1), Corpus(300, 2));
        int saves = 0;
        bool finiteAtSave = true;
        t.SaveCheckpoint = tr => { saves++; finiteAtSave &= tr.Model.Parameters.All(p => p.Value.ToArray().All(float.IsFinite)); };
        var e = Assert.Throws<DivergenceException>(() => t.Run());
        Assert.Contains("diverged at iteration", e.Message);
        Assert.True(finiteAtSave, "a checkpoint was saved holding non-finite weights");
    }
}
