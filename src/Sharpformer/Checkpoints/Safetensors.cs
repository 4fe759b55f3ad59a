using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Sharpformer.Checkpoints;

/// <summary>Element types of the safetensors format that Sharpformer reads (floats are converted to F32 on read).</summary>
public enum SafetensorsDType { F32, F16, BF16, I32, I64, U8 }

/// <summary>One tensor entry of a safetensors header.</summary>
public sealed record SafetensorInfo(string Name, SafetensorsDType DType, int[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A safetensors file opened memory-mapped: 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then raw little-endian data.
/// Opening validates the whole header against the file size, so a truncated or corrupt file
/// fails here with an <see cref="InvalidDataException"/> that says what is wrong.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    const long MaxHeaderBytes = 100_000_000;
    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    readonly byte* basePtr;
    readonly long dataStart;
    readonly Dictionary<string, SafetensorInfo> byName = new();

    public string Path { get; }
    public IReadOnlyList<SafetensorInfo> Tensors { get; } = [];
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();

    SafetensorsFile(string path)
    {
        Path = path;
        string name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist.", path);
        long fileLength = new FileInfo(path).Length;
        if (fileLength < 8) throw new InvalidDataException($"{name} is truncated or not a safetensors file: it holds only {fileLength} bytes.");
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        basePtr = p + view.PointerOffset;
        try
        {
            long headerLength = BitConverter.ToInt64(new ReadOnlySpan<byte>(basePtr, 8));
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > fileLength)
                throw new InvalidDataException($"{name} is truncated or not a safetensors file: its header claims {headerLength} bytes but the file holds {fileLength}.");
            dataStart = 8 + headerLength;
            var (tensors, metadata) = ParseHeader(name, new ReadOnlySpan<byte>(basePtr + 8, (int)headerLength), fileLength - dataStart);
            Tensors = tensors;
            Metadata = metadata;
            foreach (var t in tensors) byName[t.Name] = t;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a safetensors file.</summary>
    public static SafetensorsFile Open(string path) => new(path);

    public bool Contains(string name) => byName.ContainsKey(name);

    public SafetensorInfo this[string name] =>
        byName.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)} has no tensor named '{name}'.");

    /// <summary>The raw bytes of a tensor, straight from the mapping (valid until Dispose).</summary>
    public ReadOnlySpan<byte> RawBytes(string name)
    {
        var t = this[name];
        return new ReadOnlySpan<byte>(basePtr + dataStart + t.Offset, checked((int)t.ByteLength));
    }

    /// <summary>Reads a floating-point tensor (F32, F16 or BF16) into <paramref name="destination"/> as float32.</summary>
    public void ReadFloats(string name, Span<float> destination)
    {
        var t = this[name];
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"Tensor '{name}' has {t.ElementCount} elements {t.ShapeText} but the destination holds {destination.Length}.", nameof(destination));
        // Read through the file handle rather than the mapping: mapped pages would count as resident memory on
        // top of the destination (a 124M model would peak at twice its size); reads land straight in place.
        if (t.DType == SafetensorsDType.F32)
        {
            using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            var bytes = MemoryMarshal.AsBytes(destination);
            long offset = dataStart + t.Offset;
            while (bytes.Length > 0)
            {
                int read = RandomAccess.Read(handle, bytes, offset);
                if (read <= 0) throw new InvalidDataException($"{System.IO.Path.GetFileName(Path)} ended while reading tensor '{name}'.");
                bytes = bytes[read..];
                offset += read;
            }
            return;
        }
        var raw = RawBytes(name);
        switch (t.DType)
        {
            case SafetensorsDType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < halves.Length; i++) destination[i] = (float)halves[i];
                break;
            case SafetensorsDType.BF16:
                var bits = MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < bits.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
                break;
            default:
                throw new InvalidDataException($"Tensor '{name}' in {System.IO.Path.GetFileName(Path)} has dtype {t.DType}, not a floating-point type.");
        }
    }

    public float[] ReadFloats(string name)
    {
        var result = new float[this[name].ElementCount];
        ReadFloats(name, result);
        return result;
    }

    /// <summary>Reads an integer tensor (I32, I64 or U8) as int32.</summary>
    public int[] ReadInts(string name)
    {
        var t = this[name];
        var raw = RawBytes(name);
        return t.DType switch
        {
            SafetensorsDType.I32 => MemoryMarshal.Cast<byte, int>(raw).ToArray(),
            SafetensorsDType.I64 => Array.ConvertAll(MemoryMarshal.Cast<byte, long>(raw).ToArray(), v => checked((int)v)),
            SafetensorsDType.U8 => Array.ConvertAll(raw.ToArray(), v => (int)v),
            _ => throw new InvalidDataException($"Tensor '{name}' in {System.IO.Path.GetFileName(Path)} has dtype {t.DType}, not an integer type."),
        };
    }

    public void Dispose()
    {
        if (view is not null && basePtr != null) view.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }

    static (List<SafetensorInfo>, Dictionary<string, string>) ParseHeader(string file, ReadOnlySpan<byte> header, long dataLength)
    {
        var tensors = new List<SafetensorInfo>();
        var metadata = new Dictionary<string, string>();
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw new InvalidDataException($"{file} is corrupt: its header is not valid JSON ({e.Message})."); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{file} is corrupt: its header is not a JSON object.");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                tensors.Add(ParseEntry(file, entry));
            }
        }
        long expectedEnd = 0;
        foreach (var t in tensors.OrderBy(t => t.Offset))
        {
            if (t.Offset != expectedEnd)
                throw new InvalidDataException($"{file} is corrupt: tensor '{t.Name}' starts at byte {t.Offset} of the data but the previous one ends at {expectedEnd}.");
            expectedEnd = t.Offset + t.ByteLength;
        }
        if (expectedEnd > dataLength)
            throw new InvalidDataException($"{file} is truncated: its header describes {expectedEnd} bytes of tensor data but the file holds {dataLength}.");
        return (tensors, metadata);
    }

    static SafetensorInfo ParseEntry(string file, JsonProperty entry)
    {
        try
        {
            var v = entry.Value;
            string dtypeText = v.GetProperty("dtype").GetString() ?? "";
            if (!Enum.TryParse<SafetensorsDType>(dtypeText, ignoreCase: false, out var dtype))
                throw new InvalidDataException($"{file}: tensor '{entry.Name}' has dtype {dtypeText}, which Sharpformer does not read (F32, F16, BF16, I32, I64, U8).");
            var shape = v.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            var offsets = v.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || shape.Any(d => d < 0))
                throw new InvalidDataException($"{file} is corrupt: tensor '{entry.Name}' has bad offsets or shape.");
            var info = new SafetensorInfo(entry.Name, dtype, shape, offsets[0], offsets[1] - offsets[0]);
            if (info.ByteLength != info.ElementCount * SizeOf(dtype))
                throw new InvalidDataException($"{file} is corrupt: tensor '{entry.Name}' {info.ShapeText} {dtype} should hold {info.ElementCount * SizeOf(dtype)} bytes but its offsets span {info.ByteLength}.");
            return info;
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{file} is corrupt: the header entry for '{entry.Name}' is malformed.");
        }
    }

    public static int SizeOf(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 or SafetensorsDType.I32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I64 => 8,
        _ => 1,
    };
}

