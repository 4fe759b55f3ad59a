using Sharpformer.Models;

namespace Sharpformer.Generation;

/// <summary>
/// Autoregressive sampling from a <see cref="Gpt"/> with a KV cache: the prompt is run once, then each new
/// token costs one cached decode step. When the context reaches the model's block size, it is cropped to its
/// most recent <see cref="KeepFraction"/> and the cache rebuilt from those tokens (learned absolute
/// positions make a sliding cache impossible; cropping by a fraction keeps the rebuild cost amortised,
/// where nanoGPT re-runs the whole window for every token).
/// </summary>
public sealed class Sampler
{
    /// <summary>Share of the block kept when the context is cropped.</summary>
    public const double KeepFraction = 0.75;

    readonly Gpt model;
    readonly int vocabLimit;

    /// <param name="vocabLimit">The tokenizer's vocabulary size; padded embedding rows beyond it are never sampled.</param>
    public Sampler(Gpt model, int vocabLimit)
    {
        if (vocabLimit < 1 || vocabLimit > model.Config.VocabSize)
            throw new ArgumentException($"The tokenizer's vocabulary ({vocabLimit}) does not fit the model's ({model.Config.VocabSize}).", nameof(vocabLimit));
        this.model = model;
        this.vocabLimit = vocabLimit;
    }

    /// <summary>Yields new tokens one at a time as they are generated (streaming).</summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, SamplingOptions options)
    {
        options.Validate();
        if (prompt.Count == 0) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        foreach (var t in prompt)
            if ((uint)t >= (uint)vocabLimit) throw new ArgumentException($"Prompt token {t} is outside the vocabulary of {vocabLimit}.", nameof(prompt));
        return GenerateCore(prompt, options);
    }

    IEnumerable<int> GenerateCore(IReadOnlyList<int> prompt, SamplingOptions options)
    {
        int block = model.Config.BlockSize;
        int keep = Math.Max(1, (int)(block * KeepFraction));
        var picker = new LogitsSampler(vocabLimit, options.Seed);
        var context = new List<int>(prompt.Count + options.MaxNewTokens);
        context.AddRange(prompt);
        var cache = model.NewCache();
        int[] one = new int[1];

        // Each span of logits is consumed before the next yield (spans cannot live across it).
        int next = picker.Sample(Prefill(cache, context, block), options);
        for (int n = 0; n < options.MaxNewTokens; n++)
        {
            yield return next;
            context.Add(next);
            if (n == options.MaxNewTokens - 1) break;
            one[0] = next;
            next = cache.Length >= block
                ? picker.Sample(Prefill(cache, context, keep), options)
                : picker.Sample(model.Decode(one, cache), options);
        }
    }

    /// <summary>Resets the cache and runs the last <paramref name="window"/> tokens of the context through it.</summary>
    ReadOnlySpan<float> Prefill(GptKvCache cache, List<int> context, int window)
    {
        cache.Reset();
        int start = Math.Max(0, context.Count - window);
        var tokens = new int[context.Count - start];
        context.CopyTo(start, tokens, 0, tokens.Length);
        return model.Decode(tokens, cache);
    }
}
