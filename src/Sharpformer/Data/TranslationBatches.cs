using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Data;

/// <summary>
/// Source/target pairs for teacher forcing, padded to the longest source S and longest target T of this batch:
/// source ids [B, S] with their lengths, target inputs [B, T] (&lt;s&gt; + target) and target outputs [B, T]
/// (target + &lt;/s&gt;, -1 past each length) with the target lengths (+1 for the added token). Padding holds
/// &lt;pad&gt; in the ids. The arrays are sized for the largest batch and reused; read them through the spans.
/// </summary>
public sealed class TranslationBatch : Batch
{
    public TranslationBatch(int batch, int maxSourceLength, int maxTargetLength)
    {
        if (batch <= 0 || maxSourceLength <= 0 || maxTargetLength <= 0)
            throw new ArgumentException($"A translation batch needs positive sizes, got batch {batch}, source {maxSourceLength}, target {maxTargetLength}.");
        Batch = batch;
        MaxSourceLength = maxSourceLength;
        MaxTargetLength = maxTargetLength;
        SourceBuffer = new int[checked(batch * maxSourceLength)];
        TargetInputBuffer = new int[checked(batch * maxTargetLength)];
        TargetOutputBuffer = new int[TargetInputBuffer.Length];
        SourceLengths = new int[batch];
        TargetLengths = new int[batch];
    }

    public int Batch { get; }
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
    public int[] SourceLengths { get; }
    public int[] TargetLengths { get; }

    public override int Examples => Batch;
    public override long InputTokens => SourceLengths.Sum(l => (long)l) + TargetLengths.Sum(l => (long)l);

    /// <summary>Lays the pairs out as this batch (one pair per row; <paramref name="pairs"/> holds exactly Batch of them).</summary>
    public void Fill(ReadOnlySpan<(int[] Source, int[] Target)> pairs)
    {
        if (pairs.Length != Batch) throw new ArgumentException($"TranslationBatch: {pairs.Length} pairs for a batch of {Batch}.", nameof(pairs));
        int s = 1, t = 1;
        foreach (var (source, target) in pairs)
        {
            if (source.Length == 0 || source.Length > MaxSourceLength || target.Length + 1 > MaxTargetLength)
                throw new ArgumentException($"TranslationBatch: a pair of {source.Length} and {target.Length} tokens does not fit 1..{MaxSourceLength} source and {MaxTargetLength - 1} target tokens.", nameof(pairs));
            s = Math.Max(s, source.Length);
            t = Math.Max(t, target.Length + 1);
        }
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
            SourceLengths[b] = source.Length;
            TargetLengths[b] = target.Length + 1;
        }
    }
}

/// <summary>
/// Tokenized sentence pairs held in memory, drawn uniformly at random (with replacement) into
/// <see cref="TranslationBatch"/>es padded to each batch's longest sentence.
/// </summary>
public sealed class TranslationBatches : IBatchSource
{
    readonly (int[] Source, int[] Target)[] pairs;
    readonly (int[] Source, int[] Target)[] drawn;
    readonly TranslationBatch batch;

    /// <param name="maxSourceLength">Longest source (the encoder's positions).</param>
    /// <param name="maxTargetLength">Longest target + 1 (the decoder's positions: &lt;s&gt; or &lt;/s&gt; is added).</param>
    public TranslationBatches(IReadOnlyList<(int[] Source, int[] Target)> pairs, int batchSize, int maxSourceLength, int maxTargetLength)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) throw new ArgumentException("There are no sentence pairs.");
        for (int i = 0; i < pairs.Count; i++)
        {
            var (s, t) = pairs[i];
            if (s.Length == 0 || s.Length > maxSourceLength || t.Length + 1 > maxTargetLength)
                throw new ArgumentException($"Pair {i} holds {s.Length} source and {t.Length} target tokens; sources must hold 1 to {maxSourceLength}, targets at most {maxTargetLength - 1}.");
        }
        this.pairs = [.. pairs];
        drawn = new (int[], int[])[batchSize];
        batch = new TranslationBatch(batchSize, maxSourceLength, maxTargetLength);
    }

    public int Count => pairs.Length;

    public Batch Next(ref Rng rng)
    {
        for (int b = 0; b < drawn.Length; b++) drawn[b] = pairs[rng.NextInt(pairs.Length)];
        batch.Fill(drawn);
        return batch;
    }
}
