using Sharpformer.Tensors;

namespace Sharpformer.Autograd;

/// <summary>Random state a segment consumes as it runs (dropout seeds), so a recomputation can replay it.</summary>
public interface IReplayableRandom
{
    ulong State { get; set; }
}

/// <summary>
/// A part of a model that <see cref="Ops.Checkpoint"/> may run twice: once without a tape in the forward
/// pass, again with one in backward. Forward must be a pure function of its input, the parameters and
/// <see cref="Random"/>'s state. Make one per layer and keep it (recording allocates nothing more).
/// </summary>
public sealed class RecomputedSegment(Func<Tensor, Tensor> forward, IReplayableRandom? random = null)
{
    public Func<Tensor, Tensor> Forward { get; } = forward ?? throw new ArgumentNullException(nameof(forward));
    public IReplayableRandom? Random { get; } = random;
}
