using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Text;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Models;

/// <summary>How a finished hypothesis's log-probability is divided by its length |Y| (tokens including &lt;/s&gt;).</summary>
public enum LengthPenaltyKind
{
    /// <summary>score / |Y|^α (fairseq's --lenpen).</summary>
    Fairseq,
    /// <summary>score / ((5 + |Y|) / 6)^α (GNMT, Wu et al. 2016).</summary>
    Gnmt,
}

/// <summary>How <see cref="Seq2Seq.Translate"/> searches: greedy (beam 1) or beam search, and how long a translation may be.</summary>
public sealed record TranslationSearch
{
    /// <summary>Hypotheses kept per sentence; 1 is greedy decoding.</summary>
    public int BeamSize { get; init; } = 1;
    /// <summary>α of the length penalty (0 compares raw log-probabilities).</summary>
    public double LengthPenalty { get; init; } = 1.0;
    public LengthPenaltyKind PenaltyKind { get; init; } = LengthPenaltyKind.Fairseq;
    /// <summary>A translation holds at most a·(source length) + b tokens (with &lt;/s&gt;), and never more than the model's max length.</summary>
    public double MaxLengthA { get; init; } = 1.5;
    public int MaxLengthB { get; init; } = 10;
    /// <summary>Sentences decoded together (their beams share one cache).</summary>
    public int SentencesPerBatch { get; init; } = 32;

    public void Validate()
    {
        if (BeamSize < 1 || BeamSize > 256) throw new ArgumentException($"beam size must lie in 1..256, got {BeamSize}.");
        if (!(LengthPenalty >= 0 && double.IsFinite(LengthPenalty))) throw new ArgumentException($"length penalty must be a finite number ≥ 0, got {LengthPenalty}.");
        if (!(MaxLengthA >= 0 && double.IsFinite(MaxLengthA)) || MaxLengthB < 0) throw new ArgumentException($"max length a·n + b needs a ≥ 0 and b ≥ 0, got a = {MaxLengthA}, b = {MaxLengthB}.");
        if (SentencesPerBatch < 1) throw new ArgumentException($"sentences per batch must be positive, got {SentencesPerBatch}.");
    }

    /// <summary>Most tokens (with &lt;/s&gt;) a translation of a source of <paramref name="sourceLength"/> tokens may hold.</summary>
    public int MaxTokens(int sourceLength, int modelMaxLength) =>
        (int)Math.Clamp(Math.Floor(MaxLengthA * sourceLength) + MaxLengthB, 1, modelMaxLength);

    /// <summary>The length-normalised score of a finished hypothesis.</summary>
    public double Normalise(double logProbability, int length) => PenaltyKind == LengthPenaltyKind.Fairseq
        ? logProbability / Math.Pow(length, LengthPenalty)
        : logProbability / Math.Pow((5.0 + length) / 6.0, LengthPenalty);
}

/// <summary>Incremental decoding: the encoder runs once per batch of sentences, the decoder one token per stream per step over a <see cref="KvCache"/>.</summary>
public sealed partial class Seq2Seq
{
    /// <summary>The decoder blocks' weights packed for decode steps; dispose after the caches that use it.</summary>
    public DecodeWeights PackForDecode() => new(decoder);

    /// <summary>A decoder cache of <paramref name="streams"/> streams (sentences × beams) over sources of up to <paramref name="memoryLength"/> tokens.</summary>
    public KvCache NewDecoderCache(int streams, int memoryLength, int capacity = 0, DecodeWeights? weights = null) =>
        new(decoder, streams, capacity > 0 ? Math.Min(capacity, Config.MaxLength) : Config.MaxLength, memoryLength, weights);

