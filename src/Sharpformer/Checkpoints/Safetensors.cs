using System.Buffers;
using System.IO.Hashing;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Element types of the safetensors format. All of them may appear in a file (Hugging Face GPT-2 files store
/// their causal-mask buffers as BOOL); F32, F16 and BF16 read as floats, I32, I64, U8 and BOOL as ints.
/// </summary>
public enum SafetensorsDType { F32, F16, BF16, I32, I64, U8, BOOL, F64, I8, I16, U16, U32, U64 }

/// <summary>One tensor entry of a safetensors header.</summary>
public sealed record SafetensorInfo(string Name, SafetensorsDType DType, int[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A safetensors file opened memory-mapped: 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then raw little-endian data.
/// Opening validates the whole header against the file's length before allocating anything for the data:
/// strict JSON types, no duplicated names, shapes whose byte size matches their offsets (checked arithmetic),
/// and tensors that tile the data section exactly. Any problem is one <see cref="InvalidDataException"/>
/// naming the file and what is wrong.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>
    /// Largest header accepted. A header spends about 100 bytes per tensor, so 16 MB lists some 150,000 tensors,
    /// a hundred times what the largest published checkpoints hold (GPT-2 has 148, a 70B Llama under 1,000);
    /// the cap bounds what parsing a hostile header can allocate.
    /// </summary>
    public const long MaxHeaderBytes = 16 << 20;
    /// <summary>The <c>__metadata__</c> key under which <see cref="SafetensorsWriter.WithChecksum"/> records the data's XxHash128.</summary>
    public const string ChecksumKey = "xxh128";
    const string MetadataKey = "__metadata__";

    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    readonly byte* basePtr;
    readonly long dataStart, dataLength;
    readonly Dictionary<string, SafetensorInfo> byName = new();

    public string Path { get; }
    public IReadOnlyList<SafetensorInfo> Tensors { get; } = [];
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();

    string FileName => System.IO.Path.GetFileName(Path);

    SafetensorsFile(string path)
    {
        Path = path;
        string name = FileName;
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
            if (headerLength > MaxHeaderBytes)
                throw new InvalidDataException($"{name} is corrupt or not a safetensors file: its header claims {headerLength} bytes, more than the {MaxHeaderBytes >> 20} MB any real model needs.");
            if (headerLength <= 0 || 8 + headerLength > fileLength)
                throw new InvalidDataException($"{name} is truncated or not a safetensors file: its header claims {headerLength} bytes but the file holds {fileLength}.");
            dataStart = 8 + headerLength;
            dataLength = fileLength - dataStart;
            var (tensors, metadata) = ParseHeader(name, new ReadOnlySpan<byte>(basePtr + 8, (int)headerLength), dataLength);
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

    /// <summary>Reads an integer tensor (I32, I64, U8 or BOOL) as int32.</summary>
    public int[] ReadInts(string name)
    {
        var t = this[name];
        var raw = RawBytes(name);
        return t.DType switch
        {
            SafetensorsDType.I32 => MemoryMarshal.Cast<byte, int>(raw).ToArray(),
            SafetensorsDType.I64 => Array.ConvertAll(MemoryMarshal.Cast<byte, long>(raw).ToArray(), v => v is >= int.MinValue and <= int.MaxValue
                ? (int)v : throw new InvalidDataException($"Tensor '{name}' in {FileName} holds {v}, outside the int32 range.")),
            SafetensorsDType.U8 or SafetensorsDType.BOOL => Array.ConvertAll(raw.ToArray(), v => (int)v),
            _ => throw new InvalidDataException($"Tensor '{name}' in {System.IO.Path.GetFileName(Path)} has dtype {t.DType}, not an integer type."),
        };
    }

    /// <summary>True when the writer recorded a checksum of the data section (<see cref="ChecksumKey"/>).</summary>
    public bool HasChecksum => Metadata.ContainsKey(ChecksumKey);

    /// <summary>
    /// Hashes the data section and compares it with the checksum recorded when the file was written: flipped
    /// bytes anywhere in the tensor data throw an <see cref="InvalidDataException"/>. Returns false, having read
    /// nothing, when the file records no checksum (files from other tools), true when the data matches.
    /// </summary>
    public bool VerifyChecksum()
    {
        if (!Metadata.TryGetValue(ChecksumKey, out var recorded)) return false;
        string actual = HashData(FileName, Path, dataStart, dataLength);
        if (!string.Equals(actual, recorded, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{FileName} is corrupt: its tensor data does not match the {ChecksumKey} checksum recorded when it was written ({recorded}, the data now hashes to {actual}); the file was damaged after it was saved.");
        return true;
    }

    /// <summary>XxHash128 of a file's byte range, as lowercase hex; read through the handle in chunks so it never maps the whole file.</summary>
    static string HashData(string name, string path, long start, long length)
    {
        var hash = new XxHash128();
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, 1 << 18) + 1);
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            for (long done = 0; done < length;)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), start + done);
                if (read <= 0) throw new InvalidDataException($"{name} ended while its checksum was being verified.");
                hash.Append(buffer.AsSpan(0, read));
                done += read;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        return Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    public void Dispose()
    {
        if (view is not null && basePtr != null) view.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }

    static InvalidDataException Corrupt(string file, string problem) => new($"{file} is corrupt: {problem}.");

    /// <summary>
    /// Reads the header token by token (System.Text.Json's document model would silently keep the last of two
    /// equal names), checking every JSON type, then checks that the tensors tile the data section exactly.
    /// </summary>
    static (List<SafetensorInfo>, Dictionary<string, string>) ParseHeader(string file, ReadOnlySpan<byte> header, long dataLength)
    {
        if (!Utf8.IsValid(header)) throw Corrupt(file, "its header is not valid UTF-8 text");
        var tensors = new List<SafetensorInfo>();
        var metadata = new Dictionary<string, string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 4 });
        try
        {
            if (Next(ref reader) != JsonTokenType.StartObject) throw Corrupt(file, "its header is not a JSON object");
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                if (!names.Add(name)) throw Corrupt(file, $"its header names '{name}' twice");
                if (name == MetadataKey) ReadMetadata(ref reader, file, metadata);
                else tensors.Add(ReadEntry(ref reader, file, name));
            }
            if (reader.Read()) throw Corrupt(file, "its header holds more than one JSON value");
        }
        catch (JsonException e) { throw Corrupt(file, $"its header is not valid JSON ({e.Message})"); }
        catch (InvalidOperationException e) { throw Corrupt(file, $"its header holds an invalid string ({e.Message})"); }

        tensors.Sort((a, b) => a.Offset != b.Offset ? a.Offset.CompareTo(b.Offset) : a.ByteLength.CompareTo(b.ByteLength));
        long end = 0;
        foreach (var t in tensors)
        {
            if (t.Offset < end)
                throw Corrupt(file, $"tensor '{t.Name}' starts at byte {t.Offset} of the data, inside the previous tensor (which ends at {end})");
            if (t.Offset > end)
                throw Corrupt(file, $"tensor '{t.Name}' starts at byte {t.Offset} of the data but the previous one ends at {end}");
            end = t.Offset + t.ByteLength;
        }
        if (end > dataLength)
            throw new InvalidDataException($"{file} is truncated: its header describes {end} bytes of tensor data but the file holds {dataLength}.");
        if (end < dataLength)
            throw Corrupt(file, $"it holds {dataLength} bytes of data but its tensors cover only {end}");
        return (tensors, metadata);
    }

    static JsonTokenType Next(ref Utf8JsonReader reader) =>
        reader.Read() ? reader.TokenType : throw new JsonException("the header ends early");

    static void ReadMetadata(ref Utf8JsonReader reader, string file, Dictionary<string, string> metadata)
    {
        if (Next(ref reader) != JsonTokenType.StartObject) throw Corrupt(file, $"its {MetadataKey} is not an object of strings");
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            if (Next(ref reader) != JsonTokenType.String) throw Corrupt(file, $"its {MetadataKey} value '{key}' is not a string");
            if (!metadata.TryAdd(key, reader.GetString()!)) throw Corrupt(file, $"its {MetadataKey} names '{key}' twice");
        }
    }

    static SafetensorInfo ReadEntry(ref Utf8JsonReader reader, string file, string name)
    {
        if (Next(ref reader) != JsonTokenType.StartObject) throw Corrupt(file, $"the header entry for '{name}' is not an object");
        SafetensorsDType? dtype = null;
        List<long>? shape = null, offsets = null;
        while (Next(ref reader) == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            bool seen = key switch { "dtype" => dtype is not null, "shape" => shape is not null, "data_offsets" => offsets is not null, _ => false };
            if (seen) throw Corrupt(file, $"tensor '{name}' names '{key}' twice");
            switch (key)
            {
                case "dtype":
                    if (Next(ref reader) != JsonTokenType.String) throw Corrupt(file, $"tensor '{name}' has a dtype that is not a string");
                    string text = reader.GetString()!;
                    dtype = ParseDType(text) ?? throw Corrupt(file, $"tensor '{name}' has dtype '{text}', which is not a safetensors type ({string.Join(", ", Enum.GetNames<SafetensorsDType>())})");
                    break;
                case "shape": shape = ReadCounts(ref reader, file, name, key, int.MaxValue); break;
                case "data_offsets": offsets = ReadCounts(ref reader, file, name, key, long.MaxValue); break;
                default: throw Corrupt(file, $"tensor '{name}' has an unknown field '{key}'");
            }
        }
        if (dtype is null || shape is null || offsets is null)
            throw Corrupt(file, $"tensor '{name}' lacks {(dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets")}");
        if (offsets.Count != 2) throw Corrupt(file, $"tensor '{name}' has {offsets.Count} data_offsets, not 2");
        if (offsets[1] < offsets[0]) throw Corrupt(file, $"tensor '{name}' ends (byte {offsets[1]}) before it starts (byte {offsets[0]})");
        var info = new SafetensorInfo(name, dtype.Value, shape.Select(d => (int)d).ToArray(), offsets[0], offsets[1] - offsets[0]);
        long bytes;
        try { bytes = checked(info.ElementCount * SizeOf(info.DType)); }
        catch (OverflowException) { throw Corrupt(file, $"tensor '{name}' has shape {info.ShapeText}, more elements than any file can hold"); }
        if (bytes != info.ByteLength)
            throw Corrupt(file, $"tensor '{name}' {info.ShapeText} {info.DType} should hold {bytes} bytes but its data_offsets span {info.ByteLength}");
        return info;
    }

    /// <summary>An array of whole numbers in [0, max] (a shape or a pair of offsets).</summary>
    static List<long> ReadCounts(ref Utf8JsonReader reader, string file, string name, string key, long max)
    {
        if (Next(ref reader) != JsonTokenType.StartArray) throw Corrupt(file, $"tensor '{name}' has a {key} that is not an array");
        var values = new List<long>();
        while (Next(ref reader) == JsonTokenType.Number)
        {
            if (!reader.TryGetInt64(out long v) || v < 0 || v > max)
                throw Corrupt(file, $"tensor '{name}' has {key} value {System.Text.Encoding.UTF8.GetString(reader.ValueSpan)}, not a whole number from 0 to {max}");
            values.Add(v);
        }
        if (reader.TokenType != JsonTokenType.EndArray) throw Corrupt(file, $"tensor '{name}' has a {key} holding something other than numbers");
        return values;
    }

    static SafetensorsDType? ParseDType(string text) => text switch
    {
        "F32" => SafetensorsDType.F32, "F16" => SafetensorsDType.F16, "BF16" => SafetensorsDType.BF16,
        "I32" => SafetensorsDType.I32, "I64" => SafetensorsDType.I64, "U8" => SafetensorsDType.U8,
        "BOOL" => SafetensorsDType.BOOL, "F64" => SafetensorsDType.F64, "I8" => SafetensorsDType.I8,
        "I16" => SafetensorsDType.I16, "U16" => SafetensorsDType.U16, "U32" => SafetensorsDType.U32,
        "U64" => SafetensorsDType.U64, _ => null,
    };

    public static int SizeOf(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 or SafetensorsDType.U32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 or SafetensorsDType.U16 => 2,
        _ => 1,
    };
}

