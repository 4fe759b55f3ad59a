using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>
/// Labelled images: pixels [B, C, H, W] as floats normalised per channel, (byte / 255 − mean[c]) / std[c]
/// (torchvision's ToTensor then Normalize), and one label per image [B].
/// </summary>
public sealed class ImageBatch : Batch
{
    public ImageBatch(int batch, int channels, int height, int width)
    {
        if (batch <= 0 || channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"An image batch needs positive sizes, got [{batch}, {channels}, {height}, {width}].");
        (Batch, Channels, Height, Width) = (batch, channels, height, width);
        Pixels = new float[checked(batch * channels * height * width)];
        Labels = new int[batch];
    }

    public int Batch { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public float[] Pixels { get; }
    public int[] Labels { get; }
    public override int Examples => Batch;
    public override long InputTokens => 0;

    /// <summary>
    /// Images as bytes [n, C, H, W] → floats (byte / 255 − mean[c]) / std[c]; the means and deviations give C, and
    /// <paramref name="planeLength"/> = H·W.
    /// </summary>
    public static void Normalize(ReadOnlySpan<byte> images, Span<float> output, int planeLength, ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        int channels = mean.Length;
        if (channels == 0 || planeLength <= 0 || std.Length != channels || output.Length != images.Length || images.Length % (channels * planeLength) != 0)
            throw new ArgumentException($"Normalize: {images.Length} bytes into {output.Length} floats are not whole images of {channels} planes of {planeLength}.");
        for (int i = 0, c = 0; i < images.Length; i += planeLength, c = (c + 1) % channels)
        {
            float scale = 1f / (255f * std[c]), shift = mean[c] / std[c];
            for (int j = 0; j < planeLength; j++) output[i + j] = images[i + j] * scale - shift;
        }
    }
}

/// <summary>
/// Batches of labelled images drawn uniformly at random (with replacement) from an <see cref="ImageSet"/>, each
/// augmented (random crop with padding, optional flip) before normalising; every draw comes from the passed
/// <see cref="Rng"/>, so a resumed run sees the same batches.
/// </summary>
public sealed class ImageBatches : IBatchSource
{
    readonly ImageSet images;
    readonly ImageBatch batch;
    readonly float[] mean, std;
    readonly ImageAugmentation augmentation;
    readonly byte[] augmented;

    public ImageBatches(ImageSet images, int batchSize, IReadOnlyList<float> mean, IReadOnlyList<float> std, ImageAugmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (images.Count == 0) throw new ArgumentException("There are no images to draw batches from.");
        if (mean.Count != images.Channels || std.Count != images.Channels)
            throw new ArgumentException($"Images have {images.Channels} channels but the normalisation gives {mean.Count} means and {std.Count} deviations.");
        this.images = images;
        this.mean = [.. mean];
        this.std = [.. std];
        this.augmentation = augmentation ?? ImageAugmentation.None;
        batch = new ImageBatch(batchSize, images.Channels, images.Height, images.Width);
        augmented = new byte[images.ImageSize];
    }

    public Batch Next(ref Rng rng)
    {
        int size = images.ImageSize;
        for (int b = 0; b < batch.Batch; b++)
        {
            int i = rng.NextInt(images.Count);
            augmentation.Apply(images.Image(i), augmented, images.Channels, images.Height, images.Width, ref rng);
            ImageBatch.Normalize(augmented, batch.Pixels.AsSpan(b * size, size), images.Height * images.Width, mean, std);
            batch.Labels[b] = images.Labels[i];
        }
        return batch;
    }
}