    /// <summary>
    /// Starts decoding: the cross-attention keys and values of the encoder output <paramref name="memory"/>
    /// [streams, S, C] into every decoder layer, each stream's source length, and an empty self-attention cache.
    /// </summary>
    public void StartDecoding(KvCache cache, ReadOnlySpan<float> memory, ReadOnlySpan<int> sourceLengths)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache.Blocks != decoder) throw new ArgumentException("Seq2Seq.StartDecoding: this cache was made by another model.", nameof(cache));
        if (sourceLengths.Length != cache.Streams) throw new ArgumentException($"Seq2Seq.StartDecoding: {sourceLengths.Length} source lengths for {cache.Streams} streams.");
        foreach (int n in sourceLengths)
            if (n < 1 || n > cache.MemoryLength) throw new ArgumentException($"Seq2Seq.StartDecoding: source length {n} is outside 1..{cache.MemoryLength}.");
        sourceLengths.CopyTo(cache.MemoryLengths);
        for (int l = 0; l < decoder.Length; l++) decoder[l].PrepareMemory(cache, l, memory);
        cache.Reset();
    }

    /// <summary>
    /// Appends one token per stream and returns the next-token logits [streams, V] (flattened), valid until the
    /// next call with the same cache. No tape, evaluation maths (no dropout).
    /// </summary>
    public ReadOnlySpan<float> DecodeStep(ReadOnlySpan<int> tokens, KvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache.Blocks != decoder) throw new ArgumentException("Seq2Seq.DecodeStep: this cache was made by another model.", nameof(cache));
        int streams = cache.Streams, c = Config.DModel, past = cache.Length;
        if (tokens.Length != streams) throw new ArgumentException($"Seq2Seq.DecodeStep: {tokens.Length} tokens for {streams} streams (one each).", nameof(tokens));
        if (past >= cache.Capacity) throw new ArgumentException($"Seq2Seq.DecodeStep: the cache is full ({cache.Capacity} positions).", nameof(cache));
        foreach (int t in tokens)
            if ((uint)t >= (uint)Config.VocabSize) throw new ArgumentException($"Seq2Seq.DecodeStep: token {t} is outside the vocabulary of {Config.VocabSize}.", nameof(tokens));

        cache.EnsureScratch(streams);
        Span<float> x = cache.X[..(streams * c)];
        // x = √d · E[token] + position[past]
        ReadOnlySpan<float> table = TargetEmbedding.Weight.Value.Span, position = (TargetPositions.Weight?.Value ?? sinusoids!).Span.Slice(past * c, c);
        for (int s = 0; s < streams; s++)
            TensorPrimitives.MultiplyAdd(table.Slice(tokens[s] * c, c), Scale, position, x.Slice(s * c, c));
        for (int l = 0; l < decoder.Length; l++) decoder[l].DecodeStep(cache, l, 1);

        ReadOnlySpan<float> top = x;
        if (DecoderNorm is not null)
        {
            Span<float> normed = cache.H[..(streams * c)];
            TransformerBlock.LayerNormRows(DecoderNorm, x, normed, cache.Stats, cache.Stats.Slice(streams, streams), streams, Config.LayerNormEpsilon);
            top = normed;
        }
        Span<float> logits = cache.Logits(Config.VocabSize);
        Gemm.Multiply(top, OutputProjection.Value.Span, logits, streams, c, Config.VocabSize, transB: true);
        cache.Length = past + 1;
        return logits;
    }

    /// <summary>
    /// Translates token sequences (each 1..max-length tokens, no &lt;s&gt;/&lt;/s&gt;): greedy for beam size 1, else beam
    /// search, in batches of sentences. Returns each translation's tokens without &lt;/s&gt;.
    /// </summary>
    public int[][] Translate(IReadOnlyList<int[]> sources, TranslationSearch? search = null)
    {
        ArgumentNullException.ThrowIfNull(sources);
        search ??= new TranslationSearch();
        search.Validate();
        var results = new int[sources.Count][];
        bool training = IsTraining;
        Eval();
        try
        {
            using var weights = PackForDecode();
            for (int start = 0; start < sources.Count; start += search.SentencesPerBatch)
            {
                int n = Math.Min(search.SentencesPerBatch, sources.Count - start);
                var chunk = Enumerable.Range(start, n).Select(i => sources[i]).ToArray();
                var translated = search.BeamSize == 1 ? GreedyBatch(chunk, search, weights) : BeamBatch(chunk, search, weights);
                translated.CopyTo(results, start);
            }
        }
        finally { Train(training); }
        return results;
    }

    /// <summary>Encodes the sentences padded to the longest, repeating each one's memory for its <paramref name="beams"/> streams, into a ready cache.</summary>
    KvCache StartBatch(int[][] sources, int beams, int capacity, DecodeWeights weights)
    {
        int n = sources.Length, s = sources.Max(x => x.Length), c = Config.DModel;
        if (sources.Any(x => x.Length == 0)) throw new ArgumentException("Seq2Seq.Translate: a source holds no tokens.");
        var ids = new int[n * s];
        ids.AsSpan().Fill(SubwordTokenizer.PadId);
        var lengths = new int[n];
        for (int i = 0; i < n; i++)
        {
            sources[i].CopyTo(ids, i * s);
            lengths[i] = sources[i].Length;
        }
        using var memory = Encode(ids, lengths, n, s);
        var expanded = new float[n * beams * s * c];
        var streamLengths = new int[n * beams];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < beams; k++)
            {
                memory.Span.Slice(i * s * c, s * c).CopyTo(expanded.AsSpan((i * beams + k) * s * c));
                streamLengths[i * beams + k] = lengths[i];
            }
        var cache = NewDecoderCache(n * beams, s, capacity, weights);
        StartDecoding(cache, expanded, streamLengths);
        return cache;
    }

    int[][] GreedyBatch(int[][] sources, TranslationSearch search, DecodeWeights weights)
    {
        int n = sources.Length, vocab = Config.VocabSize;
        var limits = sources.Select(x => search.MaxTokens(x.Length, Config.MaxLength)).ToArray();
        using var cache = StartBatch(sources, 1, limits.Max(), weights);
        var outputs = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var done = new bool[n];
        var tokens = Enumerable.Repeat(SubwordTokenizer.BosId, n).ToArray();
        for (int step = 0; done.Contains(false); step++)
        {
            var logits = DecodeStep(tokens, cache);
            for (int i = 0; i < n; i++)
            {
                if (done[i]) continue;
                int next = step == limits[i] - 1 ? SubwordTokenizer.EosId : TensorPrimitives.IndexOfMax(logits.Slice(i * vocab, vocab));
                if (next == SubwordTokenizer.EosId) done[i] = true;
                else outputs[i].Add(next);
                tokens[i] = next;
            }
        }
        return outputs.Select(o => o.ToArray()).ToArray();
    }

    /// <summary>
    /// fairseq's beam search: each step every live beam proposes its continuations; of a sentence's best 2K,
    /// those ending in &lt;/s&gt; among the first K are finished (length-normalised), and the first K others become the
    /// next beams (the cache reordered by parent). A sentence is done with K finished hypotheses; at its length
    /// limit only &lt;/s&gt; may follow. The best finished hypothesis wins.
    /// </summary>
    int[][] BeamBatch(int[][] sources, TranslationSearch search, DecodeWeights weights)
    {
        int n = sources.Length, k = search.BeamSize, vocab = Config.VocabSize, streams = n * k;
        var limits = sources.Select(x => search.MaxTokens(x.Length, Config.MaxLength)).ToArray();
        using var cache = StartBatch(sources, k, limits.Max(), weights);
        var scores = new double[streams];
        for (int s = 0; s < streams; s++) scores[s] = s % k == 0 ? 0 : double.NegativeInfinity; // the K beams start identical: keep one
        var hypotheses = Enumerable.Range(0, streams).Select(_ => Array.Empty<int>()).ToArray();
        var finished = Enumerable.Range(0, n).Select(_ => new List<(int[] Tokens, double Score)>()).ToArray();
        var done = new bool[n];
        var tokens = Enumerable.Repeat(SubwordTokenizer.BosId, streams).ToArray();
        var parents = new int[streams];
        var nextScores = new double[streams];
        var nextHypotheses = new int[streams][];
        var logProbabilities = new double[vocab];
        var best = new BestCandidates(2 * k);

        for (int step = 0; done.Contains(false); step++)
        {
            var logits = DecodeStep(tokens, cache);
            for (int i = 0; i < n; i++)
            {
                int first = i * k;
                if (done[i])
                {
                    for (int b = first; b < first + k; b++) (parents[b], nextScores[b], nextHypotheses[b]) = (b, double.NegativeInfinity, hypotheses[b]);
                    continue;
                }
                bool forced = step == limits[i] - 1;
                best.Clear();
                for (int b = 0; b < k; b++)
                {
                    double score = scores[first + b];
                    if (double.IsNegativeInfinity(score)) continue;
                    LogSoftmax(logits.Slice((first + b) * vocab, vocab), logProbabilities);
                    if (forced) best.Offer(score + logProbabilities[SubwordTokenizer.EosId], b, SubwordTokenizer.EosId);
                    else for (int v = 0; v < vocab; v++) best.Offer(score + logProbabilities[v], b, v);
                }
                int live = 0;
                for (int j = 0; j < best.Count; j++)
                {
                    var (score, beam, token) = best[j];
                    var prefix = hypotheses[first + beam];
                    if (token == SubwordTokenizer.EosId)
                    {
                        if (j < k && finished[i].Count < k) finished[i].Add((prefix, search.Normalise(score, prefix.Length + 1)));
                    }
                    else if (live < k)
                    {
                        int slot = first + live++;
                        (parents[slot], nextScores[slot], nextHypotheses[slot]) = (first + beam, score, [.. prefix, token]);
                    }
                }
                for (int slot = first + live; slot < first + k; slot++) (parents[slot], nextScores[slot], nextHypotheses[slot]) = (first, double.NegativeInfinity, []);
                if (finished[i].Count >= k || live == 0) done[i] = true;
            }
            if (!done.Contains(false)) break;
            cache.Reorder(parents);
            for (int s = 0; s < streams; s++)
            {
                scores[s] = nextScores[s];
                hypotheses[s] = nextHypotheses[s];
                tokens[s] = hypotheses[s].Length > 0 ? hypotheses[s][^1] : SubwordTokenizer.EosId; // a dead beam feeds any token
            }
        }
        return finished.Select(f => f.Count == 0 ? [] : f.MaxBy(h => h.Score).Tokens).ToArray();
    }

    /// <summary>log softmax of one row of logits, in double.</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> result)
    {
        double max = TensorPrimitives.Max(logits), sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        double lse = max + Math.Log(sum);
        for (int v = 0; v < logits.Length; v++) result[v] = logits[v] - lse;
    }

    /// <summary>The best few (score, beam, token) candidates, highest score first, ties to the earlier (beam, token).</summary>
    sealed class BestCandidates(int capacity)
    {
        readonly (double Score, int Beam, int Token)[] items = new (double, int, int)[capacity];
        public int Count { get; private set; }
        public (double Score, int Beam, int Token) this[int i] => items[i];
        public void Clear() => Count = 0;

        public void Offer(double score, int beam, int token)
        {
            if (Count == items.Length && !(score > items[Count - 1].Score)) return;
            int i = Count < items.Length ? Count++ : Count - 1;
            while (i > 0 && score > items[i - 1].Score)
            {
                items[i] = items[i - 1];
                i--;
            }
            items[i] = (score, beam, token);
        }
    }
}