/// <summary>
/// Writes a safetensors file: collect entries (each a callback producing its data), then <see cref="Save"/>
/// streams header and data to the file and flushes it to disk. Entries are written in the order added.
/// With <see cref="WithChecksum"/> the header also records the XxHash128 of the data section, which
/// <see cref="SafetensorsFile.VerifyChecksum"/> checks on load.
/// </summary>
public sealed class SafetensorsWriter
{
    public delegate ReadOnlySpan<float> FloatSource();
    public delegate ReadOnlySpan<int> IntSource();

    readonly List<(string Name, SafetensorsDType DType, int[] Shape, long Bytes, Action<Stream> Write)> entries = new();
    readonly Dictionary<string, string> metadata = new();
    bool checksum;

    public SafetensorsWriter AddMetadata(string key, string value) { metadata[key] = value; return this; }

    /// <summary>Records the XxHash128 of the data section under <see cref="SafetensorsFile.ChecksumKey"/> in <c>__metadata__</c>.</summary>
    public SafetensorsWriter WithChecksum() { checksum = true; return this; }

    public SafetensorsWriter Add(string name, int[] shape, FloatSource data)
    {
        long n = shape.Aggregate(1L, (a, d) => checked(a * d));
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
        long n = shape.Aggregate(1L, (a, d) => checked(a * d));
        entries.Add((name, SafetensorsDType.I32, (int[])shape.Clone(), n * 4, s =>
        {
            var span = data();
            if (span.Length != n) throw new ArgumentException($"Tensor '{name}' [{string.Join(", ", shape)}] expects {n} ints but got {span.Length}.");
            s.Write(MemoryMarshal.AsBytes(span));
        }));
        return this;
    }

