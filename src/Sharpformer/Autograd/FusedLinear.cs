using Sharpformer.Tensors;
using K = Sharpformer.Kernels;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Autograd;

/// <summary>
/// What a fused linear layer does to its input before the product: nothing, a LayerNorm, or an activation.
/// The transformed input exists only while it is used and is recomputed in backward, never kept.
/// </summary>
public readonly struct LinearInput
{
    internal enum Transform : byte { None, LayerNorm, Activation }

    internal readonly Transform Kind;
    internal readonly Tensor? Gamma, Beta;
    internal readonly float Eps;
    internal readonly Kernels.Activation Activation;

    LinearInput(Transform kind, Tensor? gamma, Tensor? beta, float eps, Kernels.Activation activation) =>
        (Kind, Gamma, Beta, Eps, Activation) = (kind, gamma, beta, eps, activation);

    /// <summary>The input as it is.</summary>
    public static LinearInput AsIs => default;

    /// <summary>LayerNorm(x) with gain gamma, optional bias beta.</summary>
    public static LinearInput LayerNorm(Tensor gamma, Tensor? beta, float eps) => new(Transform.LayerNorm, gamma, beta, eps, default);

    /// <summary>activation(x).</summary>
    public static LinearInput Activated(Kernels.Activation activation) => new(Transform.Activation, null, null, 0, activation);
}

public static unsafe partial class Ops
{
    /// <summary>
    /// y = residual + dropout(f(x)·Wᵀ + b), f given by <paramref name="input"/>, in one op: a Transformer's
    /// projections without storing LayerNorm outputs, activations, pre-dropout or pre-residual values.
    /// Only x (and the LayerNorm statistics) are kept for backward, which recomputes f(x) and the dropout mask.
    /// The same values as the unfused ops up to rounding (the residual is added before the product's sum).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, LinearInput input, Tensor? residual = null, float dropout = 0f, ulong seed = 0)
    {
        if (weight.Rank != 2 || x.Rank < 1 || x.Cols != weight.Dim(1))
            throw new ArgumentException($"Linear: input {x.ShapeText} does not match weight {weight.ShapeText} (expected [..., in] and [out, in]).", nameof(x));
        int rows = x.Rows, inF = weight.Dim(1), outF = weight.Dim(0);
        if (bias is not null && (bias.Rank != 1 || bias.Length != outF))
            throw new ArgumentException($"Linear: bias {bias.ShapeText} does not match weight {weight.ShapeText} (expected [{outF}]).", nameof(bias));
        if (input.Kind == LinearInput.Transform.LayerNorm && (input.Gamma!.Length != inF || (input.Beta is not null && input.Beta.Length != inF)))
            throw new ArgumentException($"Linear: LayerNorm weight {input.Gamma.ShapeText} and bias {input.Beta?.ShapeText ?? "none"} must be [{inF}].", nameof(input));
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"Linear: dropout {dropout} is outside [0, 1).", nameof(dropout));
        Span<int> shape = stackalloc int[x.Rank];
        x.Shape.CopyTo(shape);
        shape[^1] = outF;
        if (residual is not null && !residual.Shape.SequenceEqual(shape))
            throw new ArgumentException($"Linear: residual {residual.ShapeText} must have the output's shape {Tensor.Format(shape)}.", nameof(residual));

