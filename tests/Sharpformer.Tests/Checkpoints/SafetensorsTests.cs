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
}
