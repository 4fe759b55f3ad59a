using System.Text;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// Seeded mutation fuzzing of the safetensors loader: small valid files are truncated, bit-flipped, given
/// crafted headers (huge shapes and lengths, duplicates, wrong JSON types, invalid UTF-8, deep nesting) and
/// loaded in full. Every case must load or throw <see cref="InvalidDataException"/>, nothing else, and no case
/// may allocate more than a small bound (the files are a few hundred bytes, so anything more was sized from
/// the header rather than the file).
/// </summary>
public sealed class SafetensorsFuzzTests : IDisposable
{
    const int Cases = 2500;
    const long AllocationBound = 2 << 20;
    readonly string dir = Directory.CreateTempSubdirectory("sf-fuzz-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly string[] Garbage =
    [
        "[]", "{}", "null", "true", "-1", "1.5", "1e400", "\"x\"", "\"F32\"", "4611686018427387904", "18446744073709551616",
        "[4611686018427387904,4]", "[2147483647,2147483647,2147483647]", "[-3]", "[0,18446744073709551615]",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", "\"\\ud800\"", "[1,\"2\"]", "[]",
    ];

    byte[][] Seeds()
    {
        var seeds = new List<byte[]>();
        void Save(SafetensorsWriter w)
        {
            string path = Path.Combine(dir, "seed.safetensors");
            w.Save(path);
            seeds.Add(File.ReadAllBytes(path));
        }
        Save(new SafetensorsWriter().AddMetadata("format", "pt").WithChecksum()
            .Add("w", [3, 5], Enumerable.Range(0, 15).Select(i => i * 0.5f).ToArray())
            .AddInts("ids", [4], () => new[] { 1, -2, 3, 50256 }));
        Save(new SafetensorsWriter()
            .AddBytes("h.0.attn.bias", SafetensorsDType.BOOL, [1, 1, 3, 3], [1, 0, 0, 1, 1, 0, 1, 1, 1])
            .AddBytes("half", SafetensorsDType.F16, [2], [0, 0x3C, 0, 0xC0])
            .AddBytes("big", SafetensorsDType.I64, [2], [.. BitConverter.GetBytes(7L), .. BitConverter.GetBytes(-5L)])
            .Add("empty", [0, 4], []));
        Save(new SafetensorsWriter().WithChecksum().Add("x", [1], [42f]));
        return [.. seeds];
    }

    /// <summary>One mutation; returns what it did, and whether the result must fail (a data byte flipped under a checksum).</summary>
    static (byte[] File, string What, bool MustFail) Mutate(byte[] seed, Random rng)
    {
        int headerLength = (int)BitConverter.ToInt64(seed, 0);
        var header = Encoding.UTF8.GetString(seed, 8, headerLength);
        var data = seed[(8 + headerLength)..];
        bool checksummed = header.Contains(SafetensorsFile.ChecksumKey);
        byte[] Assemble(string h) => Assemble8(Encoding.UTF8.GetBytes(h), data);
        static byte[] Assemble8(byte[] h, byte[] d) => [.. BitConverter.GetBytes((long)h.Length), .. h, .. d];

        switch (rng.Next(11))
        {
            case 0:
            {
                int n = rng.Next(seed.Length);
                return (seed[..n], $"truncated to {n}", false);
            }
            case 1:
            {
                var f = (byte[])seed.Clone();
                int flips = 1 + rng.Next(3);
                for (int i = 0; i < flips; i++) f[rng.Next(f.Length)] ^= (byte)(1 << rng.Next(8));
                return (f, $"{flips} flipped bits", false);
            }
            case 2:
            {
                var f = (byte[])seed.Clone();
                int i = 8 + headerLength + rng.Next(data.Length);
                if (data.Length == 0) return (f, "unchanged", false);
                f[i] ^= (byte)(1 << rng.Next(8));
                return (f, $"data bit flipped at {i}", checksummed);
            }
            case 3:
            {
                var f = (byte[])seed.Clone();
                long[] lengths = [0, -1, 1, headerLength - 1, headerLength + 1, long.MaxValue, long.MinValue, 100_000_000, int.MaxValue, 1L << 40];
                long length = lengths[rng.Next(lengths.Length)];
                BitConverter.GetBytes(length).CopyTo(f, 0);
                return (f, $"header length {length}", false);
            }
            case 4:
            {
                // A JSON value (after a ':') replaced by garbage of another type or size.
                var colons = Enumerable.Range(0, header.Length).Where(i => header[i] == ':').ToArray();
                int at = colons[rng.Next(colons.Length)] + 1;
                int end = ValueEnd(header, at);
                string g = Garbage[rng.Next(Garbage.Length)];
                return (Assemble(header[..at] + g + header[end..]), $"value at {at} -> {g}", false);
            }
            case 5:
            {
                // A number replaced by a huge, negative or fractional one.
                var digits = Enumerable.Range(0, header.Length).Where(i => char.IsAsciiDigit(header[i]) && !char.IsAsciiDigit(header[i - 1])).ToArray();
                if (digits.Length == 0) return (seed, "unchanged", false);
                int at = digits[rng.Next(digits.Length)];
                int end = at;
                while (end < header.Length && char.IsAsciiDigit(header[end])) end++;
                string[] numbers = ["4611686018427387904", "-1", "2.5", "1e3", "2147483648", "9223372036854775807", "0", "99999999999999999999"];
                string n = numbers[rng.Next(numbers.Length)];
                return (Assemble(header[..at] + n + header[end..]), $"number at {at} -> {n}", false);
            }
            case 6:
            {
                // An entry duplicated (same name, same or shifted offsets).
                int open = header.IndexOf("\":{", 1, StringComparison.Ordinal);
                int start = header.LastIndexOf('"', open - 1);
                int end = ValueEnd(header, open + 2);
                string entry = header[start..end];
                string h = header.TrimEnd();
                return (Assemble(h[..^1] + "," + entry + "}"), "duplicated entry", false);
            }
            case 7:
            {
                // Invalid UTF-8 bytes inside the header.
                var h = Encoding.UTF8.GetBytes(header);
                byte[][] bad = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]];
                var b = bad[rng.Next(bad.Length)];
                int at = 1 + rng.Next(h.Length - 1);
                return (Assemble8([.. h[..at], .. b, .. h[at..]], data), $"invalid UTF-8 at {at}", false);
            }
            case 8:
            {
                // Deeply nested garbage in place of the whole header or of one value.
                int depth = 1 + rng.Next(2000);
                string nest = rng.Next(2) == 0 ? new string('[', depth) + new string(']', depth) : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
                return (Assemble(rng.Next(2) == 0 ? nest : "{\"w\":" + nest + "}"), $"nesting {depth}", false);
            }
            case 9:
            {
                // A tensor whose shape and offsets agree but are enormous: must be refused against the file length.
                string[] shapes = ["[20000,20000]", "[1073741824,1073741824,4]", "[2147483647,2]", "[65536,65536,16]"];
                string s = shapes[rng.Next(shapes.Length)];
                long bytes = 4;
                try { foreach (var d in s.Trim('[', ']').Split(',')) bytes = checked(bytes * long.Parse(d)); }
                catch (OverflowException) { bytes = 0; }
                return (Assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":" + s + ",\"data_offsets\":[0," + bytes + "]}}"), $"huge shape {s}", false);
            }
            default:
            {
                // Random bytes appended, inserted or deleted.
                var f = new List<byte>(seed);
                int at = rng.Next(f.Count + 1), n = 1 + rng.Next(16);
                if (rng.Next(2) == 0) f.InsertRange(at, Enumerable.Range(0, n).Select(_ => (byte)rng.Next(256)));
                else f.RemoveRange(Math.Min(at, f.Count - 1), Math.Min(n, f.Count - Math.Min(at, f.Count - 1)));
                return ([.. f], $"splice at {at}", false);
            }
        }
    }

    /// <summary>Index just past the JSON value starting at <paramref name="at"/> (brackets balanced, strings skipped).</summary>
    static int ValueEnd(string json, int at)
    {
        int depth = 0;
        bool inString = false;
        for (int i = at; i < json.Length; i++)
        {
            char c = json[i];
            if (inString) { if (c == '\\') i++; else if (c == '"') { inString = false; if (depth == 0) return i + 1; } continue; }
            if (c == '"') inString = true;
            else if (c is '[' or '{') depth++;
            else if (c is ']' or '}') { if (depth == 0) return i; if (--depth == 0) return i + 1; }
            else if (c == ',' && depth == 0) return i;
        }
        return json.Length;
    }

    /// <summary>Loads everything the file holds, as a user of the file would.</summary>
    static void LoadFully(string path)
    {
        using var f = SafetensorsFile.Open(path);
        foreach (var t in f.Tensors)
        {
            if (t.DType is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16) Assert.Equal(t.ElementCount, f.ReadFloats(t.Name).Length);
            else if (t.DType is SafetensorsDType.I32 or SafetensorsDType.I64 or SafetensorsDType.U8 or SafetensorsDType.BOOL) Assert.Equal(t.ElementCount, f.ReadInts(t.Name).Length);
        }
        f.VerifyChecksum();
    }

    [Fact]
    public void MutatedFilesLoadOrFailCleanlyWithinBoundedMemory()
    {
        var seeds = Seeds();
        string path = Path.Combine(dir, "case.safetensors");
        foreach (var seed in seeds)
        {
            File.WriteAllBytes(path, seed);
            LoadFully(path); // warm up, and every seed is valid
        }
        var rng = new Random(20261202);
        int rejected = 0;
        for (int i = 0; i < Cases; i++)
        {
            var (file, what, mustFail) = Mutate(seeds[rng.Next(seeds.Length)], rng);
            File.WriteAllBytes(path, file);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Exception? error = null;
            try { LoadFully(path); }
            catch (Exception e) { error = e; }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (error is not null and not InvalidDataException)
                Assert.Fail($"case {i} ({what}) threw {error.GetType().Name}: {error.Message}");
            if (error is InvalidDataException) { rejected++; Assert.Contains("case.safetensors", error.Message); }
            Assert.True(!mustFail || error is not null, $"case {i} ({what}) loaded although its data no longer matches the checksum");
            Assert.True(allocated < AllocationBound, $"case {i} ({what}) allocated {allocated} bytes");
        }
        // The mutations must mostly produce bad files, or the fuzzer tests nothing.
        Assert.InRange(rejected, Cases / 2, Cases);
    }
}
