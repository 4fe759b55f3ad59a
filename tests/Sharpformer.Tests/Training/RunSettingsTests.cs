using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

public class RunSettingsTests
{
    [Fact]
    public void BabyPresetIsNanoGptCpuConfig()
    {
        var (_, model, c) = Presets.Get("shakespeare-char-baby");
        var m = Assert.IsType<GptConfig>(model);
        Assert.Equal((4, 4, 128, 64, 12, 0f), (m.NLayer, m.NHead, m.NEmbd, c.BlockSize, c.BatchSize, m.Dropout));
        Assert.Equal(64, m.BlockSize);
        Assert.Equal(Activation.GeluErf, m.Activation);
        Assert.Equal((2000, 2000, 20, 250, 100), (c.MaxIters, c.LrDecayIters, c.EvalIters, c.EvalInterval, c.WarmupIters));
        Assert.Equal((1e-3f, 1e-4f, 0.9f, 0.99f, 0.1f, 1.0f), (c.LearningRate, c.MinLr, c.Beta1, c.Beta2, c.WeightDecay, c.GradClip));
        Assert.False(m.Bias);
        Assert.Equal(1337, c.Seed);
        Assert.Equal(1, c.GradientAccumulationSteps);
    }

    [Fact]
    public void ShakespeareCharPresetIsNanoGptGpuConfig()
    {
        var (_, model, c) = Presets.Get("shakespeare-char");
        var m = Assert.IsType<GptConfig>(model);
        Assert.Equal((6, 6, 384, 256, 64, 0.2f, 5000), (m.NLayer, m.NHead, m.NEmbd, c.BlockSize, c.BatchSize, m.Dropout, c.MaxIters));
    }

