using System.Buffers.Binary;
using System.IO.Compression;

namespace Sharpformer.Data;

/// <summary>
/// IDX files as MNIST and Fashion-MNIST ship them: a big-endian header (magic 0x00000803 and [N, rows, cols] for
/// images, 0x00000801 and [N] for labels) and then unsigned bytes. Gzipped files (magic 1f 8b) are read through
/// <see cref="GZipStream"/>. Every check runs before the pixels are allocated, and a buffer only grows as bytes
/// actually arrive, so a corrupt header cannot make the reader allocate what the file does not hold.
/// </summary>
public static class Idx
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    /// <summary>Largest file body accepted: what one byte array holds.</summary>
    const long MaxBytes = 0x7FFFFFC7; // Array.MaxLength
    const int FirstChunk = 1 << 20;

    /// <summary>Images [N, rows, cols] of an IDX3 ubyte file → (count, rows, cols, pixels row-major).</summary>
    public static (int Count, int Rows, int Cols, byte[] Pixels) ReadImages(string path)
    {
        var (dims, body) = Read(path, ImagesMagic, 3);
        return (dims[0], dims[1], dims[2], body);
    }

    /// <summary>Labels [N] of an IDX1 ubyte file.</summary>
    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, 1).Body;

    static (int[] Dims, byte[] Body) Read(string path, int magic, int rank)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file {path} does not exist.", path);
        using var file = File.OpenRead(path);
        bool gzipped = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = gzipped ? new GZipStream(file, CompressionMode.Decompress) : file;
        Span<byte> header = stackalloc byte[4 + 4 * rank];
        int got = ReadFully(stream, header, path);
        int found = got >= 4 ? BinaryPrimitives.ReadInt32BigEndian(header) : -1;
        if (got >= 4 && found != magic)
            throw new InvalidDataException($"{path} is not an IDX {(rank == 3 ? "image" : "label")} file: magic number 0x{found:X8}, expected 0x{magic:X8}.");
        if (got < header.Length)
            throw new InvalidDataException($"{path} is truncated: it ends inside its {header.Length}-byte IDX header.");
        var dims = new int[rank];
        long size = 1;
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * d)..]);
            if (dims[d] < 0 || (d > 0 && dims[d] == 0))
                throw new InvalidDataException($"{path}: dimension {d} of its IDX header is {dims[d]}.");
            size *= dims[d];
            if (size > MaxBytes) throw new InvalidDataException($"{path}: its IDX header claims [{string.Join(", ", dims[..(d + 1)])}...], more than {MaxBytes} bytes.");
        }
        if (!gzipped && file.Length != header.Length + size)
            throw new InvalidDataException($"{path} holds {file.Length} bytes; its header [{string.Join(", ", dims)}] says {header.Length + size}" +
                (file.Length < header.Length + size ? " (the file is truncated)." : "."));
        var body = ReadBody(stream, (int)size, path, dims);
        if (ReadSome(stream, stackalloc byte[1], path) > 0)
            throw new InvalidDataException($"{path} holds more data than its header [{string.Join(", ", dims)}] says.");
        return (dims, body);
    }

    /// <summary>Exactly <paramref name="size"/> bytes, in a buffer that doubles as data arrives (never larger than twice what was read).</summary>
    static byte[] ReadBody(Stream stream, int size, string path, int[] dims)
    {
        var body = new byte[Math.Min(size, FirstChunk)];
        int filled = 0;
        while (filled < size)
        {
            if (filled == body.Length) Array.Resize(ref body, (int)Math.Min(size, 2L * body.Length));
            int n = ReadSome(stream, body.AsSpan(filled), path);
            if (n == 0)
                throw new InvalidDataException($"{path} is truncated: its header [{string.Join(", ", dims)}] needs {size} bytes of data, it holds {filled}.");
            filled += n;
        }
        return body;
    }

    static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = ReadSome(stream, buffer[filled..], path);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }

    /// <summary>stream.Read, with a corrupt gzip stream's error (which names no file) given the file's name.</summary>
    static int ReadSome(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.Read(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path} is a corrupt gzip file: {e.Message}", e);
        }
    }
}
