using Sharpformer.Tensors;

namespace Sharpformer.Autograd;

internal enum OpKind : byte
{
    LayerNorm, GeluTanh, GeluErf, Relu, Tanh, Add, AddPositions, Scale, Dropout, Embedding,
    SelfAttention, CrossAttention, CrossEntropy, Dot,
    Reshape, PrependRow, TakePosition, GatherRows, Checkpoint, FusedLinear, PatchEmbedding,
}

/// <summary>
/// One recorded op: its kind, inputs, output, saved buffers and a few scalars. A plain struct in a reused
/// array, dispatched by <see cref="OpKind"/> rather than a closure, so recording allocates nothing.
/// </summary>
internal struct Node
{
    public OpKind Kind;
    public Tensor Out;
    public Tensor? A, B, C, D, E, F;
    public NativeBuffer S0, S1;   // saved statistics / masks / ids
    public int I0, I1, I2, I3;
    public float F0, F1;
    public bool Flag;
    public ulong Seed;
    public object? Function;      // Checkpoint: the Recomputed segment

    public void ReleaseSaved()
    {
        S0.Return();
        S1.Return();
        S0 = default;
        S1 = default;
    }
}
