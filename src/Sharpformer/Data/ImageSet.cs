namespace Sharpformer.Data;

/// <summary>
/// Labelled images in memory as bytes 0–255, laid out [N, C, H, W] (channels first, as PyTorch and Hugging Face
/// ViT read them): a quarter of the memory of floats, converted per batch. Labels index <see cref="ClassNames"/>.
/// </summary>
public sealed class ImageSet
{
    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public string[] ClassNames { get; }

    public ImageSet(byte[] pixels, int[] labels, int channels, int height, int width, string[] classNames)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (channels <= 0 || height <= 0 || width <= 0 || pixels.LongLength != (long)labels.Length * channels * height * width)
            throw new ArgumentException($"ImageSet: {pixels.LongLength} pixels are not {labels.Length} images of [{channels}, {height}, {width}].", nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Length)
                throw new ArgumentException($"ImageSet: label {labels[i]} of image {i} is outside the {classNames.Length} classes.", nameof(labels));
        (Pixels, Labels, Channels, Height, Width, ClassNames, Count) = (pixels, labels, channels, height, width, classNames, labels.Length);
    }

    /// <summary>Values per image: C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Image <paramref name="index"/> as [C, H, W] bytes.</summary>
    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(checked(index * ImageSize), ImageSize);

    /// <summary>The images at <paramref name="indices"/>, in that order (a train/validation split, a subset).</summary>
    public ImageSet Select(ReadOnlySpan<int> indices)
    {
        var pixels = new byte[(long)indices.Length * ImageSize];
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
            labels[i] = Labels[indices[i]];
        }
        return new ImageSet(pixels, labels, Channels, Height, Width, ClassNames);
    }
}
