using System.Numerics.Tensors;
using Sharpformer.Autograd;
using Sharpformer.Generation;
using Sharpformer.Models;

namespace Sharpformer.Tests.Generation;

public class SamplerTests
{
    static Gpt TinyModel(int block = 24) => new(new GptConfig { VocabSize = 40, BlockSize = block, NLayer = 2, NHead = 2, NEmbd = 32, Bias = true }, seed: 7);

    [Fact]
    public void TopK1EqualsGreedyArgmaxOfFullRecomputation()
    {
        var model = TinyModel();
        model.Eval();
        int[] prompt = [1, 5, 9];
        var sampled = new Sampler(model, 40).Generate(prompt, new SamplingOptions { MaxNewTokens = 15, TopK = 1, Temperature = 1f, Seed = 3 }).ToList();

        // Greedy decoding by re-running the whole context each step, as nanoGPT does.
        var context = prompt.ToList();
        for (int i = 0; i < 15; i++)
        {
            using var g = Graph.NoGrad();
            var logits = model.Logits(context.ToArray(), 1, context.Count).Span;
            context.Add(TensorPrimitives.IndexOfMax(logits[^40..]));
        }
        Assert.Equal(context.Skip(prompt.Length), sampled);
    }

    [Fact]
    public void SamplingIsSeededAndStaysInsideTheVocabularyLimit()
    {
        var model = TinyModel(block: 8);
        var o = new SamplingOptions { MaxNewTokens = 40, Temperature = 1.5f, TopK = 0, Seed = 11 };
        var a = new Sampler(model, 30).Generate([2], o).ToList();
        var b = new Sampler(model, 30).Generate([2], o).ToList();
        Assert.Equal(a, b);
        Assert.Equal(40, a.Count); // past the block size of 8: the context was cropped and the cache rebuilt
        Assert.All(a, t => Assert.InRange(t, 0, 29));
        Assert.NotEqual(a, new Sampler(model, 30).Generate([2], o with { Seed = 12 }).ToList());
    }

    [Theory]
    [InlineData(1, 8, 30)]  // a one-token prompt; block 8: every stream's cache is rebuilt from its own 6 tokens, one stream at a time
    [InlineData(3, 8, 30)]  // a longer prompt, run once and copied to every stream
    [InlineData(2, 24, 60)] // caches rebuilt from 18 tokens per stream, all streams together
    public void StreamsSampledTogetherEqualEachSampledAlone(int promptLength, int block, int tokens)
    {
        var model = TinyModel(block);
        model.Eval();
        int[] prompt = [.. Enumerable.Range(2, promptLength)];
        var o = new SamplingOptions { MaxNewTokens = tokens, Temperature = 1.2f, TopK = 0, Seed = 5 };
        var steps = new Sampler(model, 40).Generate(prompt, 5, o).ToList();
        Assert.Equal(tokens, steps.Count);
        for (int s = 0; s < 5; s++)
        {
            var alone = new Sampler(model, 40).Generate(prompt, o with { Seed = 5 + (ulong)s }).ToList();
            Assert.Equal(alone, steps.Select(step => step[s]));
        }
        Assert.NotEqual(steps.Select(step => step[0]), steps.Select(step => step[1]));
    }

    [Fact]
    public void TopKAndTopPRestrictTheCandidates()
    {
        float[] logits = [0f, 3f, 2.5f, -1f, 2.9f, 0.5f];
        var counts = new int[6];
        var picker = new LogitsSampler(6, 5);
        for (int i = 0; i < 3000; i++) counts[picker.Sample(logits, new SamplingOptions { Temperature = 1, TopK = 2 })]++;
        Assert.Equal(3000, counts[1] + counts[4]);
        Assert.InRange(counts[1] / 3000.0, 0.45, 0.60); // exp(3)/(exp(3)+exp(2.9)) = 0.525

        Array.Clear(counts);
        // probabilities: 1 -> 0.386, 4 -> 0.349, 2 -> 0.234: top-p 0.7 keeps exactly {1, 4}
        for (int i = 0; i < 3000; i++) counts[picker.Sample(logits, new SamplingOptions { Temperature = 1, TopK = 0, TopP = 0.7f })]++;
        Assert.Equal(3000, counts[1] + counts[4]);

        Assert.Equal(1, picker.Sample(logits, new SamplingOptions { Temperature = 0 }));
    }

    [Fact]
    public void BadOptionsAndPromptsAreRejected()
    {
        var model = TinyModel();
        Assert.Throws<ArgumentException>(() => new Sampler(model, 40).Generate([45], new SamplingOptions()));
        Assert.Throws<ArgumentException>(() => new Sampler(model, 40).Generate([1], new SamplingOptions { TopP = 0 }));
        Assert.Throws<ArgumentException>(() => new Sampler(model, 41));
        Assert.Throws<ArgumentException>(() => new Sampler(model, 40).Generate([1], 0, new SamplingOptions()));
        Assert.Throws<ArgumentException>(() => new Sampler(model, 40).Generate([1], Sampler.MaxStreams + 1, new SamplingOptions()));
    }
}
