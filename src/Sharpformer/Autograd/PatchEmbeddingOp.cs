using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Autograd;

public static partial class Ops
{
    /// <summary>
    /// A ViT's patch embedding: images [B, C, H, W], weight [D, C, P, P] (a PyTorch Conv2d with kernel = stride = P),
    /// bias [D] or null → [B, N, D] with N = (H/P)·(W/P) patches in row-major order. H and W must be multiples of P.
    /// Keeps only its inputs: backward gathers the patches again.
    /// </summary>
    public static Tensor PatchEmbedding(Tensor images, Tensor weight, Tensor? bias = null)
    {
        if (images.Rank != 4 || weight.Rank != 4 || weight.Dim(1) != images.Dim(1) || weight.Dim(2) != weight.Dim(3))
            throw new ArgumentException($"PatchEmbedding: images {images.ShapeText} and weight {weight.ShapeText} must be [B, C, H, W] and [D, C, P, P].", nameof(weight));
        int dim = weight.Dim(0);
        if (bias is not null && (bias.Rank != 1 || bias.Length != dim))
            throw new ArgumentException($"PatchEmbedding: bias {bias.ShapeText} does not match weight {weight.ShapeText} (expected [{dim}]).", nameof(bias));
        var s = ShapeOf(images, weight);
        s.Validate();
        var y = Graph.NewTensor([s.Batch, s.Patches, dim]);
        var patches = NativeBuffer.Rent((nuint)s.Batch * (nuint)s.Patches * (nuint)s.PatchLength * sizeof(float));
        Kernels.PatchEmbedding.Forward(s, images.Span, weight.Span, bias is null ? default : bias.Span, y.Span, PatchesOf(patches, s));
        patches.Return();
        if (Graph.ShouldRecord(images, weight, bias))
            Graph.Append(new Node { Kind = OpKind.PatchEmbedding, Out = y, A = images, B = weight, C = bias });
        return y;
    }

    static PatchShape ShapeOf(Tensor images, Tensor weight) => new(images.Dim(0), images.Dim(1), images.Dim(2), images.Dim(3), weight.Dim(2));

    static Span<float> PatchesOf(NativeBuffer buffer, PatchShape s) => buffer.Floats[..(s.Batch * s.Patches * s.PatchLength)];

    static void PatchEmbeddingBackward(ref Node n)
    {
        Tensor images = n.A!, weight = n.B!;
        var s = ShapeOf(images, weight);
        Span<float> dWeight = default, dBias = default, dImages = default;
        if (weight.NeedsGrad) { weight.EnsureGrad(); dWeight = weight.GradSpan; }
        if (n.C is { NeedsGrad: true } bias) { bias.EnsureGrad(); dBias = bias.GradSpan; }
        if (images.NeedsGrad) { images.EnsureGrad(); dImages = images.GradSpan; }
        var patches = NativeBuffer.Rent((nuint)s.Batch * (nuint)s.Patches * (nuint)s.PatchLength * sizeof(float));
        Kernels.PatchEmbedding.Backward(s, images.Span, weight.Span, n.Out.GradSpan, PatchesOf(patches, s), dWeight, dBias, dImages);
        patches.Return();
    }
}
