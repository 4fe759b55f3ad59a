using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public sealed class ImageDataFolderTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-imgdata-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>Image i is filled with the value i (2 channels of 2×2; channel 1 holds 255 − i), label i % 3.</summary>
    static ImageSet Numbered(int count)
    {
        var pixels = new byte[count * 8];
        for (int i = 0; i < count; i++)
        {
            pixels.AsSpan(i * 8, 4).Fill((byte)i);
            pixels.AsSpan(i * 8 + 4, 4).Fill((byte)(255 - i));
        }
        return new ImageSet(pixels, Enumerable.Range(0, count).Select(i => i % 3).ToArray(), 2, 2, 2, ["a", "b", "c"]);
    }

    [Fact]
    public void SplitIsSeededDisjointAndRoundTrips()
    {
        var test = Numbered(5);
        var meta = ImageDataFolder.Write(dir, Numbered(40), test, "numbers", 0.25, cropPadding: 1, flip: false);
        Assert.Equal(new Dictionary<string, int> { ["train"] = 30, ["val"] = 10, ["test"] = 5 }, meta.Splits);
        Assert.True(ImageDataFolder.IsImageFolder(dir));
        var read = ImageDataFolder.ReadMeta(dir);
        Assert.Equal(meta.Classes, read.Classes);
        Assert.Equal(new ImageAugmentation(1, false), read.Augmentation);

        var train = ImageDataFolder.ReadSplit(dir, read, "train");
        var val = ImageDataFolder.ReadSplit(dir, read, "val");
        var ids = train.Pixels.Where((_, k) => k % 8 == 0).Concat(val.Pixels.Where((_, k) => k % 8 == 0)).Select(b => (int)b).Order();
        Assert.Equal(Enumerable.Range(0, 40), ids); // every image once, in one split only
        for (int i = 0; i < val.Count; i++) Assert.Equal(val.Image(i)[0] % 3, val.Labels[i]);
        Assert.Equal(test.Pixels, ImageDataFolder.ReadSplit(dir, read, "test").Pixels);

        // Mean and std of the training part, per channel: channel 1 mirrors channel 0.
        var values = train.Pixels.Where((_, k) => k % 8 < 4).Select(b => b / 255.0).ToArray();
        double mean = values.Average(), std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        Assert.Equal(mean, read.Mean[0], 5);
        Assert.Equal(1 - mean, read.Mean[1], 5);
        Assert.Equal(std, read.Std[0], 4);

        string other = Path.Combine(dir, "again");
        ImageDataFolder.Write(other, Numbered(40), null, "numbers", 0.25, 1, false);
        Assert.Equal(val.Pixels, ImageDataFolder.ReadSplit(other, ImageDataFolder.ReadMeta(other), "val").Pixels);
        var e = Assert.Throws<FileNotFoundException>(() => ImageDataFolder.ReadSplit(other, read, "test"));
        Assert.Contains("no test split", e.Message);
    }

    [Fact]
    public void MismatchedImageAndLabelFilesAreNamed()
    {
        ImageDataFolder.Write(dir, Numbered(10), null, "numbers", 0.2, 0, false);
        var meta = ImageDataFolder.ReadMeta(dir);
        File.WriteAllBytes(Path.Combine(dir, "val.labels"), new byte[12]);
        var e = Assert.Throws<InvalidDataException>(() => ImageDataFolder.ReadSplit(dir, meta, "val"));
        Assert.Contains("val.images", e.Message);
        Assert.Contains("val.labels", e.Message);
        File.WriteAllBytes(Path.Combine(dir, "val.labels"), [9, 0, 0, 0, 0, 0, 0, 0]);
        e = Assert.Throws<InvalidDataException>(() => ImageDataFolder.ReadSplit(dir, meta, "val"));
        Assert.Contains("label 9", e.Message);
        Assert.False(ImageDataFolder.IsImageFolder(Path.Combine(dir, "nowhere")));
    }
}
