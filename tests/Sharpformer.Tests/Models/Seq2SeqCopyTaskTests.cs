using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Tests.Models;

/// <summary>The Annotated Transformer's smoke test: a tiny encoder-decoder learns to copy random sequences exactly.</summary>
[Collection("Simd")] // sets the process-wide thread count
public class Seq2SeqCopyTaskTests
{
    const int Symbols = 8, First = 4, MaxLength = 6;

    static List<(int[] Source, int[] Target)> RandomSequences(int count, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var s = Enumerable.Range(0, r.Next(1, MaxLength + 1)).Select(_ => First + r.Next(Symbols)).ToArray();
            return (s, s);
        }).ToList();
    }

    [Fact]
    public void TinyModelLearnsToCopyExactly()
    {
        var config = new Seq2SeqConfig
        {
            VocabSize = First + Symbols, DModel = 32, Heads = 2, EncoderLayers = 2, DecoderLayers = 2, FfnDim = 64,
            Dropout = 0, MaxLength = MaxLength + 1, LabelSmoothing = 0,
        };
        var model = new Seq2Seq(config, 1);
        var run = new RunSettings
        {
            BatchSize = 32, GradientAccumulationSteps = 1, BlockSize = MaxLength + 1, MaxIters = 300, EvalInterval = 100_000, EvalIters = 1,
            LearningRate = 6e-3f, WarmupIters = 30, LrDecayIters = 300, MinLr = 6e-4f, WeightDecay = 0, Beta2 = 0.98f, Seed = 7,
        };
        var train = new TranslationBatches(RandomSequences(5000, 1), run.BatchSize, MaxLength, MaxLength + 1);
        var trainer = new Trainer(model, run, train, train);
        float lastLoss = float.NaN;
        trainer.OnStep = s => lastLoss = s.Loss;
        // Shapes this small gain nothing from a second thread but its hand-offs; results do not depend on the count.
        int threads = Parallelism.ThreadCount;
        Parallelism.ThreadCount = 1;
        try { trainer.Run(); }
        finally { Parallelism.ThreadCount = threads; }

        // 200 unseen sequences (of 8^1 + ... + 8^6 possible), every one copied exactly by greedy decoding; beam
        // search finds the same copies of the first 50 (on a few of the others it prefers a shorter, likelier one).
        var tests = RandomSequences(200, 2).Select(p => p.Source).ToList();
        var copies = model.Translate(tests, new TranslationSearch { MaxLengthA = 1, MaxLengthB = 1 });
        int exact = tests.Zip(copies).Count(p => p.First.SequenceEqual(p.Second));
        Assert.True(exact == tests.Count, $"{exact} of {tests.Count} copied exactly; last training loss {lastLoss}");
        var beamCopies = model.Translate(tests[..50], new TranslationSearch { BeamSize = 3, MaxLengthA = 1, MaxLengthB = 1 });
        Assert.Equal(copies[..50], beamCopies);
    }
}
