using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>
/// nanoGPT's get_batch: B windows at random offsets of a token sequence, x = tokens[i, i+T) and
/// y = tokens[i+1, i+T+1).
/// </summary>
public sealed class LanguageModelBatches : IBatchSource
{
    readonly ITokenSource tokens;
    readonly TokenBatch batch;
    readonly int[] window;

    /// <param name="split">The split's name, for the error when it is too short ("train", "val").</param>
    public LanguageModelBatches(ITokenSource tokens, int batchSize, int blockSize, string split = "data")
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count < (long)blockSize + 1)
            throw new ArgumentException($"The {split} split holds {tokens.Count} tokens, fewer than block-size + 1 = {(long)blockSize + 1}: use a smaller --block-size or more text.");
        this.tokens = tokens;
        batch = new TokenBatch(batchSize, blockSize);
        window = new int[blockSize + 1];
    }

    public Batch Next(ref Rng rng)
    {
        int T = batch.Time;
        long starts = tokens.Count - T;
        for (int b = 0; b < batch.Batch; b++)
        {
            long i = starts <= int.MaxValue ? rng.NextInt((int)starts) : (long)(rng.NextDouble() * starts);
            tokens.Read(i, window);
            window.AsSpan(0, T).CopyTo(batch.Inputs.AsSpan(b * T, T));
            window.AsSpan(1, T).CopyTo(batch.Targets.AsSpan(b * T, T));
        }
        return batch;
    }
}

/// <summary>
/// Labelled token sequences held in memory, drawn uniformly at random (with replacement) into batches padded
/// to the longest allowed length T; longer sequences are an error (truncate when preparing them). Segment ids,
/// when given, are one per token (a BERT text pair); otherwise all 0.
/// </summary>
public sealed class LabeledSequences : IBatchSource
{
    readonly (int[] Ids, int Label)[] examples;
    readonly int[][]? segments;
    readonly LabeledSequenceBatch batch;

    public LabeledSequences(IReadOnlyList<(int[] Ids, int Label)> examples, int batchSize, int maxLength, int classes, IReadOnlyList<int[]>? segments = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("There are no labelled sequences.");
        for (int i = 0; i < examples.Count; i++)
        {
            var (ids, label) = examples[i];
            if (ids.Length == 0 || ids.Length > maxLength)
                throw new ArgumentException($"Sequence {i} holds {ids.Length} tokens; every sequence must hold 1 to {maxLength}.");
            if ((uint)label >= (uint)classes) throw new ArgumentException($"Sequence {i} has label {label}, outside the {classes} classes.");
        }
        if (segments is not null)
        {
            if (segments.Count != examples.Count) throw new ArgumentException($"{segments.Count} segment-id arrays for {examples.Count} sequences.");
            for (int i = 0; i < segments.Count; i++)
                if (segments[i].Length != examples[i].Ids.Length) throw new ArgumentException($"Sequence {i} holds {examples[i].Ids.Length} tokens but {segments[i].Length} segment ids.");
            this.segments = [.. segments];
        }
        this.examples = [.. examples];
        batch = new LabeledSequenceBatch(batchSize, maxLength);
    }

    public Batch Next(ref Rng rng)
    {
        int T = batch.Time;
        batch.Ids.AsSpan().Clear();
        batch.Segments.AsSpan().Clear();
        for (int b = 0; b < batch.Batch; b++)
        {
            int i = rng.NextInt(examples.Length);
            var (ids, label) = examples[i];
            ids.CopyTo(batch.Ids.AsSpan(b * T, ids.Length));
            segments?[i].CopyTo(batch.Segments.AsSpan(b * T, ids.Length));
            batch.Lengths[b] = ids.Length;
            batch.Labels[b] = label;
        }
        return batch;
    }
}
