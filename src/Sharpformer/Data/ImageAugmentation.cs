using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>
/// Training augmentation as torchvision's RandomCrop(size, padding=Padding) then RandomHorizontalFlip(): the image
/// is shifted by a uniform offset in [-Padding, Padding] on each axis, filling with zeros (black when applied to
/// pixel bytes, before normalising, as torchvision does), then mirrored left-right with probability ½. The draws
/// come from the caller's <see cref="Rng"/>, whose state a checkpoint saves, so a resumed run repeats them.
/// Leave the flip off where left and right differ in meaning (digits, text).
/// </summary>
public sealed record ImageAugmentation(int Padding = 0, bool HorizontalFlip = false)
{
    public static ImageAugmentation None { get; } = new();

    /// <summary>True when <see cref="Apply{T}"/> copies the image and draws nothing.</summary>
    public bool IsIdentity => Padding == 0 && !HorizontalFlip;

    /// <summary>As `prepare` and `train` print it: "crop padding 2, horizontal flip", "horizontal flip" or "none".</summary>
    public override string ToString() => IsIdentity ? "none"
        : string.Join(", ", new[] { Padding > 0 ? $"crop padding {Padding}" : null, HorizontalFlip ? "horizontal flip" : null }.OfType<string>());

    /// <summary>
    /// One image [channels, height, width] into <paramref name="output"/> (same size, not overlapping it). Draws, in
    /// order, the vertical and horizontal offsets (when padding) and the flip (when enabled), nothing else.
    /// </summary>
    public void Apply<T>(ReadOnlySpan<T> image, Span<T> output, int channels, int height, int width, ref Rng rng) where T : unmanaged
    {
        if (Padding < 0) throw new ArgumentException($"ImageAugmentation: padding {Padding} is negative.");
        int shiftY = 0, shiftX = 0;
        if (Padding > 0)
        {
            shiftY = rng.NextInt(2 * Padding + 1) - Padding;
            shiftX = rng.NextInt(2 * Padding + 1) - Padding;
        }
        bool flip = HorizontalFlip && (rng.NextUInt64() >> 63) == 1;
        Transform(image, output, channels, height, width, shiftY, shiftX, flip);
    }

    /// <summary>Every image of a batch [batch, channels, height, width], in order, each with its own draws.</summary>
    public void ApplyToBatch<T>(ReadOnlySpan<T> images, Span<T> output, int batch, int channels, int height, int width, ref Rng rng) where T : unmanaged
    {
        int size = channels * height * width;
        if (images.Length != batch * size || output.Length != images.Length)
            throw new ArgumentException($"ImageAugmentation: {images.Length} and {output.Length} values for a batch [{batch}, {channels}, {height}, {width}].");
        for (int b = 0; b < batch; b++) Apply(images.Slice(b * size, size), output.Slice(b * size, size), channels, height, width, ref rng);
    }

    /// <summary>
    /// output[c, y, x] = image[c, y + shiftY, x' + shiftX] with x' = (flip ? width - 1 - x : x), zero outside the image:
    /// a crop at offset (Padding + shiftY, Padding + shiftX) of the zero-padded image, then the flip.
    /// </summary>
    public static void Transform<T>(ReadOnlySpan<T> image, Span<T> output, int channels, int height, int width, int shiftY, int shiftX, bool flip)
        where T : unmanaged
    {
        int size = channels * height * width;
        if (channels <= 0 || height <= 0 || width <= 0 || image.Length != size || output.Length != size)
            throw new ArgumentException($"ImageAugmentation: {image.Length} and {output.Length} values for an image [{channels}, {height}, {width}].");
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
            {
                var row = output.Slice((c * height + y) * width, width);
                int sy = y + shiftY;
                if ((uint)sy >= (uint)height)
                {
                    row.Clear();
                    continue;
                }
                var source = image.Slice((c * height + sy) * width, width);
                for (int x = 0; x < width; x++)
                {
                    int sx = (flip ? width - 1 - x : x) + shiftX;
                    row[x] = (uint)sx < (uint)width ? source[sx] : default;
                }
            }
    }
}
