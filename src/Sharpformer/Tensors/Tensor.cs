using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpformer.Autograd;

namespace Sharpformer.Tensors;

/// <summary>
/// A float32, contiguous, row-major tensor: a shape (rank 0 to 4) plus a 64-byte aligned pooled buffer.
/// No strides and no views. A tensor is either caller-owned (created with <c>new</c>; <see cref="Dispose"/>
/// returns its buffer, and a finalizer frees it if you forget) or belongs to a <see cref="Graph"/> scope
/// (every op output; released when the scope ends, after which touching it throws).
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    public const int MaxRank = 4;

    [InlineArray(MaxRank)]
    struct Dims { int d0; }

    float* data;
    readonly int length;
    readonly int rank;
    Dims dims;

    /// <summary>The scope that releases this tensor; null when caller-owned.</summary>
    internal readonly Graph? Owner;
    readonly FinalizerGuard? guard;

    internal float* GradData;          // gradient buffer (null until gradients reach this tensor)
    readonly Tensor? gradTensor;      // caller-owned tensors: the permanent gradient as a tensor
    internal int Producer = -1;        // index on the owner's tape of the node that wrote this tensor
    internal bool NeedsGrad;

    /// <summary>A caller-owned tensor of zeros with the given shape.</summary>
    public Tensor(params ReadOnlySpan<int> shape) : this(shape, null, clear: true) { }

    Tensor(ReadOnlySpan<int> shape, Graph? owner, bool clear)
    {
        length = CheckShape(shape);
        rank = shape.Length;
        for (int i = 0; i < rank; i++) dims[i] = shape[i];
        Owner = owner;
        data = (float*)TensorPool.Rent((nuint)length * sizeof(float), clear);
        if (owner is null) guard = new FinalizerGuard(data);
    }

    /// <summary>A tensor owned by <paramref name="owner"/> (null: caller-owned), contents undefined unless cleared.</summary>
    internal static Tensor Create(ReadOnlySpan<int> shape, Graph? owner, bool clear = false) => new(shape, owner, clear);

    /// <summary>A caller-owned copy of this tensor: how a result computed inside a scope outlives it.</summary>
    public Tensor Copy() => FromArray(Span, Shape);

    /// <summary>A caller-owned copy of <paramref name="values"/> with the given shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> values, params ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n != values.Length)
            throw new ArgumentException($"Tensor.FromArray: {values.Length} values do not fill shape {Format(shape)} ({n} elements).", nameof(values));
        var t = new Tensor(shape, null, clear: false);
        values.CopyTo(t.Span);
        return t;
    }

    static int CheckShape(ReadOnlySpan<int> shape)
    {
        if (shape.Length > MaxRank)
            throw new ArgumentException($"Tensor: rank {shape.Length} of shape {Format(shape)} exceeds the maximum rank {MaxRank}.", nameof(shape));
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor: shape {Format(shape)} has a negative dimension.", nameof(shape));
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"Tensor: shape {Format(shape)} holds more than {int.MaxValue} elements.", nameof(shape));
        return (int)n;
    }

    /// <summary>Dimensions, outermost first (empty for a scalar).</summary>
    public ReadOnlySpan<int> Shape => MemoryMarshal.CreateReadOnlySpan(ref dims[0], rank);

    public int Rank => rank;

    /// <summary>Number of elements.</summary>
    public int Length => length;

    /// <summary>Dimension <paramref name="axis"/>; negative counts from the end.</summary>
    public int Dim(int axis)
    {
        int a = axis < 0 ? rank + axis : axis;
        if ((uint)a >= (uint)rank) throw new ArgumentOutOfRangeException(nameof(axis), $"axis {axis} of a tensor with shape {ShapeText}");
        return dims[a];
    }

    /// <summary>Product of every dimension but the last (the "rows" a row-wise kernel sees).</summary>
    public int Rows => rank == 0 ? 1 : (dims[rank - 1] == 0 ? 0 : length / dims[rank - 1]);

    /// <summary>The last dimension (1 for a scalar).</summary>
    public int Cols => rank == 0 ? 1 : dims[rank - 1];

    public bool IsDisposed => data is null;

    /// <summary>The elements. Throws once the tensor has been released.</summary>
    public Span<float> Span => new(Data, length);

    internal float* Data
    {
        get
        {
            var p = data;
            if (p is null) ThrowReleased();
            return p;
        }
    }

    /// <summary>The value of a one-element tensor (a loss).</summary>
    public float Item
    {
        get
        {
            if (length != 1) throw new InvalidOperationException($"Item needs a one-element tensor, this one has shape {ShapeText}.");
            return *Data;
        }
    }

    public float[] ToArray() => Span.ToArray();

    /// <summary>
    /// The gradient of a caller-owned tensor that requires it (parameters, leaf inputs); null otherwise.
    /// Gradients of intermediates are freed as soon as the backward pass has used them.
    /// </summary>
    public Tensor? Grad => gradTensor;

    internal Span<float> GradSpan => new(GradData, length);

    /// <summary>
    /// Whether gradients flow into this tensor. Setting it on a caller-owned tensor allocates a zeroed,
    /// permanent <see cref="Grad"/> (a leaf: parameters and inputs whose gradient you want).
    /// </summary>
    public bool RequiresGrad
    {
        get => NeedsGrad;
        init
        {
            if (!value) return;
            if (Owner is not null) throw new InvalidOperationException("Only caller-owned tensors can be made leaves.");
            gradTensor = new Tensor(Shape);
            GradData = gradTensor.data;
            NeedsGrad = true;
        }
    }

    /// <summary>A caller-owned zeroed tensor of the given shape with a gradient (a leaf).</summary>
    public static Tensor Leaf(params ReadOnlySpan<int> shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        return t;
    }

    /// <summary>A caller-owned copy of <paramref name="values"/> with a gradient (a leaf).</summary>
    public static Tensor Leaf(ReadOnlySpan<float> values, params ReadOnlySpan<int> shape)
    {
        var t = Leaf(shape);
        if (values.Length != t.length)
            throw new ArgumentException($"Tensor.Leaf: {values.Length} values do not fill shape {t.ShapeText}.", nameof(values));
        values.CopyTo(t.Span);
        return t;
    }

    internal bool IsLeafGrad => gradTensor is not null;

    /// <summary>Back-propagates from this scalar (seeded with 1) through the tape of the scope that made it.</summary>
    public void Backward() => Backward(1f);

    /// <summary>Back-propagates from this scalar seeded with <paramref name="gradient"/> (e.g. 1/accumulation steps).</summary>
    public void Backward(float gradient)
    {
        if (length != 1) throw new InvalidOperationException($"Backward needs a one-element tensor (a loss), this one has shape {ShapeText}.");
        if (Owner is null || !Owner.IsRecording || Producer < 0)
            throw new InvalidOperationException("Backward needs a tensor computed inside Graph.Record() from inputs that require gradients.");
        Owner.Backward(this, gradient);
    }

    /// <summary>Allocates this scoped tensor's gradient (zeroed, or undefined when the caller overwrites it).</summary>
    internal void EnsureGrad(bool clear = true)
    {
        if (GradData is null) GradData = (float*)TensorPool.Rent((nuint)length * sizeof(float), clear);
    }

    /// <summary>Returns an intermediate's gradient buffer to the pool (parameters and leaves keep theirs).</summary>
    internal void ReleaseGrad()
    {
        if (gradTensor is null && GradData is not null)
        {
            TensorPool.Return(GradData);
            GradData = null;
        }
    }

    /// <summary>Called by the owning scope when it ends.</summary>
    internal void Release()
    {
        ReleaseGrad();
        if (data is not null)
        {
            TensorPool.Return(data);
            data = null;
        }
    }

    /// <summary>Returns a caller-owned tensor's buffers to the pool. Tensors of a scope are released by the scope; this does nothing for them.</summary>
    public void Dispose()
    {
        if (Owner is not null || data is null) return;
        gradTensor?.Dispose();
        GradData = null;
        guard!.Disarm();
        TensorPool.Return(data);
        data = null;
    }

    public string ShapeText => Format(Shape);

    public override string ToString() => $"Tensor{ShapeText}";

    internal static string Format(ReadOnlySpan<int> shape)
    {
        var sb = new System.Text.StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i]);
        }
        return sb.Append(']').ToString();
    }

    static void ThrowReleased() =>
        throw new ObjectDisposedException(nameof(Tensor), "This tensor was released: it belonged to a Graph scope that has ended, or was disposed.");

    /// <summary>Frees a forgotten caller-owned buffer; kept out of Tensor so scoped tensors are not finalizable.</summary>
    sealed class FinalizerGuard(float* data)
    {
        float* pointer = data;
        public void Disarm()
        {
            pointer = null;
            GC.SuppressFinalize(this);
        }
        ~FinalizerGuard() => TensorPool.FreeDirect(pointer);
    }
}
