using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training;

namespace Sharpformer.Tests.Models;

/// <summary>The Annotated Transformer's smoke test: a tiny encoder-decoder learns to copy random sequences exactly.</summary>
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
            BatchSize = 32, GradientAccumulationSteps = 1, BlockSize = MaxLength + 1, MaxIters = 500, EvalInterval = 100_000, EvalIters = 1,
            LearningRate = 4e-3f, WarmupIters = 40, LrDecayIters = 500, MinLr = 3e-4f, WeightDecay = 0, Beta2 = 0.98f, Seed = 7,
        };
        var train = new TranslationBatches(RandomSequences(5000, 1), run.BatchSize, MaxLength, MaxLength + 1);
        var trainer = new Trainer(model, run, train, train);
        float lastLoss = float.NaN;
        trainer.OnStep = s => lastLoss = s.Loss;
        trainer.Run();

        var tests = RandomSequences(50, 2).Select(p => p.Source).ToList();
        var copies = model.Translate(tests, new TranslationSearch { MaxLengthA = 1, MaxLengthB = 1 });
        int exact = tests.Zip(copies).Count(p => p.First.SequenceEqual(p.Second));
        Assert.True(exact == tests.Count, $"{exact} of {tests.Count} copied exactly; last training loss {lastLoss}");
        var beamCopies = model.Translate(tests, new TranslationSearch { BeamSize = 3, MaxLengthA = 1, MaxLengthB = 1 });
        Assert.Equal(copies, beamCopies);
    }
}
