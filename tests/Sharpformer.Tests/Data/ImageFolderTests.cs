using Sharpformer.Data;
using StbImageWriteSharp;

namespace Sharpformer.Tests.Data;

/// <summary>Class sub-folders of PNG/JPEG files written here (StbImageWriteSharp), decoded, converted and resized.</summary>
public sealed class ImageFolderTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-img-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>Writes an image given as interleaved [height, width, channels] bytes; .png or .jpg by the name.</summary>
    string Write(string relative, byte[] pixels, int height, int width, int channels)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var stream = File.Create(path);
        var components = channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue;
        if (path.EndsWith(".png", StringComparison.Ordinal)) new ImageWriter().WritePng(pixels, width, height, components, stream);
        else new ImageWriter().WriteJpg(pixels, width, height, components, stream, 100);
        return path;
    }

    static byte[] Filled(int count, byte value) => Enumerable.Repeat(value, count).ToArray();

    [Fact]
    public void ClassesAreSortedSubFoldersAndPixelsArePlanar()
    {
        // 2x3 RGB: pixel (y, x) = (10y + x, 100 + 10y + x, 200 + x) stored interleaved.
        var rgb = new byte[2 * 3 * 3];
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                (rgb[(y * 3 + x) * 3], rgb[(y * 3 + x) * 3 + 1], rgb[(y * 3 + x) * 3 + 2]) = ((byte)(10 * y + x), (byte)(100 + 10 * y + x), (byte)(200 + x));
        Write("b_dog/2.png", rgb, 2, 3, 3);
        Write("b_dog/1.png", Filled(18, 50), 2, 3, 3);
        Write("a_cat/deeper/x.png", Filled(6, 90), 2, 3, 1);
        Write("a_cat/y.jpg", Filled(18, 160), 2, 3, 3);
        File.WriteAllText(Path.Combine(dir, "a_cat", "notes.txt"), "not an image");
        File.WriteAllText(Path.Combine(dir, "readme.png"), "top-level files are not in a class");
        Directory.CreateDirectory(Path.Combine(dir, ".hidden"));

        var set = ImageFolder.Load(dir, 2, 3, channels: 3);
        Assert.Equal(["a_cat", "b_dog"], set.ClassNames);
        Assert.Equal([0, 0, 1, 1], set.Labels);
        Assert.Equal((4, 3, 2, 3), (set.Count, set.Channels, set.Height, set.Width));
        Assert.Equal(Filled(18, 90), set.Image(0).ToArray()); // grey PNG read as RGB, same size: exact
        Assert.All(set.Image(1).ToArray(), v => Assert.InRange(v, 157, 163)); // JPEG quality 100 of a flat colour
        Assert.Equal(Filled(18, 50), set.Image(2).ToArray());
        byte[] planar = [0, 1, 2, 10, 11, 12, /* G */ 100, 101, 102, 110, 111, 112, /* B */ 200, 201, 202, 200, 201, 202];
        Assert.Equal(planar, set.Image(3).ToArray());

        var grey = ImageFolder.Load(dir, 2, 3, channels: 1);
        Assert.Equal(Filled(6, 50), grey.Image(2).ToArray()); // r = g = b: grey keeps the value
        Assert.Equal(6, grey.ImageSize);
    }

    [Fact]
    public void ResizeIsBilinearUpAndAreaDown()
    {
        // Up 1x2 → 1x4 (bilinear, half-pixel centres as PyTorch's align_corners=False).
        Assert.Equal([0, 25, 75, 100], ImageFolder.Resize([0, 100], 1, 2, 1, 1, 4));
        // Down 1x3 → 1x2: output pixels cover 1.5 source pixels each.
        Assert.Equal([10, 50], ImageFolder.Resize([0, 30, 60], 1, 3, 1, 1, 2));
        // Down 4x4 → 2x2: means of 2x2 blocks, per channel, from interleaved to planar.
        var src = new byte[4 * 4 * 2];
        for (int i = 0; i < 16; i++) (src[2 * i], src[2 * i + 1]) = ((byte)(i * 4), (byte)(255 - i));
        // Blocks: pixels {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}: means 2.5, 4.5, 10.5, 12.5.
        Assert.Equal([10, 18, 42, 50, /* second channel */ 253 - 1, 251 - 1, 245 - 1, 243 - 1], ImageFolder.Resize(src, 4, 4, 2, 2, 2));
        // Same size: a copy.
        Assert.Equal([7, 8, 9, 1, 2, 3], ImageFolder.Resize([7, 1, 8, 2, 9, 3], 1, 3, 2, 1, 3));
    }

    [Fact]
    public void ReadsOneImageForPrediction()
    {
        var path = Write("one.png", Filled(8 * 8, 200), 8, 8, 1);
        Assert.Equal(Filled(3 * 4 * 4, 200), ImageFolder.ReadImage(path, 4, 4, 3));
    }

    [Fact]
    public void BadFoldersAreNamed()
    {
        Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Load(Path.Combine(dir, "absent"), 4, 4, 1));
        Assert.Contains("holds no PNG or JPEG images", Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 4, 4, 1)).Message);
        Directory.CreateDirectory(Path.Combine(dir, "cat"));
        File.WriteAllText(Path.Combine(dir, "cat", "a.txt"), "text");
        Assert.Contains("holds no PNG or JPEG images", Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 4, 4, 1)).Message);

        Write("cat/1.png", Filled(4, 1), 2, 2, 1);
        var one = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 4, 4, 1));
        Assert.Contains("one class (cat)", one.Message);

        Directory.CreateDirectory(Path.Combine(dir, "dog"));
        Assert.Contains($"Class folder {Path.Combine(dir, "dog")} holds no PNG or JPEG images",
            Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 4, 4, 1)).Message);

        var broken = Path.Combine(dir, "dog", "broken.png");
        File.WriteAllBytes(broken, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 4, 4, 1));
        Assert.Contains($"{broken} cannot be read", e.Message);

        File.Delete(broken);
        Write("dog/ok.jpg", Filled(12, 9), 2, 2, 3);
        Assert.Equal(2, ImageFolder.Load(dir, 4, 4, 1).Count);
        Assert.Throws<ArgumentException>(() => ImageFolder.Load(dir, 4, 4, 2));
    }
}
