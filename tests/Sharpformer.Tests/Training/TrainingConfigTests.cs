using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

public class TrainingConfigTests
{
    [Fact]
    public void BabyPresetIsNanoGptCpuConfig()
    {
        var c = Presets.Get("shakespeare-char-baby");
        Assert.Equal((4, 4, 128, 64, 12, 0f), (c.NLayer, c.NHead, c.NEmbd, c.BlockSize, c.BatchSize, c.Dropout));
        Assert.Equal((2000, 2000, 20, 250, 100), (c.MaxIters, c.LrDecayIters, c.EvalIters, c.EvalInterval, c.WarmupIters));
        Assert.Equal((1e-3f, 1e-4f, 0.9f, 0.99f, 0.1f, 1.0f), (c.LearningRate, c.MinLr, c.Beta1, c.Beta2, c.WeightDecay, c.GradClip));
        Assert.False(c.Bias);
        Assert.Equal(1337, c.Seed);
        Assert.Equal(1, c.GradientAccumulationSteps);
    }

    [Fact]
    public void ShakespeareCharPresetIsNanoGptGpuConfig()
    {
        var c = Presets.Get("shakespeare-char");
        Assert.Equal((6, 6, 384, 256, 64, 0.2f, 5000), (c.NLayer, c.NHead, c.NEmbd, c.BlockSize, c.BatchSize, c.Dropout, c.MaxIters));
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
        var c = Presets.Get("shakespeare-char-baby") with { LearningRate = 2e-3f };
        string json = c.ToJson();
        Assert.Contains("\"learning-rate\"", json);
        Assert.Equal(c, TrainingConfig.FromJson(json));
        Assert.Throws<ArgumentException>(() => TrainingConfig.FromJson("{\"lerning-rate\": 1}"));
        Assert.Equal(32, TrainingConfig.FromJson("{\"batch-size\": 32}").BatchSize);
    }

    [Theory]
    [InlineData(0, 6)]
    [InlineData(-3, 6)]
    public void BadSettingsAreRejected(int batch, int heads)
    {
        Assert.Contains("batch-size", Assert.Throws<ArgumentException>(() => new TrainingConfig { BatchSize = batch }.Validate()).Message);
        Assert.Contains("divisible", Assert.Throws<ArgumentException>(() => new TrainingConfig { NEmbd = 128, NHead = heads }.Validate()).Message);
    }

    [Fact]
    public void ScheduleWarmsUpThenCosineDecaysToMinLr()
    {
        var c = Presets.Get("shakespeare-char-baby");
        Assert.Equal(1e-3f / 101, LearningRateSchedule.At(0, c), 9);
        Assert.Equal(1e-3f * 100 / 101, LearningRateSchedule.At(99, c), 9);
        Assert.Equal(1e-3f, LearningRateSchedule.At(100, c), 7);
        Assert.Equal((1e-3f + 1e-4f) / 2, LearningRateSchedule.At(1050, c), 7);
        Assert.Equal(1e-4f, LearningRateSchedule.At(2000, c), 7);
        Assert.Equal(1e-4f, LearningRateSchedule.At(5000, c), 9);
        Assert.Equal(1e-3f, LearningRateSchedule.At(5000, c with { DecayLr = false }), 9);
    }
}
