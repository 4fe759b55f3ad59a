using StbImageSharp;

namespace Sharpformer.Data;

/// <summary>
/// Images sorted into class sub-folders (root/cat/1.png, root/dog/a.jpg), as torchvision's ImageFolder reads them:
/// classes are the sub-folder names in ordinal order, images are found at any depth inside a class folder, and
/// files that are not PNG or JPEG are ignored. Decoded by StbImageSharp (managed, no native library), converted
/// to grey or RGB, and resized to the model's size.
/// </summary>
public static class ImageFolder
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>Every image under <paramref name="folder"/>'s class sub-folders as [N, channels, height, width]; channels 1 (grey) or 3 (RGB).</summary>
    public static ImageSet Load(string folder, int height, int width, int channels)
    {
        CheckSize(height, width, channels);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder {folder} does not exist.");
        var classFolders = Directory.GetDirectories(folder)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal).ToArray();
        var files = classFolders.Select(ImagesIn).ToArray();
        if (files.Sum(f => f.Length) == 0)
            throw new InvalidDataException($"{folder} holds no PNG or JPEG images in class sub-folders (expected {Path.Combine(folder, "CLASS", "IMAGE.png")}).");
        for (int c = 0; c < classFolders.Length; c++)
            if (files[c].Length == 0) throw new InvalidDataException($"Class folder {classFolders[c]} holds no PNG or JPEG images.");
        var classNames = classFolders.Select(d => Path.GetFileName(d)).ToArray();
        if (classNames.Length == 1)
            throw new InvalidDataException($"{folder} holds one class ({classNames[0]}); a classifier needs at least two class sub-folders.");

        int count = files.Sum(f => f.Length), size = channels * height * width;
        var pixels = new byte[(long)count * size];
        var labels = new int[count];
        int n = 0;
        for (int c = 0; c < files.Length; c++)
            foreach (var file in files[c])
            {
                ReadImage(file, height, width, channels).CopyTo(pixels.AsSpan(n * size, size));
                labels[n++] = c;
            }
        return new ImageSet(pixels, labels, channels, height, width, classNames);
    }

    static string[] ImagesIn(string classFolder) => Directory
        .EnumerateFiles(classFolder, "*", SearchOption.AllDirectories)
        .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
        .Order(StringComparer.Ordinal).ToArray();

    /// <summary>One PNG or JPEG file as [channels, height, width] bytes (for a single prediction as for a data set).</summary>
    public static byte[] ReadImage(string path, int height, int width, int channels)
    {
        CheckSize(height, width, channels);
        ImageResult image;
        try
        {
            image = ImageResult.FromMemory(File.ReadAllBytes(path), channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not (IOException or UnauthorizedAccessException or OutOfMemoryException))
        {
            throw new InvalidDataException($"{path} cannot be read as a PNG or JPEG image: {e.Message}", e);
        }
        return Resize(image.Data, image.Height, image.Width, channels, height, width);
    }

    static void CheckSize(int height, int width, int channels)
    {
        if (height <= 0 || width <= 0 || channels is not (1 or 3))
            throw new ArgumentException($"ImageFolder: size {height}x{width} must be positive and channels {channels} 1 (grey) or 3 (RGB).");
    }

    /// <summary>
    /// Interleaved pixels [srcHeight, srcWidth, channels] → planar [channels, height, width], each axis on its own:
    /// bilinear where it grows (or keeps its size: then exactly a copy), the mean of the covered source pixels where it shrinks.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> pixels, int srcHeight, int srcWidth, int channels, int height, int width)
    {
        if (pixels.Length != srcHeight * srcWidth * channels)
            throw new ArgumentException($"Resize: {pixels.Length} values are not a {srcHeight}x{srcWidth} image of {channels} channels.", nameof(pixels));
        var rows = Taps(srcHeight, height);
        var cols = Taps(srcWidth, width);
        var output = new byte[channels * height * width];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    float sum = 0;
                    foreach (var (sy, wy) in rows[y])
                        foreach (var (sx, wx) in cols[x])
                            sum += wy * wx * pixels[(sy * srcWidth + sx) * channels + c];
                    output[(c * height + y) * width + x] = (byte)Math.Clamp(MathF.Round(sum), 0, 255);
                }
        return output;
    }

    /// <summary>For each output sample along an axis, the source samples it blends and their weights (summing to 1).</summary>
    static (int Index, float Weight)[][] Taps(int source, int target)
    {
        var taps = new (int, float)[target][];
        double scale = (double)source / target;
        for (int o = 0; o < target; o++)
        {
            if (target >= source)
            {
                // Bilinear at the output pixel's centre mapped into the source (PyTorch's align_corners=False).
                double at = Math.Clamp((o + 0.5) * scale - 0.5, 0, source - 1);
                int i = (int)at;
                float f = (float)(at - i);
                taps[o] = f == 0 ? [(i, 1f)] : [(i, 1 - f), (i + 1, f)];
            }
            else
            {
                // Area: the source interval [o·scale, (o+1)·scale), partly covered pixels weighted by their cover.
                double lo = o * scale, hi = (o + 1) * scale;
                var list = new List<(int, float)>();
                for (int i = (int)lo; i < hi && i < source; i++)
                {
                    double cover = Math.Min(hi, i + 1) - Math.Max(lo, i);
                    if (cover > 0) list.Add((i, (float)(cover / scale)));
                }
                taps[o] = [.. list];
            }
        }
        return taps;
    }
}