/// <summary>
/// Writes a safetensors file: collect entries (each a callback producing its data), then <see cref="Save"/>
/// streams header and data to the file and flushes it to disk. Entries are written in the order added.
/// </summary>
public sealed class SafetensorsWriter
{
    public delegate ReadOnlySpan<float> FloatSource();
    public delegate ReadOnlySpan<int> IntSource();

    readonly List<(string Name, SafetensorsDType DType, int[] Shape, long Bytes, Action<Stream> Write)> entries = new();
    readonly Dictionary<string, string> metadata = new();

    public SafetensorsWriter AddMetadata(string key, string value) { metadata[key] = value; return this; }

    public SafetensorsWriter Add(string name, int[] shape, FloatSource data)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        entries.Add((name, SafetensorsDType.F32, (int[])shape.Clone(), n * 4, s =>
        {
            var span = data();
            if (span.Length != n) throw new ArgumentException($"Tensor '{name}' [{string.Join(", ", shape)}] expects {n} floats but got {span.Length}.");
            s.Write(MemoryMarshal.AsBytes(span));
        }));
        return this;
    }

    public SafetensorsWriter Add(string name, int[] shape, float[] data) => Add(name, shape, () => data);

    public SafetensorsWriter AddInts(string name, int[] shape, IntSource data)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        entries.Add((name, SafetensorsDType.I32, (int[])shape.Clone(), n * 4, s =>
        {
            var span = data();
            if (span.Length != n) throw new ArgumentException($"Tensor '{name}' [{string.Join(", ", shape)}] expects {n} ints but got {span.Length}.");
            s.Write(MemoryMarshal.AsBytes(span));
        }));
        return this;
    }

    /// <summary>Writes the file at <paramref name="path"/> and flushes it to disk.</summary>
    public void Save(string path)
    {
        if (entries.Select(e => e.Name).Distinct().Count() != entries.Count)
            throw new ArgumentException("Safetensors entries must have distinct names.");
        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToString());
                w.WriteStartArray("shape");
                foreach (var d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.Bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.Bytes;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the tensor data stays aligned.
        int pad = (int)((8 - json.Length % 8) % 8);
        for (int i = 0; i < pad; i++) json.WriteByte((byte)' ');
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        file.Write(BitConverter.GetBytes(json.Length));
        json.Position = 0;
        json.CopyTo(file);
        foreach (var e in entries) e.Write(file);
        file.Flush(flushToDisk: true);
    }
}
