using Sharpformer.Data;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Data;

public class TranslationBatchesTests
{
    /// <summary>Pairs of 1 to 40 source tokens (mostly short, as real sentences) with targets a little longer; each pair's first token is its index.</summary>
    static List<(int[] Source, int[] Target)> Pairs(int count)
    {
        var r = new Random(3);
        return Enumerable.Range(0, count).Select(i =>
        {
            int n = Math.Min(40, 1 + (int)(-8 * Math.Log(1 - r.NextDouble())));
            return (Enumerable.Range(0, n).Select(j => j == 0 ? i : 4).ToArray(), Enumerable.Repeat(5, Math.Min(47, n + r.Next(3))).ToArray());
        }).ToList();
    }

    [Fact]
    public void TokenBudgetBatchesHoldSimilarLengthsWithinTheBudget()
    {
        var pairs = Pairs(3000);
        var source = new TranslationBatches(pairs, 64, 48, 48, maxTokens: 512);
        var rng = new Rng(5);
        var seen = new int[pairs.Count];
        long real = 0, padded = 0;
        for (int step = 0; step < 400; step++)
        {
            var b = (TranslationBatch)source.Next(ref rng);
            Assert.True(b.Batch * Math.Max(b.SourceTime, b.TargetTime) <= 512, $"{b.Batch} pairs of up to {b.SourceTime}/{b.TargetTime} tokens");
            Assert.Equal(0, b.SourceTime % TranslationBatches.PadMultiple);
            Assert.Equal(0, b.TargetTime % TranslationBatches.PadMultiple);
            var ids = new HashSet<int>();
            for (int i = 0; i < b.Batch; i++)
            {
                int id = b.SourceIds[i * b.SourceTime];
                Assert.True(ids.Add(id), "a pair drawn twice into one batch");
                seen[id]++;
                // its bucket: the longer side rounded up to 8 is the batch's longer padded side
                int longer = Math.Max(pairs[id].Source.Length, pairs[id].Target.Length + 1);
                Assert.Equal(Math.Max(b.SourceTime, b.TargetTime), (longer + 7) / 8 * 8);
            }
            real += b.InputTokens;
            padded += (long)b.Batch * (b.SourceTime + b.TargetTime);
        }
        // Most of a batch is tokens (rounding to 8 costs the rest); pairs drawn regardless of length fill far less.
        var random = new TranslationBatches(pairs, 64, 48, 48);
        long randomReal = 0, randomPadded = 0;
        for (int step = 0; step < 100; step++)
        {
            var b = (TranslationBatch)random.Next(ref rng);
            randomReal += b.InputTokens;
            randomPadded += (long)b.Batch * (b.SourceTime + b.TargetTime);
        }
        double fill = (double)real / padded, randomFill = (double)randomReal / randomPadded;
        Assert.True(fill > 0.6 && fill > 1.5 * randomFill, $"token-budget batches {fill:P0} tokens, random batches {randomFill:P0}");
        // Every pair is drawn about equally often, whatever its length: long ones as often as short ones.
        double shortMean = Enumerable.Range(0, pairs.Count).Where(i => pairs[i].Source.Length <= 6).Average(i => seen[i]);
        double longMean = Enumerable.Range(0, pairs.Count).Where(i => pairs[i].Source.Length is > 12 and < 40).Average(i => seen[i]);
        Assert.InRange(longMean / shortMean, 0.8, 1.25);
    }

    [Fact]
    public void SameGeneratorStateGivesTheSameBatches()
    {
        var pairs = Pairs(500);
        var a = new TranslationBatches(pairs, 64, 48, 48, maxTokens: 256);
        var b = new TranslationBatches(pairs, 64, 48, 48, maxTokens: 256);
        var r1 = new Rng(9);
        for (int i = 0; i < 7; i++) a.Next(ref r1);
        var r2 = Rng.FromState(r1.State); // as a resumed run restores it
        for (int i = 0; i < 5; i++)
        {
            var x = (TranslationBatch)a.Next(ref r1);
            var xs = x.SourceIds.ToArray();
            var y = (TranslationBatch)b.Next(ref r2);
            Assert.Equal(xs, y.SourceIds.ToArray());
            Assert.Equal(x.TargetOutputs.ToArray(), y.TargetOutputs.ToArray());
        }
    }

    [Fact]
    public void AllVisitsEveryPairOnce()
    {
        var pairs = Pairs(700);
        foreach (int budget in new[] { 0, 300 })
        {
            var counts = new int[pairs.Count];
            long targets = 0;
            foreach (var b in new TranslationBatches(pairs, 50, 48, 48, budget).All())
                for (int i = 0; i < b.Batch; i++)
                {
                    counts[b.SourceIds[i * b.SourceTime]]++;
                    targets += b.TargetLengths[i];
                }
            Assert.All(counts, c => Assert.Equal(1, c));
            Assert.Equal(pairs.Sum(p => p.Target.Length + 1L), targets);
        }
    }
}
