using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Data;

/// <summary>
/// Source/target pairs for teacher forcing, padded to the longest source S and longest target T of this batch
/// (rounded up to a multiple of <c>padMultiple</c>, so token-budget batches come in few shapes):
/// source ids [B, S] with their lengths, target inputs [B, T] (&lt;s&gt; + target) and target outputs [B, T]
/// (target + &lt;/s&gt;, -1 past each length) with the target lengths (+1 for the added token). Padding holds
/// &lt;pad&gt; in the ids. The arrays are sized for the largest batch and reused; read them through the spans. A fill may
/// hold fewer pairs than the capacity (token-budget batches of long sentences).
/// </summary>
public sealed class TranslationBatch : Batch
{
    public TranslationBatch(int batch, int maxSourceLength, int maxTargetLength)
    {
        if (batch <= 0 || maxSourceLength <= 0 || maxTargetLength <= 0)
            throw new ArgumentException($"A translation batch needs positive sizes, got batch {batch}, source {maxSourceLength}, target {maxTargetLength}.");
        Capacity = Batch = batch;
        MaxSourceLength = maxSourceLength;
        MaxTargetLength = maxTargetLength;
        SourceBuffer = new int[checked(batch * maxSourceLength)];
        TargetInputBuffer = new int[checked(batch * maxTargetLength)];
        TargetOutputBuffer = new int[TargetInputBuffer.Length];
        SourceLengthBuffer = new int[batch];
        TargetLengthBuffer = new int[batch];
    }

    /// <summary>Pairs in this fill.</summary>
    public int Batch { get; private set; }
    /// <summary>Most pairs a fill may hold.</summary>
    public int Capacity { get; }
    public int MaxSourceLength { get; }
    public int MaxTargetLength { get; }

    /// <summary>Source positions S of this batch (its longest source).</summary>
    public int SourceTime { get; private set; }

    /// <summary>Target positions T of this batch (its longest target + 1).</summary>
    public int TargetTime { get; private set; }

    int[] SourceBuffer { get; }
    int[] TargetInputBuffer { get; }
    int[] TargetOutputBuffer { get; }

    public ReadOnlySpan<int> SourceIds => SourceBuffer.AsSpan(0, Batch * SourceTime);
    public ReadOnlySpan<int> TargetInputs => TargetInputBuffer.AsSpan(0, Batch * TargetTime);
    public ReadOnlySpan<int> TargetOutputs => TargetOutputBuffer.AsSpan(0, Batch * TargetTime);
    int[] SourceLengthBuffer { get; }
    int[] TargetLengthBuffer { get; }
    public ReadOnlySpan<int> SourceLengths => SourceLengthBuffer.AsSpan(0, Batch);
    public ReadOnlySpan<int> TargetLengths => TargetLengthBuffer.AsSpan(0, Batch);

    public override int Examples => Batch;
    public override long InputTokens
    {
        get
        {
            long n = 0;
            for (int b = 0; b < Batch; b++) n += SourceLengthBuffer[b] + TargetLengthBuffer[b];
            return n;
        }
    }

    /// <summary>
    /// Lays the pairs out as this batch, one pair per row (1 to Capacity of them), padding S and T up to a
    /// multiple of <paramref name="padMultiple"/> (at most the largest lengths).
    /// </summary>
    public void Fill(ReadOnlySpan<(int[] Source, int[] Target)> pairs, int padMultiple = 1)
    {
        if (pairs.Length < 1 || pairs.Length > Capacity) throw new ArgumentException($"TranslationBatch: {pairs.Length} pairs for a batch of 1 to {Capacity}.", nameof(pairs));
        if (padMultiple < 1) throw new ArgumentOutOfRangeException(nameof(padMultiple), padMultiple, "padMultiple must be positive.");
        Batch = pairs.Length;
        int s = 1, t = 1;
        foreach (var (source, target) in pairs)
        {
            if (source.Length == 0 || source.Length > MaxSourceLength || target.Length + 1 > MaxTargetLength)
                throw new ArgumentException($"TranslationBatch: a pair of {source.Length} and {target.Length} tokens does not fit 1..{MaxSourceLength} source and {MaxTargetLength - 1} target tokens.", nameof(pairs));
            s = Math.Max(s, source.Length);
            t = Math.Max(t, target.Length + 1);
        }
        s = Math.Min(MaxSourceLength, (s + padMultiple - 1) / padMultiple * padMultiple);
        t = Math.Min(MaxTargetLength, (t + padMultiple - 1) / padMultiple * padMultiple);
        (SourceTime, TargetTime) = (s, t);
        var src = SourceBuffer.AsSpan(0, Batch * s);
        var input = TargetInputBuffer.AsSpan(0, Batch * t);
        var output = TargetOutputBuffer.AsSpan(0, Batch * t);
        src.Fill(SubwordTokenizer.PadId);
        input.Fill(SubwordTokenizer.PadId);
        output.Fill(Kernels.CrossEntropy.IgnoreIndex);
        for (int b = 0; b < Batch; b++)
        {
            var (source, target) = pairs[b];
            source.CopyTo(src.Slice(b * s));
            input[b * t] = SubwordTokenizer.BosId;
            target.CopyTo(input.Slice(b * t + 1));
            target.CopyTo(output.Slice(b * t));
            output[b * t + target.Length] = SubwordTokenizer.EosId;
            SourceLengthBuffer[b] = source.Length;
            TargetLengthBuffer[b] = target.Length + 1;
        }
    }
}