    [Fact]
    public void UnknownPresetNamesTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => Presets.Get("shakespear"));
        Assert.Contains("shakespeare-char-baby", e.Message);
    }

    [Fact]
    public void JsonRoundTripUsesKebabCaseAndRejectsUnknownKeys()
    {
        var c = Presets.Get("shakespeare-char-baby").Run with { LearningRate = 2e-3f };
        string json = c.ToJson();
        Assert.Contains("\"learning-rate\"", json);
        Assert.DoesNotContain("n-layer", json);
        Assert.Equal(c, RunSettings.FromJson(json));
        Assert.Throws<ArgumentException>(() => RunSettings.FromJson("{\"lerning-rate\": 1}"));
        Assert.Equal(new RunSettings { BatchSize = 32 }, RunSettings.FromJson("{\"batch-size\": 32}")); // the rest keep their defaults
    }

    [Theory]
    [InlineData(0, 6)]
    [InlineData(-3, 6)]
    public void BadSettingsAreRejected(int batch, int heads)
    {
        Assert.Contains("batch-size", Assert.Throws<ArgumentException>(() => new RunSettings { BatchSize = batch }.Validate()).Message);
        Assert.Contains("divisible", Assert.Throws<ArgumentException>(() => new GptConfig { NEmbd = 128, NHead = heads }.Validate()).Message);
    }

    [Fact]
    public void NonFiniteAndHugeSettingsNameTheirRange()
    {
        foreach (var bad in new[]
        {
            new RunSettings { LearningRate = float.NaN }, new RunSettings { LearningRate = float.PositiveInfinity },
            new RunSettings { Beta1 = float.NaN }, new RunSettings { WeightDecay = float.PositiveInfinity },
            new RunSettings { BatchSize = int.MaxValue }, new RunSettings { Threads = int.MaxValue },
            new RunSettings { MaxIters = int.MaxValue },
        })
            Assert.Throws<ArgumentException>(() => bad.Validate());
        var e = Assert.Throws<ArgumentException>(() => new GptConfig { NLayer = int.MaxValue }.Validate());
        Assert.Contains("n-layer must be between 1 and", e.Message);
        e = Assert.Throws<ArgumentException>(() => new GptConfig { NLayer = 1000, NEmbd = 16384, NHead = 16 }.Validate());
        Assert.Contains("memory", e.Message);
    }

    [Fact]
    public void ScheduleWarmsUpThenCosineDecaysToMinLr()
    {
        var c = Presets.Get("shakespeare-char-baby").Run;
        Assert.Equal(1e-3f / 101, LearningRateSchedule.At(0, c), 9);
        Assert.Equal(1e-3f * 100 / 101, LearningRateSchedule.At(99, c), 9);
        Assert.Equal(1e-3f, LearningRateSchedule.At(100, c), 7);
        Assert.Equal((1e-3f + 1e-4f) / 2, LearningRateSchedule.At(1050, c), 7);
        Assert.Equal(1e-4f, LearningRateSchedule.At(2000, c), 7);
        Assert.Equal(1e-4f, LearningRateSchedule.At(5000, c), 9);
        Assert.Equal(1e-3f, LearningRateSchedule.At(5000, c with { DecayLr = false }), 9);
    }

    [Fact]
    public void InverseSqrtWarmsUpAsCosineThenDecaysAsThePaper()
    {
        var c = new RunSettings { LearningRate = 1e-3f, WarmupIters = 99, LrSchedule = LearningRateSchedule.InverseSqrt, MinLr = 5e-4f, LrDecayIters = 200 };
        var cosine = c with { LrSchedule = LearningRateSchedule.Cosine };
        for (int it = 0; it < 99; it++) Assert.Equal(LearningRateSchedule.At(it, cosine), LearningRateSchedule.At(it, c));
        Assert.Equal(1e-3f, LearningRateSchedule.At(99, c), 9);
        Assert.Equal(1e-3f / 2, LearningRateSchedule.At(399, c), 9);   // s = 400 = 4w
        Assert.Equal(1e-3f / 10, LearningRateSchedule.At(9999, c), 9); // below min-lr: min-lr and lr-decay-iters are cosine's
        // The paper's lrate = d^-0.5 · min(s^-0.5, s · w^-1.5) with s = it + 1, w = warmup + 1, at every step.
        const int d = 512, warmup = 3999;
        var paper = new RunSettings { LearningRate = LearningRateSchedule.PaperPeak(d, warmup), WarmupIters = warmup, LrSchedule = LearningRateSchedule.InverseSqrt };
        foreach (int it in new[] { 0, 1, 100, 3998, 3999, 4000, 10_000, 100_000 })
        {
            double s = it + 1, w = warmup + 1;
            Assert.Equal(Math.Pow(d, -0.5) * Math.Min(Math.Pow(s, -0.5), s * Math.Pow(w, -1.5)), LearningRateSchedule.At(it, paper), 1e-9);
        }
        Assert.Equal(1e-3f, LearningRateSchedule.At(9999, c with { DecayLr = false }), 9);
    }

    [Fact]
    public void ScheduleAndTokenBudgetAreSavedAndChecked()
    {
        var c = new RunSettings { LrSchedule = LearningRateSchedule.InverseSqrt, MaxTokens = 2048 };
        var back = RunSettings.FromJson(c.ToJson());
        Assert.Equal(c, back);
        Assert.Contains("\"lr-schedule\": \"inverse-sqrt\"", c.ToJson());
        Assert.Equal(LearningRateSchedule.Cosine, RunSettings.FromJson("{}").LrSchedule); // settings saved before the option: cosine
        var e = Assert.Throws<ArgumentException>(() => new RunSettings { LrSchedule = "linear" }.Validate());
        Assert.Contains("lr-schedule must be \"cosine\" or \"inverse-sqrt\"", e.Message);
        Assert.Throws<ArgumentException>(() => new RunSettings { MaxTokens = -1 }.Validate());
    }

    [Fact]
    public void AugmentationIsOnUnlessARunTurnsItOff()
    {
        Assert.True(RunSettings.FromJson("{}").Augment); // settings saved before the option augmented, as the data folder said
        var off = new RunSettings { Augment = false };
        Assert.Contains("\"augment\": false", off.ToJson());
        Assert.False(RunSettings.FromJson(off.ToJson()).Augment);
        Assert.False(Presets.Get("vit-fashion-quick").Run.Augment);
        Assert.True(Presets.Get("vit-fashion").Run.Augment);
    }

    [Fact]
    public void CropPaddingIsTheFoldersUnlessARunSetsIt()
    {
        Assert.Null(RunSettings.FromJson("{}").CropPadding);
        var flipsOnly = new RunSettings { CropPadding = 0 };
        Assert.Equal(0, RunSettings.FromJson(flipsOnly.ToJson()).CropPadding);
        Assert.Throws<ArgumentException>(() => new RunSettings { CropPadding = -1 }.Validate());
        Assert.Equal(0, Presets.Get("vit-fashion").Run.CropPadding);
    }
}
