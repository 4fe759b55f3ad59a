using System.Buffers.Binary;
using System.IO.Compression;
using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

/// <summary>The IDX reader and the MNIST folder loader on files made here, plain and gzipped, good and bad.</summary>
public sealed class IdxTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-idx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>An IDX file: big-endian magic, dimensions, then the bytes.</summary>
    static byte[] IdxBytes(int magic, int[] dims, byte[] body)
    {
        var bytes = new byte[4 + 4 * dims.Length + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        body.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    static byte[] Gzip(byte[] bytes)
    {
        var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Optimal)) gz.Write(bytes);
        return output.ToArray();
    }

    string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static byte[] Pixels(int count) => Enumerable.Range(0, count).Select(i => (byte)(i * 37 + 11)).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsImagesAndLabels(bool gzipped)
    {
        var pixels = Pixels(3 * 5 * 4);
        var images = IdxBytes(Idx.ImagesMagic, [3, 5, 4], pixels);
        var labels = IdxBytes(Idx.LabelsMagic, [3], [2, 0, 9]);
        var imagesPath = Write("images", gzipped ? Gzip(images) : images);
        var labelsPath = Write("labels", gzipped ? Gzip(labels) : labels);

        var (count, rows, cols, read) = Idx.ReadImages(imagesPath);
        Assert.Equal((3, 5, 4), (count, rows, cols));
        Assert.Equal(pixels, read);
        Assert.Equal([2, 0, 9], Idx.ReadLabels(labelsPath));

        var set = MnistFolder.Read(imagesPath, labelsPath, MnistFolder.MnistClasses);
        Assert.Equal((3, 1, 5, 4), (set.Count, set.Channels, set.Height, set.Width));
        Assert.Equal([2, 0, 9], set.Labels);
        Assert.Equal(pixels.AsSpan(20, 20).ToArray(), set.Image(1).ToArray());
    }

    [Fact]
    public void WrongMagicIsNamed()
    {
        var labels = Write("labels", IdxBytes(Idx.LabelsMagic, [2], [1, 2]));
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(labels));
        Assert.Contains(labels, e.Message);
        Assert.Contains("0x00000801", e.Message);
        var gz = Write("text.gz", Gzip("hello world, not IDX"u8.ToArray()));
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(gz));
        Assert.Contains(gz, e.Message);
        Assert.Contains("magic number 0x68656C6C", e.Message);
    }

    [Fact]
    public void TruncatedPlainFileIsCaughtBeforeReading()
    {
        var full = IdxBytes(Idx.ImagesMagic, [4, 3, 3], Pixels(36));
        var path = Write("short", full[..^5]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        path = Write("header-only", full[..10]);
        e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));
        Assert.Contains("ends inside its 16-byte IDX header", e.Message);
        path = Write("long", [.. full, 0]);
        Assert.Contains("holds 53 bytes", Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path)).Message);
    }

    [Fact]
    public void HeaderClaimingHugeImagesFailsWithoutAllocatingThem()
    {
        // 2^30 images of 64x64: 4 TB, refused from the header alone.
        var path = Write("huge", IdxBytes(Idx.ImagesMagic, [1 << 30, 64, 64], Pixels(100)));
        Assert.Contains("more than", Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path)).Message);
        // Gzipped, 1 GB claimed and 100 bytes present: the buffer grows only with the data, then the end is found.
        path = Write("huge.gz", Gzip(IdxBytes(Idx.ImagesMagic, [1 << 14, 256, 256], Pixels(100))));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 8 << 20);
        Assert.Contains("truncated", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void TruncatedOrCorruptGzipIsOneClearError()
    {
        var gz = Gzip(IdxBytes(Idx.ImagesMagic, [50, 10, 10], Pixels(5000)));
        // Cut inside the deflate data (a cut in the 8-byte trailer alone loses no pixels, and GZipStream does not notice).
        foreach (int keep in new[] { gz.Length / 2, gz.Length - 12, 12 })
        {
            var path = Write($"cut{keep}.gz", gz[..keep]);
            var e = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("truncated", e.Message);
        }
        var corrupt = (byte[])gz.Clone();
        corrupt[10] = 0xFF; // the first deflate block header: reserved block type 3
        var bad = Write("corrupt.gz", corrupt);
        var error = Assert.Throws<InvalidDataException>(() => Idx.ReadImages(bad));
        Assert.Contains(bad, error.Message);
        Assert.Contains("corrupt gzip", error.Message);
    }

    [Fact]
    public void CountMismatchNamesBothFiles()
    {
        var images = Write("img", IdxBytes(Idx.ImagesMagic, [3, 2, 2], Pixels(12)));
        var labels = Write("lab", IdxBytes(Idx.LabelsMagic, [2], [1, 1]));
        var e = Assert.Throws<InvalidDataException>(() => MnistFolder.Read(images, labels, MnistFolder.MnistClasses));
        Assert.Contains($"{images} holds 3 images but {labels} holds 2 labels", e.Message);
        var outside = Write("lab10", IdxBytes(Idx.LabelsMagic, [3], [1, 10, 1]));
        Assert.Contains("label 10 of image 1", Assert.Throws<InvalidDataException>(() => MnistFolder.Read(images, outside, MnistFolder.MnistClasses)).Message);
    }

    [Fact]
    public void FolderWithTheFourStandardFilesPlainOrGzipped()
    {
        Write("train-images-idx3-ubyte.gz", Gzip(IdxBytes(Idx.ImagesMagic, [2, 3, 3], Pixels(18))));
        Write("train-labels-idx1-ubyte", IdxBytes(Idx.LabelsMagic, [2], [4, 7]));
        Write("t10k-images-idx3-ubyte", IdxBytes(Idx.ImagesMagic, [1, 3, 3], Pixels(9)));
        var missing = Assert.Throws<FileNotFoundException>(() => MnistFolder.LoadFashionMnist(dir));
        Assert.Contains("t10k-labels-idx1-ubyte", missing.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", missing.Message);
        Assert.Contains("--input DIR", missing.Message);

        Write("t10k-labels-idx1-ubyte.gz", Gzip(IdxBytes(Idx.LabelsMagic, [1], [8])));
        var (train, test) = MnistFolder.LoadFashionMnist(dir);
        Assert.Equal((2, 1), (train.Count, test.Count));
        Assert.Equal([4, 7], train.Labels);
        Assert.Equal("Bag", test.ClassNames[test.Labels[0]]);
        Assert.Equal(Pixels(9), test.Pixels);
    }

    [Fact]
    public void MissingFolderSaysHowToGetFashionMnist()
    {
        var e = Assert.Throws<FileNotFoundException>(() => MnistFolder.LoadFashionMnist(Path.Combine(dir, "absent")));
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
        Assert.Contains("--input DIR", MnistFolderMnistMessage());
    }

    string MnistFolderMnistMessage() => Assert.Throws<FileNotFoundException>(() => MnistFolder.LoadMnist(dir)).Message;
}
