using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Tensors;

namespace Sharpformer.Data;

/// <summary>What a prepared image folder's meta.json says: the task, the classes, the image shape, the normalisation and augmentation to train with.</summary>
public sealed record ImageDataMeta
{
    public const string Task = "images";

    [JsonPropertyName("task")] public string TaskName { get; init; } = Task;
    [JsonPropertyName("source")] public string Source { get; init; } = "";
    [JsonPropertyName("classes")] public required string[] Classes { get; init; }
    [JsonPropertyName("channels")] public required int Channels { get; init; }
    [JsonPropertyName("height")] public required int Height { get; init; }
    [JsonPropertyName("width")] public required int Width { get; init; }
    /// <summary>Per-channel mean and standard deviation of the training pixels scaled to [0, 1].</summary>
    [JsonPropertyName("mean")] public required float[] Mean { get; init; }
    [JsonPropertyName("std")] public required float[] Std { get; init; }
    /// <summary>Random-crop padding for training (pixels); 0 turns the crop off.</summary>
    [JsonPropertyName("crop_padding")] public int CropPadding { get; init; }
    /// <summary>Whether a mirrored image keeps its class (clothes yes, digits no).</summary>
    [JsonPropertyName("horizontal_flip")] public bool HorizontalFlip { get; init; }
    [JsonPropertyName("splits")] public Dictionary<string, int> Splits { get; init; } = [];

    [JsonIgnore] public ImageAugmentation Augmentation => new(CropPadding, HorizontalFlip);
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ImageDataMeta))]
public partial class ImageDataJsonContext : JsonSerializerContext;

/// <summary>
/// A prepared image data folder: meta.json (<see cref="ImageDataMeta"/>) and, per split (train, val, and test when
/// the source has one), SPLIT.images (bytes [N, C, H, W]) and SPLIT.labels (little-endian int32 [N]). The validation
/// split is carved from the training images by a seeded shuffle, so preparing twice gives the same folders; the test
/// split is kept apart for the final `eval --split test`.
/// </summary>
public static class ImageDataFolder
{
    public const string MetaFile = "meta.json";

    /// <summary>True when <paramref name="folder"/>'s meta.json names the images task.</summary>
    public static bool IsImageFolder(string folder) => Dataset.TaskOf(folder) == ImageDataMeta.Task;

    /// <summary>
    /// Splits <paramref name="train"/> into training and validation (<paramref name="valFraction"/> of it, at least one
    /// image, drawn by a shuffle seeded with <paramref name="seed"/>), measures the normalisation on the training part,
    /// and writes the folder (replacing its image files).
    /// </summary>
    public static ImageDataMeta Write(string folder, ImageSet train, ImageSet? test, string source, double valFraction, int cropPadding, bool flip, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (!(valFraction > 0 && valFraction < 1)) throw new ArgumentException($"The validation fraction must be in (0, 1), got {valFraction}.");
        if (train.Count < 2) throw new ArgumentException($"{source} holds {train.Count} training image(s); a training and a validation split need at least 2.");
        var order = Enumerable.Range(0, train.Count).ToArray();
        var rng = new Rng(seed);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        int valCount = Math.Clamp((int)Math.Round(train.Count * valFraction), 1, train.Count - 1);
        var val = train.Select(order.AsSpan(0, valCount));
        var fit = train.Select(order.AsSpan(valCount));
        var (mean, std) = Statistics(fit);
        var splits = new Dictionary<string, ImageSet> { ["train"] = fit, ["val"] = val };
        if (test is not null) splits["test"] = test;
        var meta = new ImageDataMeta
        {
            Source = source, Classes = train.ClassNames, Channels = train.Channels, Height = train.Height, Width = train.Width,
            Mean = mean, Std = std, CropPadding = cropPadding, HorizontalFlip = flip,
            Splits = splits.ToDictionary(s => s.Key, s => s.Value.Count),
        };
        Directory.CreateDirectory(folder);
        foreach (var (name, set) in splits)
        {
            File.WriteAllBytes(Path.Combine(folder, name + ".images"), set.Pixels);
            var labels = new byte[set.Count * 4];
            for (int i = 0; i < set.Count; i++) BinaryPrimitives.WriteInt32LittleEndian(labels.AsSpan(i * 4), set.Labels[i]);
            File.WriteAllBytes(Path.Combine(folder, name + ".labels"), labels);
        }
        foreach (var stale in new[] { "test.images", "test.labels" })
            if (test is null) File.Delete(Path.Combine(folder, stale));
        File.WriteAllText(Path.Combine(folder, MetaFile), JsonSerializer.Serialize(meta, ImageDataJsonContext.Default.ImageDataMeta));
        return meta;
    }

