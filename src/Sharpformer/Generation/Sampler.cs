using Sharpformer.Models;
using Sharpformer.Nn;

namespace Sharpformer.Generation;

/// <summary>
/// Autoregressive sampling from any <see cref="ITokenDecoder"/> (a <see cref="Gpt"/>) with a KV cache: the prompt is run once, then each new
/// token costs one cached decode step. When the context reaches the model's block size, it is cropped to its
/// most recent <see cref="KeepFraction"/> and the cache rebuilt from those tokens (learned absolute
/// positions make a sliding cache impossible; cropping by a fraction keeps the rebuild cost amortised,
/// where nanoGPT re-runs the whole window for every token).
/// </summary>
public sealed class Sampler
{
    /// <summary>
    /// Most streams sampled together: a decode step of this many rows still multiplies by the packed block
    /// weights (or, for models too large to pack, by GEMM's dot-product path, as the head always does), each of
    /// which computes a row as it would alone.
    /// </summary>
    public const int MaxStreams = Kernels.Gemm.SkinnyRows;

    /// <summary>
    /// Largest packed copy of the block weights a run makes for its decode steps (GPT-2 124M's is 340 MB):
    /// several streams then run near the machine's FMA rate instead of GEMM's dot-product path's.
    /// </summary>
    public const long MaxPackedBytes = 512L << 20;

    /// <summary>Share of the block kept when the context is cropped.</summary>
    public const double KeepFraction = 0.75;

    readonly ITokenDecoder model;
    readonly int vocabLimit;

    /// <param name="vocabLimit">The tokenizer's vocabulary size; padded embedding rows beyond it are never sampled.</param>
    public Sampler(ITokenDecoder model, int vocabLimit)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (vocabLimit < 1 || vocabLimit > model.VocabSize)
            throw new ArgumentException($"The tokenizer's vocabulary ({vocabLimit}) does not fit the model's ({model.VocabSize}).", nameof(vocabLimit));
        this.model = model;
        this.vocabLimit = vocabLimit;
    }

    /// <summary>Yields new tokens one at a time as they are generated (streaming).</summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, SamplingOptions options) =>
        Generate(prompt, 1, options).Select(step => step[0]);

    /// <summary>
    /// Continues one prompt in <paramref name="streams"/> independent samples at once, yielding each step's new
    /// token of every stream. Stream s draws with seed <c>Seed + s</c> and its tokens are exactly those of
    /// <c>Generate(prompt, options with { Seed = Seed + s })</c>: a decode step reads each weight once for all
    /// the streams, and every stream computes bit for bit what it would alone (the prompt runs once, and a
    /// rebuilt cache never sends a stream's rows through another GEMM path than running it alone would).
    /// </summary>
    public IEnumerable<int[]> Generate(IReadOnlyList<int> prompt, int streams, SamplingOptions options)
    {
        options.Validate();
        if (streams < 1 || streams > MaxStreams)
            throw new ArgumentException($"The number of streams must be between 1 and {MaxStreams}, got {streams}.", nameof(streams));
        if (prompt.Count == 0) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        foreach (var t in prompt)
            if ((uint)t >= (uint)vocabLimit) throw new ArgumentException($"Prompt token {t} is outside the vocabulary of {vocabLimit}.", nameof(prompt));
        return GenerateCore(prompt, streams, options);
    }

    IEnumerable<int[]> GenerateCore(IReadOnlyList<int> prompt, int streams, SamplingOptions options)
    {
        int block = model.ContextLength, vocab = model.VocabSize;
        int keep = Math.Max(1, (int)(block * KeepFraction));
        var pickers = new LogitsSampler[streams];
        var contexts = new List<int>[streams];
        for (int s = 0; s < streams; s++)
        {
            pickers[s] = new LogitsSampler(vocabLimit, options.Seed + (ulong)s);
            contexts[s] = new List<int>(prompt.Count + options.MaxNewTokens);
            contexts[s].AddRange(prompt);
        }
        // The block weights packed once for this run's decode steps, shared by both caches; not for models whose
        // second copy would be large (GPT-2 medium and up), which decode through GEMM's dot-product path.
        using var weights = model.PackedBytes <= MaxPackedBytes ? model.PackForDecode() : null;
        using var cache = model.NewCache(streams, weights);
        using var single = streams > 1 ? model.NewCache(1, weights) : null;
        var next = new int[streams];

        // Each span of logits is consumed before the next yield (spans cannot live across it).
        Rebuild(cache, single, contexts, block, pickers, next, options, sharedPrompt: true);
        for (int n = 0; n < options.MaxNewTokens; n++)
        {
            yield return (int[])next.Clone();
            for (int s = 0; s < streams; s++) contexts[s].Add(next[s]);
            if (n == options.MaxNewTokens - 1) break;
            if (cache.Length >= block)
            {
                Rebuild(cache, single, contexts, keep, pickers, next, options, sharedPrompt: false);
                continue;
            }
            var logits = model.Decode(next, cache);
            for (int s = 0; s < streams; s++) next[s] = pickers[s].Sample(logits.Slice(s * vocab, vocab), options);
        }
    }

    /// <summary>
    /// Refills the cache from the last <paramref name="window"/> tokens of each context and samples every
    /// stream's next token. A prompt all streams share is run once and copied into each. Different contexts
    /// run together when that puts each stream's rows through the same GEMM path as running it alone would
    /// (both above, or both within, the dot-product path's rows); otherwise one at a time through a
    /// one-stream cache, copied in.
    /// </summary>
    void Rebuild(KvCache cache, KvCache? single, List<int>[] contexts, int window, LogitsSampler[] pickers, int[] next, SamplingOptions options, bool sharedPrompt)
    {
        int streams = contexts.Length, count = Math.Min(window, contexts[0].Count);
        if (!sharedPrompt && streams > 1 && (count > Kernels.Gemm.SkinnyRows || streams * count <= Kernels.Gemm.SkinnyRows))
        {
            cache.Reset();
            var tokens = new int[streams * count];
            for (int s = 0; s < streams; s++) contexts[s].CopyTo(contexts[s].Count - count, tokens, s * count, count);
            var all = model.Decode(tokens, cache);
            int vocab = model.VocabSize;
            for (int s = 0; s < streams; s++) next[s] = pickers[s].Sample(all.Slice(s * vocab, vocab), options);
            return;
        }
        var one = single ?? cache;
        ReadOnlySpan<float> logits = default;
        for (int s = 0; s < contexts.Length; s++)
        {
            if (!sharedPrompt || s == 0)
            {
                one.Reset();
                var context = contexts[s];
                int start = Math.Max(0, context.Count - window);
                var tokens = new int[context.Count - start];
                context.CopyTo(start, tokens, 0, tokens.Length);
                logits = model.Decode(tokens, one);
            }
            if (single is not null) cache.CopyStream(single, s);
            next[s] = pickers[s].Sample(logits, options);
        }
    }
}