        var y = Graph.NewTensor(shape);
        NativeBuffer stats = default;
        var h = TransformInput(x, input, rows, inF, ref stats);
        float* a = h.IsEmpty ? x.Data : (float*)h.Pointer, pb = bias is null ? null : bias.Data;
        if (dropout == 0)
        {
            // y = residual + b, then the product adds in.
            if (residual is not null) residual.Span.CopyTo(y.Span);
            K.Gemm.Multiply(a, weight.Data, y.Data, rows, inF, outF, transA: false, transB: true, pb, accumulate: residual is not null);
        }
        else
        {
            // The mask is a function of (seed, index): backward makes it again rather than keeping it.
            var z = NativeBuffer.Rent((nuint)rows * (nuint)outF * sizeof(float));
            var mask = NativeBuffer.Rent((nuint)rows * (nuint)outF);
            K.Gemm.Multiply(a, weight.Data, (float*)z.Pointer, rows, inF, outF, transA: false, transB: true, pb, accumulate: false);
            var zs = z.Floats[..y.Length];
            K.Dropout.Forward(zs, zs, mask.ByteSpan[..y.Length], dropout, seed);
            if (residual is not null) TensorPrimitives.Add(residual.Span, zs, y.Span);
            else zs.CopyTo(y.Span);
            z.Return();
            mask.Return();
        }
        h.Return();
        bool record = Graph.ShouldRecord(x, weight, bias) || Graph.ShouldRecord(residual ?? x, input.Gamma, input.Beta);
        if (record)
            Graph.Append(new Node
            {
                Kind = OpKind.FusedLinear, Out = y, A = x, B = weight, C = bias, D = input.Gamma, E = input.Beta, F = residual,
                S0 = stats, Seed = seed, I0 = rows, I1 = inF, I2 = outF, I3 = (int)input.Kind | (int)input.Activation << 8,
                F0 = dropout, F1 = input.Eps,
            });
        else stats.Return();
        return y;
    }

    /// <summary>f(x) into a pooled buffer (empty when f is the identity); LayerNorm statistics into <paramref name="stats"/>.</summary>
    static NativeBuffer TransformInput(Tensor x, in LinearInput input, int rows, int cols, ref NativeBuffer stats)
    {
        if (input.Kind == LinearInput.Transform.None) return default;
        var h = NativeBuffer.Rent((nuint)rows * (nuint)cols * sizeof(float));
        var hs = h.Floats[..x.Length];
        if (input.Kind == LinearInput.Transform.LayerNorm)
        {
            if (stats.IsEmpty) stats = NativeBuffer.Rent((nuint)rows * 2 * sizeof(float));
            K.LayerNorm.Forward(x.Span, input.Gamma!.Span, input.Beta is null ? default : input.Beta.Span, hs,
                stats.Floats[..rows], stats.Floats.Slice(rows, rows), rows, cols, input.Eps);
        }
        else ActivationForward(input.Activation, x.Span, hs);
        return h;
    }

    /// <summary>y = activation(x) through the kernel of that activation (also a decode step's MLP).</summary>
    internal static void ActivationForward(Kernels.Activation activation, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (activation)
        {
            case Kernels.Activation.GeluTanh: K.Activations.GeluForward(x, y); break;
            case Kernels.Activation.GeluErf: K.Activations.GeluErfForward(x, y); break;
            default: K.Activations.ReluForward(x, y); break;
        }
    }

    static void ActivationBackward(Kernels.Activation activation, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite)
    {
        switch (activation)
        {
            case Kernels.Activation.GeluTanh: K.Activations.GeluBackward(x, dy, dx, overwrite); break;
            case Kernels.Activation.GeluErf: K.Activations.GeluErfBackward(x, dy, dx, overwrite); break;
            default: K.Activations.ReluBackward(x, dy, dx, overwrite); break;
        }
    }

    static void FusedLinearBackward(ref Node n)
    {
        Tensor x = n.A!, w = n.B!;
        int rows = n.I0, inF = n.I1, outF = n.I2;
        var input = (LinearInput.Transform)(n.I3 & 0xFF) switch
        {
            LinearInput.Transform.LayerNorm => LinearInput.LayerNorm(n.D!, n.E, n.F1),
            LinearInput.Transform.Activation => LinearInput.Activated((Kernels.Activation)(n.I3 >> 8)),
            _ => LinearInput.AsIs,
        };
        var dy = n.Out.GradSpan;
        if (n.F is { NeedsGrad: true } residual)
        {
            residual.EnsureGrad();
            TensorPrimitives.Add(residual.GradSpan, dy, residual.GradSpan);
        }
        // dz, the gradient at the product's output: dy through the same dropout mask, made again from the seed
        // (dropout applied to dy is exactly its backward), in place: dy is not needed after this op.
        float* dz = n.Out.GradData;
        if (n.F0 > 0) DropoutInPlace(dy, n.F0, n.Seed);
        var stats = n.S0;
        var h = TransformInput(x, input, rows, inF, ref stats); // recomputed, bit for bit as in forward
        float* a = h.IsEmpty ? x.Data : (float*)h.Pointer;
        if (w.NeedsGrad)
        {
            w.EnsureGrad();
            K.Gemm.Multiply(dz, a, w.GradData, outF, rows, inF, transA: true, transB: false, null, accumulate: true); // dW += dZᵀ·f(X)
        }
        if (n.C is { NeedsGrad: true } b)
        {
            b.EnsureGrad();
            var db = b.GradSpan;
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, new ReadOnlySpan<float>(dz + (long)r * outF, outF), db);
        }
        bool normGrads = input.Kind == LinearInput.Transform.LayerNorm && (input.Gamma!.NeedsGrad || (input.Beta?.NeedsGrad ?? false));
        if (x.NeedsGrad || normGrads)
        {
            if (input.Kind == LinearInput.Transform.None)
            {
                x.EnsureGrad();
                K.Gemm.Multiply(dz, w.Data, x.GradData, rows, outF, inF, transA: false, transB: false, null, accumulate: true); // dX += dZ·W
            }
            else if (input.Kind == LinearInput.Transform.Activation && x.GradData is null)
            {
                // x's gradient is not started: dH = dZ·W goes straight into it and becomes f'(x)·dH in place.
                h.Return();
                h = default;
                x.EnsureGrad(clear: false);
                K.Gemm.Multiply(dz, w.Data, x.GradData, rows, outF, inF, transA: false, transB: false, null, accumulate: false);
                ActivationBackward(input.Activation, x.Span, x.GradSpan, x.GradSpan, overwrite: true);
            }
            else
            {
                var dh = h; // f(x) is no longer needed: its buffer takes dH = dZ·W
                K.Gemm.Multiply(dz, w.Data, (float*)dh.Pointer, rows, outF, inF, transA: false, transB: false, null, accumulate: false);
                var dhs = dh.Floats[..x.Length];
                if (input.Kind == LinearInput.Transform.LayerNorm)
                {
                    var scratch = default(NativeBuffer);
                    Span<float> dx = GradOrScratch(x, ref scratch, 0, x.Length);
                    Span<float> dgamma = GradOrScratch(input.Gamma!, ref scratch, x.Length, inF);
                    Span<float> dbeta = input.Beta is null ? default : GradOrScratch(input.Beta, ref scratch, x.Length + inF, inF);
                    K.LayerNorm.Backward(dhs, x.Span, input.Gamma!.Span, stats.Floats[..rows], stats.Floats.Slice(rows, rows), dx, dgamma, dbeta, rows, inF);
                    scratch.Return();
                }
                else
                {
                    x.EnsureGrad();
                    ActivationBackward(input.Activation, x.Span, dhs, x.GradSpan, overwrite: false);
                }
            }
        }
        h.Return();
    }
}