/// <summary>
/// Tokenized sentence pairs held in memory, drawn into <see cref="TranslationBatch"/>es. Without a token budget: batch-size
/// pairs drawn uniformly at random (with replacement), padded to each batch's longest sentence. With a token budget
/// (fairseq's --max-tokens): pairs of similar length together, so that a batch is mostly tokens, not padding. Pairs
/// fall into buckets by their longer side L (source, or target + 1) rounded up to a multiple of 8; a step picks a bucket
/// with probability proportional to its padded tokens (so every pair is drawn equally often, whatever its length), then
/// max-tokens / L distinct pairs of it, and pads S and T to multiples of 8. Every choice comes from the caller's
/// generator and nothing else changes, so a resumed run draws the same batches.
/// </summary>
public sealed class TranslationBatches : IBatchSource
{
    /// <summary>Token-budget batches pad their lengths to multiples of this: few distinct shapes, whose buffers the tensor pool reuses.</summary>
    public const int PadMultiple = 8;

    readonly (int[] Source, int[] Target)[] pairs;
    readonly (int[] Source, int[] Target)[] drawn;
    readonly TranslationBatch batch;
    readonly int maxTokens;
    readonly (int Length, int[] Members)[] buckets = [];
    readonly long[] cumulativeTokens = [];
    readonly HashSet<int> chosen = [];
    readonly List<int> order = [];

    /// <param name="batchSize">Pairs per batch without a token budget.</param>
    /// <param name="maxSourceLength">Longest source (the encoder's positions).</param>
    /// <param name="maxTargetLength">Longest target + 1 (the decoder's positions: &lt;s&gt; or &lt;/s&gt; is added).</param>
    /// <param name="maxTokens">0, or the padded tokens per side a batch may hold (its pairs × its longer padded side).</param>
    public TranslationBatches(IReadOnlyList<(int[] Source, int[] Target)> pairs, int batchSize, int maxSourceLength, int maxTargetLength, int maxTokens = 0)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) throw new ArgumentException("There are no sentence pairs.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch-size must be positive.");
        if (maxTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "max-tokens must be 0 or positive.");
        for (int i = 0; i < pairs.Count; i++)
        {
            var (s, t) = pairs[i];
            if (s.Length == 0 || s.Length > maxSourceLength || t.Length + 1 > maxTargetLength)
                throw new ArgumentException($"Pair {i} holds {s.Length} source and {t.Length} target tokens; sources must hold 1 to {maxSourceLength}, targets at most {maxTargetLength - 1}.");
        }
        this.pairs = [.. pairs];
        this.maxTokens = maxTokens;
        int capacity = batchSize;
        if (maxTokens > 0)
        {
            buckets = [.. Enumerable.Range(0, this.pairs.Length).GroupBy(i => BucketLength(this.pairs[i])).OrderBy(g => g.Key).Select(g => (g.Key, g.ToArray()))];
            cumulativeTokens = new long[buckets.Length];
            long total = 0;
            for (int b = 0; b < buckets.Length; b++) cumulativeTokens[b] = total += (long)buckets[b].Length * buckets[b].Members.Length;
            capacity = buckets.Max(b => PairsPerBatch(b));
        }
        drawn = new (int[], int[])[capacity];
        batch = new TranslationBatch(capacity, maxSourceLength, maxTargetLength);
    }

    public int Count => pairs.Length;

    static int BucketLength((int[] Source, int[] Target) pair) =>
        (Math.Max(pair.Source.Length, pair.Target.Length + 1) + PadMultiple - 1) / PadMultiple * PadMultiple;

    int PairsPerBatch((int Length, int[] Members) bucket) => Math.Clamp(maxTokens / bucket.Length, 1, bucket.Members.Length);

    /// <summary>
    /// Every pair once, in a fixed order (by bucket with a token budget), for an exact mean over a split; the batch is
    /// refilled at each step of the enumeration.
    /// </summary>
    public IEnumerable<TranslationBatch> All()
    {
        var groups = maxTokens == 0 ? [(0, Enumerable.Range(0, pairs.Length).ToArray())] : buckets;
        foreach (var bucket in groups)
        {
            int n = maxTokens == 0 ? drawn.Length : PairsPerBatch(bucket);
            for (int start = 0; start < bucket.Members.Length; start += n)
            {
                int count = Math.Min(n, bucket.Members.Length - start);
                for (int i = 0; i < count; i++) drawn[i] = pairs[bucket.Members[start + i]];
                batch.Fill(drawn.AsSpan(0, count), maxTokens == 0 ? 1 : PadMultiple);
                yield return batch;
            }
        }
    }

    public Batch Next(ref Rng rng)
    {
        if (maxTokens == 0)
        {
            for (int b = 0; b < drawn.Length; b++) drawn[b] = pairs[rng.NextInt(pairs.Length)];
            batch.Fill(drawn);
            return batch;
        }
        // A bucket in proportion to its padded tokens, then n distinct members of it (Floyd's sampling).
        long r = (long)(rng.NextDouble() * cumulativeTokens[^1]);
        int k = 0;
        while (cumulativeTokens[k] <= r) k++;
        var (_, members) = buckets[k];
        int n = PairsPerBatch(buckets[k]);
        chosen.Clear();
        order.Clear();
        for (int j = members.Length - n; j < members.Length; j++)
        {
            int pick = rng.NextInt(j + 1);
            if (!chosen.Add(pick)) { chosen.Add(j); pick = j; }
            order.Add(pick);
        }
        for (int i = 0; i < n; i++) drawn[i] = pairs[members[order[i]]];
        batch.Fill(drawn.AsSpan(0, n), PadMultiple);
        return batch;
    }
}