    /// <summary>A tensor of any dtype given as its raw little-endian bytes (e.g. a BOOL mask buffer).</summary>
    public SafetensorsWriter AddBytes(string name, SafetensorsDType dtype, int[] shape, byte[] data)
    {
        long bytes = shape.Aggregate(1L, (a, d) => checked(a * d)) * SafetensorsFile.SizeOf(dtype);
        if (data.Length != bytes) throw new ArgumentException($"Tensor '{name}' [{string.Join(", ", shape)}] {dtype} expects {bytes} bytes but got {data.Length}.");
        entries.Add((name, dtype, (int[])shape.Clone(), bytes, s => s.Write(data)));
        return this;
    }

    /// <summary>Writes the file at <paramref name="path"/> and flushes it to disk.</summary>
    public void Save(string path)
    {
        if (entries.Select(e => e.Name).Distinct().Count() != entries.Count)
            throw new ArgumentException("Safetensors entries must have distinct names.");
        var json = new MemoryStream();
        long checksumAt = -1; // where the checksum's placeholder digits sit in the header
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata.Count > 0 || checksum)
            {
                w.WriteStartObject("__metadata__");
                if (checksum)
                {
                    w.Flush();
                    checksumAt = json.Length + $"\"{SafetensorsFile.ChecksumKey}\":\"".Length;
                    w.WriteString(SafetensorsFile.ChecksumKey, new string('0', 32));
                }
                foreach (var (k, v) in metadata)
                    if (!(checksum && k == SafetensorsFile.ChecksumKey)) w.WriteString(k, v);
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
        var data = new HashingStream(file, checksum ? new XxHash128() : null);
        foreach (var e in entries) e.Write(data);
        if (data.Hash is not null)
        {
            // The digits have a fixed width, so they overwrite the placeholder without moving anything.
            file.Position = 8 + checksumAt;
            file.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToHexStringLower(data.Hash.GetCurrentHash())));
        }
        file.Flush(flushToDisk: true);
    }

    /// <summary>Passes writes through to the file, hashing them on the way.</summary>
    sealed class HashingStream(Stream inner, XxHash128? hash) : Stream
    {
        public XxHash128? Hash => hash;
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash?.Append(buffer);
            inner.Write(buffer);
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
