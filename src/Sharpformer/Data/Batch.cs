using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>
/// The examples of one training or evaluation step. Each task has its own kind (next-token windows, labelled
/// sequences; masked-LM sequences, source/target pairs and labelled images to come); a model's loss takes the
/// kinds it understands. A batch's arrays are reused from step to step by the source that fills them.
/// </summary>
public abstract class Batch
{
    /// <summary>Examples (sequences, pairs, images) in the batch.</summary>
    public abstract int Examples { get; }

    /// <summary>Input tokens the batch holds, padding excluded (0 when the inputs are not tokens), for tokens/s figures.</summary>
    public abstract long InputTokens { get; }
}

/// <summary>
/// A source of batches for one split. Every random choice (which windows, which examples, masks, crops) is
/// drawn from the generator the caller passes, whose state alone goes into a checkpoint, so a resumed run
/// draws the very batches the uninterrupted one would have.
/// </summary>
public interface IBatchSource
{
    /// <summary>Fills the next batch (the same object each call) from <paramref name="rng"/>.</summary>
    Batch Next(ref Rng rng);
}

/// <summary>Next-token windows: inputs [B, T] and targets [B, T], the inputs shifted by one (-1 ignores a position).</summary>
public sealed class TokenBatch : Batch
{
    public TokenBatch(int batch, int time)
    {
        if (batch <= 0 || time <= 0) throw new ArgumentException($"A token batch needs positive batch and time, got [{batch}, {time}].");
        Batch = batch;
        Time = time;
        Inputs = new int[checked(batch * time)];
        Targets = new int[Inputs.Length];
    }

    public int Batch { get; }
    public int Time { get; }
    public int[] Inputs { get; }
    public int[] Targets { get; }
    public override int Examples => Batch;
    public override long InputTokens => Inputs.Length;
}

/// <summary>
/// Sequences of up to T tokens with one class label each: ids [B, T] (positions past a sequence's length hold
/// 0 and are masked out by <see cref="Lengths"/>), segment ids [B, T] (0, or 1 for a BERT text pair's second
/// text), lengths [B], labels [B].
/// </summary>
public sealed class LabeledSequenceBatch : Batch
{
    public LabeledSequenceBatch(int batch, int time)
    {
        if (batch <= 0 || time <= 0) throw new ArgumentException($"A sequence batch needs positive batch and time, got [{batch}, {time}].");
        Batch = batch;
        Time = time;
        Ids = new int[checked(batch * time)];
        Segments = new int[Ids.Length];
        Lengths = new int[batch];
        Labels = new int[batch];
    }

    public int Batch { get; }
    public int Time { get; }
    public int[] Ids { get; }
    public int[] Segments { get; }
    public int[] Lengths { get; }
    public int[] Labels { get; }
    public override int Examples => Batch;
    public override long InputTokens => Lengths.Sum(l => (long)l);
}
