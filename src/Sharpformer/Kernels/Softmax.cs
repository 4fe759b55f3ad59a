using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>
/// softmax(x) = exp(x - max x) / Σ exp(x - max x) over one row. TensorPrimitives.SoftMax exponentiates x as it is,
/// so a score above about 88 (a sharp attention head, a confident classifier) overflows to ∞ and the row to NaN.
/// </summary>
public static class Softmax
{
    public static void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.IsEmpty) return;
        TensorPrimitives.Subtract(x, TensorPrimitives.Max(x), y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
    }
}
