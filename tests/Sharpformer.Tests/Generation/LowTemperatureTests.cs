using System.Numerics.Tensors;
using Sharpformer.Generation;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Generation;

/// <summary>Sampling approaches greedy decoding as the temperature falls, and is unchanged at ordinary temperatures.</summary>
public sealed class LowTemperatureTests
{
    static float[] RandomLogits(Random rng, int n, float scale) =>
        Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    [Theory]
    [InlineData(65, 0.01f)]
    [InlineData(65, 0.001f)]
    [InlineData(65, 1e-30f)]
    [InlineData(65, float.Epsilon)]
    [InlineData(50257, 0.001f)]
    [InlineData(50257, 1e-30f)]
    public void TinyTemperatureSamplesTheArgmax(int vocab, float temperature)
    {
        var rng = new Random(vocab + (int)(1 / Math.Max(temperature, 1e-9f)));
        var picker = new LogitsSampler(vocab, 7);
        foreach (int topK in new[] { 0, 200 })
            for (int trial = 0; trial < 100; trial++)
            {
                var logits = RandomLogits(rng, vocab, 20);
                int best = TensorPrimitives.IndexOfMax(logits);
                logits[best] += 0.5f; // a margin: at T = 0.01 the runner-up then weighs e^-50 at most
                Assert.Equal(best, picker.Sample(logits, new SamplingOptions { Temperature = temperature, TopK = topK }));
            }
    }

    [Fact]
    public void TiesAtTheMaximumShareTheDrawAtTinyTemperature()
    {
        float[] logits = [1f, 9f, 3f, 9f, -2f];
        var picker = new LogitsSampler(5, 3);
        var counts = new int[5];
        for (int i = 0; i < 2000; i++) counts[picker.Sample(logits, new SamplingOptions { Temperature = 1e-30f, TopK = 0 })]++;
        Assert.Equal(2000, counts[1] + counts[3]);
        Assert.InRange(counts[1], 850, 1150);
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(0.8f)]
    [InlineData(2f)]
    public void OrdinaryTemperatureGivesTheSameDistributionAsBefore(float temperature)
    {
        var rng = new Random(11);
        var logits = RandomLogits(rng, 65, 4);

        // The previous computation: divide, then float softmax.
        var before = logits.Select(v => v / temperature).ToArray();
        TensorPrimitives.SoftMax(before, before);
        var now = (float[])logits.Clone();
        LogitsSampler.SoftMax(now, temperature, new double[now.Length]);
        for (int i = 0; i < now.Length; i++) Assert.Equal(before[i], now[i], 1e-6f * before.Max());
        Assert.Equal(1.0, now.Sum(), 1e-5);

        // Seeded draws pick the same tokens as the previous implementation (a draw can differ only when it lands
        // within float rounding of a boundary).
        var picker = new LogitsSampler(65, 42);
        var reference = new Rng(42);
        int same = 0;
        for (int i = 0; i < 2000; i++)
        {
            double u = reference.NextDouble() * TensorPrimitives.Sum(before), cumulative = 0;
            int expected = 0;
            for (; expected < before.Length - 1; expected++) if (u < (cumulative += before[expected])) break;
            if (picker.Sample(logits, new SamplingOptions { Temperature = temperature, TopK = 0 }) == expected) same++;
        }
        Assert.InRange(same, 1998, 2000);
    }
}
