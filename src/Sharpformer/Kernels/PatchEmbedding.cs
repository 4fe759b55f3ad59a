using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>
/// Images [B, C, H, W] cut into P×P patches: (H/P)·(W/P) patches per image, each C·P·P values long.
/// </summary>
public readonly record struct PatchShape(int Batch, int Channels, int Height, int Width, int Patch)
{
    public int PatchRows => Height / Patch;
    public int PatchColumns => Width / Patch;
    /// <summary>N, patches per image.</summary>
    public int Patches => PatchRows * PatchColumns;
    /// <summary>C·P·P, values per patch (a row of the weight viewed as [D, C·P·P]).</summary>
    public int PatchLength => Channels * Patch * Patch;
    public int ImageLength => Channels * Height * Width;

    /// <summary>Throws <see cref="ArgumentException"/> naming the sizes when the images are not whole patches.</summary>
    public void Validate()
    {
        if (Batch <= 0 || Channels <= 0 || Height <= 0 || Width <= 0 || Patch <= 0)
            throw new ArgumentException($"PatchEmbedding: images [{Batch}, {Channels}, {Height}, {Width}] and patch {Patch} must all be positive.");
        if (Height % Patch != 0 || Width % Patch != 0)
            throw new ArgumentException($"PatchEmbedding: image {Height}x{Width} (height x width) is not a whole number of {Patch}x{Patch} patches.");
    }
}

/// <summary>
/// A convolution with kernel = stride = P, as Hugging Face ViT's patch_embeddings.projection, written as one GEMM:
/// the patches are gathered into rows [B·N, C·P·P] (patch order row-major over the image, as PyTorch's
/// conv(x).flatten(2).transpose(1, 2)), then y = patches·Wᵀ + b with the weight [D, C, P, P] viewed as [D, C·P·P]
/// → [B, N, D]. Patches do not overlap, so the gather is a permutation and its backward a plain scatter.
/// </summary>
public static class PatchEmbedding
{
    /// <summary>y [B·N, D] = patches(images)·Wᵀ + b; <paramref name="patches"/> [B·N, C·P·P] is scratch the caller gives.</summary>
    public static void Forward(PatchShape s, ReadOnlySpan<float> images, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> patches)
    {
        int rows = s.Batch * s.Patches, dim = weight.Length / s.PatchLength;
        Gather(s, images, patches);
        Gemm.Multiply(patches, weight, y, rows, s.PatchLength, dim, transA: false, transB: true, bias);
    }

    /// <summary>
    /// dW += dYᵀ·patches, db += Σ rows of dY, dImages += scatter(dY·W). Empty spans skip that gradient.
    /// <paramref name="patches"/> is scratch of the forward's size: the patches are gathered again, then overwritten by dY·W.
    /// </summary>
    public static void Backward(PatchShape s, ReadOnlySpan<float> images, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy,
        Span<float> patches, Span<float> dWeight, Span<float> dBias, Span<float> dImages)
    {
        int rows = s.Batch * s.Patches, dim = weight.Length / s.PatchLength;
        if (!dWeight.IsEmpty)
        {
            Gather(s, images, patches);
            Gemm.Multiply(dy, patches, dWeight, dim, rows, s.PatchLength, transA: true, transB: false, accumulate: true);
        }
        if (!dBias.IsEmpty)
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(dBias, dy.Slice(r * dim, dim), dBias);
        if (!dImages.IsEmpty)
        {
            Gemm.Multiply(dy, weight, patches, rows, dim, s.PatchLength); // dPatches = dY·W
            ScatterAdd(s, patches, dImages);
        }
    }

    /// <summary>patches[b·N + py·(W/P) + px, (c, i, j)] = images[b, c, py·P + i, px·P + j].</summary>
    public static void Gather(PatchShape s, ReadOnlySpan<float> images, Span<float> patches)
    {
        int runs = Check(s, images.Length, patches.Length), p = s.Patch;
        for (int run = 0; run < runs; run++) images.Slice(ImageOffset(s, run), p).CopyTo(patches.Slice(run * p, p));
    }

    /// <summary>The gather's transpose: images[b, c, py·P + i, px·P + j] += patches[b·N + py·(W/P) + px, (c, i, j)].</summary>
    public static void ScatterAdd(PatchShape s, ReadOnlySpan<float> patches, Span<float> images)
    {
        int runs = Check(s, images.Length, patches.Length), p = s.Patch;
        for (int run = 0; run < runs; run++)
        {
            var pixels = images.Slice(ImageOffset(s, run), p);
            TensorPrimitives.Add(pixels, patches.Slice(run * p, p), pixels);
        }
    }

    /// <summary>
    /// Where run (row, c, i) of the patch matrix — P contiguous values, at run·P in it — starts in the images:
    /// row = b·N + py·(W/P) + px gives pixel (b, c, py·P + i, px·P).
    /// </summary>
    static int ImageOffset(PatchShape s, int run)
    {
        int i = run % s.Patch, rowAndChannel = run / s.Patch;
        int c = rowAndChannel % s.Channels, row = rowAndChannel / s.Channels;
        int b = row / s.Patches, patch = row % s.Patches;
        int y = patch / s.PatchColumns * s.Patch + i, x = patch % s.PatchColumns * s.Patch;
        return ((b * s.Channels + c) * s.Height + y) * s.Width + x;
    }

    /// <summary>Validates the sizes; returns the number of P-long runs in the patch matrix.</summary>
    static int Check(PatchShape s, int images, int patches)
    {
        s.Validate();
        if (images != (long)s.Batch * s.ImageLength || patches != (long)s.Batch * s.Patches * s.PatchLength)
            throw new ArgumentException($"PatchEmbedding: {images} image values and {patches} patch values for {s}; " +
                $"expected {(long)s.Batch * s.ImageLength} and {(long)s.Batch * s.Patches * s.PatchLength}.");
        return patches / s.Patch;
    }
}
