using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>
/// Masked-LM sequences: ids [B, T] as the model sees them (some replaced by [MASK] or a random token), segment ids
/// [B, T], lengths [B], and targets [B, T] holding the original token at each chosen position and -1 elsewhere.
/// </summary>
public sealed class MaskedLmBatch : Batch
{
    readonly List<int> positions = [], targets = [];

    public MaskedLmBatch(int batch, int time)
    {
        if (batch <= 0 || time <= 0) throw new ArgumentException($"A masked-LM batch needs positive batch and time, got [{batch}, {time}].");
        Batch = batch;
        Time = time;
        Ids = new int[checked(batch * time)];
        Segments = new int[Ids.Length];
        Targets = new int[Ids.Length];
        Lengths = new int[batch];
    }

    public int Batch { get; }
    public int Time { get; }
    public int[] Ids { get; }
    public int[] Segments { get; }
    public int[] Lengths { get; }
    public int[] Targets { get; }
    public override int Examples => Batch;
    public override long InputTokens => Lengths.Sum(l => (long)l);

    /// <summary>Flat indices (b·T + t) of the positions with a target, in order.</summary>
    public ReadOnlySpan<int> MaskedPositions()
    {
        Collect();
        return System.Runtime.InteropServices.CollectionsMarshal.AsSpan(positions);
    }

    /// <summary>The targets at <see cref="MaskedPositions"/>.</summary>
    public ReadOnlySpan<int> MaskedTargets()
    {
        Collect();
        return System.Runtime.InteropServices.CollectionsMarshal.AsSpan(targets);
    }

    void Collect()
    {
        positions.Clear();
        targets.Clear();
        for (int i = 0; i < Targets.Length; i++)
            if (Targets[i] >= 0)
            {
                positions.Add(i);
                targets.Add(Targets[i]);
            }
    }
}

/// <summary>
/// BERT's masking rule: each ordinary token (never a special one, never padding) is chosen with
/// <see cref="Probability"/>; a chosen token becomes [MASK] 80% of the time, a random ordinary token 10%, and
/// stays itself 10%; the loss is on chosen tokens only.
/// </summary>
public sealed record MaskingRule(int MaskId, int VocabSize, IReadOnlySet<int> SpecialIds, double Probability = 0.15)
{
    /// <summary>
    /// Masks ids[0, length) in place and writes targets (the original at chosen positions, -1 elsewhere), drawing
    /// from <paramref name="rng"/>; returns how many were chosen.
    /// </summary>
    public int Apply(Span<int> ids, Span<int> targets, ref Rng rng)
    {
        int chosen = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            targets[t] = -1;
            if (SpecialIds.Contains(ids[t]) || rng.NextDouble() >= Probability) continue;
            targets[t] = ids[t];
            chosen++;
            double r = rng.NextDouble();
            if (r < 0.8) ids[t] = MaskId;
            else if (r < 0.9) ids[t] = RandomOrdinaryToken(ref rng);
        }
        return chosen;
    }

    int RandomOrdinaryToken(ref Rng rng)
    {
        while (true)
        {
            int id = rng.NextInt(VocabSize);
            if (!SpecialIds.Contains(id)) return id;
        }
    }
}

/// <summary>
/// Token sequences held in memory (each already [CLS] … [SEP]), drawn uniformly at random (with replacement)
/// into masked-LM batches padded to T; the mask is drawn afresh for every batch from the passed generator, so a
/// resumed run sees the same masks. A batch in which nothing was chosen masks one ordinary token of its first
/// sequence, so the loss is always defined.
/// </summary>
public sealed class MaskedLmSequences : IBatchSource
{
    readonly int[][] sequences;
    readonly MaskingRule rule;
    readonly MaskedLmBatch batch;

    public MaskedLmSequences(IReadOnlyList<int[]> sequences, int batchSize, int maxLength, MaskingRule rule)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(rule);
        if (sequences.Count == 0) throw new ArgumentException("There are no sequences to mask.");
        for (int i = 0; i < sequences.Count; i++)
        {
            if (sequences[i].Length == 0 || sequences[i].Length > maxLength)
                throw new ArgumentException($"Sequence {i} holds {sequences[i].Length} tokens; every sequence must hold 1 to {maxLength}.");
            if (!sequences[i].Any(id => !rule.SpecialIds.Contains(id)))
                throw new ArgumentException($"Sequence {i} holds only special tokens; there is nothing to mask.");
        }
        this.sequences = [.. sequences];
        this.rule = rule;
        batch = new MaskedLmBatch(batchSize, maxLength);
    }

    public Batch Next(ref Rng rng)
    {
        int T = batch.Time, chosen = 0;
        batch.Ids.AsSpan().Clear();
        batch.Targets.AsSpan().Fill(-1);
        for (int b = 0; b < batch.Batch; b++)
        {
            var s = sequences[rng.NextInt(sequences.Length)];
            var ids = batch.Ids.AsSpan(b * T, s.Length);
            s.CopyTo(ids);
            batch.Lengths[b] = s.Length;
            chosen += rule.Apply(ids, batch.Targets.AsSpan(b * T, s.Length), ref rng);
        }
        if (chosen == 0)
        {
            var ids = batch.Ids.AsSpan(0, batch.Lengths[0]);
            int t = 0;
            while (rule.SpecialIds.Contains(ids[t])) t++;
            batch.Targets[t] = ids[t];
            ids[t] = rule.MaskId;
        }
        return batch;
    }
}
