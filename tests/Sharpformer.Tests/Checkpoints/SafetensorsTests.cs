using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class SafetensorsTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-st-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void RoundTripIsExact()
    {
        var a = Enumerable.Range(0, 15).Select(i => MathF.Sin(i) * 1e3f).ToArray();
        var ids = new[] { 3, -1, 50256 };
        string path = Path.Combine(dir, "t.safetensors");
        new SafetensorsWriter().AddMetadata("format", "pt").Add("a", [3, 5], a).AddInts("ids", [3], () => ids).Save(path);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([3, 5], f["a"].Shape);
        Assert.Equal(a, f.ReadFloats("a"));
        Assert.Equal(ids, f.ReadInts("ids"));
        Assert.Equal(0, (8 + BitConverter.ToInt64(File.ReadAllBytes(path), 0)) % 8);
    }

    [Fact]
    public void TruncatedFileIsRejectedWithClearMessage()
    {
        string path = Path.Combine(dir, "t.safetensors");
        new SafetensorsWriter().Add("a", [100], new float[100]).Save(path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^40]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", e.Message);
        File.WriteAllBytes(path, bytes[..5]);
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
    }

    [Fact]
    public void CorruptHeaderIsRejected()
    {
        string path = Path.Combine(dir, "t.safetensors");
        var header = "{not json}   "u8.ToArray();
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)header.Length), .. header]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void HalfAndBFloat16AreConverted()
    {
        string path = Path.Combine(dir, "h.safetensors");
        var halves = new[] { (Half)1.5f, (Half)(-2f) };
        var bf = new ushort[] { 0x3FC0, 0xC000 }; // 1.5, -2 in bfloat16
        var header = System.Text.Encoding.UTF8.GetBytes("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}");
        using (var s = File.Create(path))
        {
            s.Write(BitConverter.GetBytes((long)header.Length));
            s.Write(header);
            foreach (var h in halves) s.Write(BitConverter.GetBytes(h));
            foreach (var b in bf) s.Write(BitConverter.GetBytes(b));
        }
        using var f = SafetensorsFile.Open(path);
        Assert.Equal([1.5f, -2f], f.ReadFloats("h"));
        Assert.Equal([1.5f, -2f], f.ReadFloats("b"));
    }

    /// <summary>Writes 8-byte header length, header, data: a file exactly as given, however wrong.</summary>
    internal static void WriteRaw(string path, byte[] header, byte[] data) =>
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)header.Length), .. header, .. data]);

    [Theory]
    [InlineData("""{"__metadata__":[],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "__metadata__ is not an object")]
    [InlineData("""{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "value 'k' is not a string")]
    [InlineData("""{"__metadata__":{"k":{"x":"y"}},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "value 'k' is not a string")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "names 'a' twice")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"\u0061":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "names 'a' twice")]
    [InlineData("""{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "names 'dtype' twice")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", "not a whole number from 0 to 2147483647")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}""", "more elements than any file can hold")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1073741824,1073741824,4],"data_offsets":[0,0]}}""", "more elements than any file can hold")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "not a whole number")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", "not a whole number")]
    [InlineData("""{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}""", "shape that is not an array")]
    [InlineData("""{"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}}""", "other than numbers")]
    [InlineData("""{"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}}""", "dtype that is not a string")]
    [InlineData("""{"a":{"dtype":"3","shape":[2],"data_offsets":[0,8]}}""", "not a safetensors type")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", "lacks data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}""", "unknown field 'extra'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}""", "3 data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "before it starts")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "should hold 12 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", "inside the previous tensor")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "inside the previous tensor")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "previous one ends at 0")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "truncated")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "cover only 4")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} {}""", "not valid JSON")]
    [InlineData("""[]""", "not a JSON object")]
    [InlineData("""null""", "not a JSON object")]
    [InlineData("""{"a":null}""", "entry for 'a' is not an object")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", "not valid JSON")]
    [InlineData("""{"\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "invalid string")]
    public void HostileHeaderIsRejectedByName(string header, string problem)
    {
        string path = Path.Combine(dir, "bad.safetensors");
        WriteRaw(path, System.Text.Encoding.UTF8.GetBytes(header), new byte[8]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void HeaderThatIsNotUtf8IsRejected()
    {
        string path = Path.Combine(dir, "bad.safetensors");
        var header = System.Text.Encoding.UTF8.GetBytes("""{"aX":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""");
        header[3] = 0xFF;
        WriteRaw(path, header, new byte[8]);
        Assert.Contains("not valid UTF-8", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void HugeHeaderIsRefusedBeforeItIsRead()
    {
        // A 100 MB header in a sparse file: refused from the length prefix alone, without reading or allocating it.
        string path = Path.Combine(dir, "huge.safetensors");
        using (var s = File.Create(path))
        {
            s.Write(BitConverter.GetBytes(100_000_000L));
            s.SetLength(8 + 100_000_000L);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        Assert.Contains("100000000 bytes", e.Message);
    }

    [Fact]
    public void HugeTensorInSparseFileIsRejectedBeforeAllocating()
    {
        // 20,000 x 20,000 floats (1.6 GB) declared, a few bytes present.
        string path = Path.Combine(dir, "sparse.safetensors");
        WriteRaw(path, System.Text.Encoding.UTF8.GetBytes("""{"w":{"dtype":"F32","shape":[20000,20000],"data_offsets":[0,1600000000]}}"""), new byte[64]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path)).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void AllSafetensorsDTypesAreListedAndBoolReadsAsInts()
    {
        string path = Path.Combine(dir, "types.safetensors");
        new SafetensorsWriter()
            .AddBytes("mask", SafetensorsDType.BOOL, [2, 2], [1, 0, 1, 1])
            .AddBytes("d", SafetensorsDType.F64, [1], BitConverter.GetBytes(2.5))
            .AddBytes("u", SafetensorsDType.U16, [3], new byte[6])
            .Save(path);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal([1, 0, 1, 1], f.ReadInts("mask"));
        Assert.Equal((SafetensorsDType.F64, 8L), (f["d"].DType, f["d"].ByteLength));
        Assert.Equal(SafetensorsDType.U16, f["u"].DType);
        Assert.Throws<InvalidDataException>(() => f.ReadFloats("mask"));
    }

    [Fact]
    public void ChecksumDetectsEveryFlippedDataByte()
    {
        string path = Path.Combine(dir, "c.safetensors");
        var a = Enumerable.Range(0, 37).Select(i => i * 0.25f).ToArray();
        new SafetensorsWriter().AddMetadata("format", "pt").WithChecksum().Add("a", [37], a).AddInts("n", [2], () => new[] { 7, 8 }).Save(path);
        var bytes = File.ReadAllBytes(path);
        long dataStart = 8 + BitConverter.ToInt64(bytes, 0);
        using (var f = SafetensorsFile.Open(path))
        {
            Assert.True(f.HasChecksum);
            Assert.Equal(32, f.Metadata[SafetensorsFile.ChecksumKey].Length);
            Assert.Equal("pt", f.Metadata["format"]);
            Assert.True(f.VerifyChecksum());
            Assert.Equal(a, f.ReadFloats("a"));
        }
        for (long i = dataStart; i < bytes.Length; i += 13)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[i] ^= 0x10;
            File.WriteAllBytes(path, damaged);
            using var f = SafetensorsFile.Open(path);
            var e = Assert.Throws<InvalidDataException>(() => f.VerifyChecksum());
            Assert.Contains("c.safetensors", e.Message);
            Assert.Contains("checksum", e.Message);
        }
    }

    [Fact]
    public void FileWithoutChecksumVerifiesAsUnchecked()
    {
        string path = Path.Combine(dir, "n.safetensors");
        new SafetensorsWriter().Add("a", [2], [1f, 2f]).Save(path);
        using var f = SafetensorsFile.Open(path);
        Assert.False(f.HasChecksum);
        Assert.False(f.VerifyChecksum());
    }

    [Fact]
    public void ChecksumMatchesXxHash128OfTheDataSection()
    {
        string path = Path.Combine(dir, "x.safetensors");
        new SafetensorsWriter().WithChecksum().Add("a", [3], [1f, 2f, 3f]).Save(path);
        var bytes = File.ReadAllBytes(path);
        var data = bytes.AsSpan((int)(8 + BitConverter.ToInt64(bytes, 0)));
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(data)), f.Metadata[SafetensorsFile.ChecksumKey]);
    }
}