    /// <summary>Per-channel mean and standard deviation of the pixels scaled to [0, 1] (torchvision's Normalize values).</summary>
    public static (float[] Mean, float[] Std) Statistics(ImageSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        int plane = set.Height * set.Width;
        var sum = new double[set.Channels];
        var squares = new double[set.Channels];
        for (int i = 0; i < set.Count; i++)
        {
            var image = set.Image(i);
            for (int c = 0; c < set.Channels; c++)
                foreach (byte b in image.Slice(c * plane, plane))
                {
                    sum[c] += b;
                    squares[c] += b * b;
                }
        }
        double n = (double)set.Count * plane;
        var mean = new float[set.Channels];
        var std = new float[set.Channels];
        for (int c = 0; c < set.Channels; c++)
        {
            double m = sum[c] / n, variance = Math.Max(squares[c] / n - m * m, 0);
            mean[c] = (float)(m / 255);
            std[c] = (float)Math.Max(Math.Sqrt(variance) / 255, 1e-3); // a blank channel must not divide by zero
        }
        return (mean, std);
    }

    public static ImageDataMeta ReadMeta(string folder)
    {
        string path = Path.Combine(folder, MetaFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder} has no {MetaFile}: prepare it with `sharpformer prepare fashion-mnist|mnist|images`.", path);
        var meta = JsonSerializer.Deserialize(File.ReadAllText(path), ImageDataJsonContext.Default.ImageDataMeta)
            ?? throw new InvalidDataException($"{path} is empty.");
        if (meta.TaskName != ImageDataMeta.Task) throw new InvalidDataException($"{path} describes task '{meta.TaskName}', not '{ImageDataMeta.Task}'.");
        if (meta.Classes.Length < 2 || meta.Channels <= 0 || meta.Height <= 0 || meta.Width <= 0 || meta.Mean.Length != meta.Channels || meta.Std.Length != meta.Channels)
            throw new InvalidDataException($"{path}: classes, image shape or normalisation are missing or inconsistent.");
        return meta;
    }

    /// <summary>One split ("train", "val", "test") of a prepared folder.</summary>
    public static ImageSet ReadSplit(string folder, ImageDataMeta meta, string split)
    {
        ArgumentNullException.ThrowIfNull(meta);
        string images = Path.Combine(folder, split + ".images"), labels = Path.Combine(folder, split + ".labels");
        if (!File.Exists(images) || !File.Exists(labels))
            throw new FileNotFoundException($"{folder} has no {split} split ({split}.images and {split}.labels)" +
                (split == "test" ? "; only data sets with a test set (fashion-mnist, mnist) have one." : "."), images);
        var pixels = File.ReadAllBytes(images);
        var raw = File.ReadAllBytes(labels);
        int size = meta.Channels * meta.Height * meta.Width;
        if (raw.Length % 4 != 0 || pixels.LongLength != (long)(raw.Length / 4) * size)
            throw new InvalidDataException($"{images} ({pixels.LongLength:N0} bytes) and {labels} ({raw.Length / 4:N0} labels) do not hold the same number of [{meta.Channels}, {meta.Height}, {meta.Width}] images.");
        var values = new int[raw.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 4));
        try
        {
            return new ImageSet(pixels, values, meta.Channels, meta.Height, meta.Width, meta.Classes);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{labels}: {e.Message}", e);
        }
    }
}
