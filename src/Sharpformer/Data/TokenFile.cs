using System.IO.MemoryMappedFiles;

namespace Sharpformer.Data;

/// <summary>
/// A token file as nanoGPT writes it: flat little-endian uint16 ids (train.bin, val.bin), read memory-mapped
/// so a large corpus costs no managed memory.
/// </summary>
public sealed unsafe class TokenFile : ITokenSource, IDisposable
{
    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    readonly ushort* tokens;

    public string Path { get; }
    public long Count { get; }

    public TokenFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new FileNotFoundException($"Token file {path} does not exist; run `sharpformer prepare` first.", path);
        long bytes = new FileInfo(path).Length;
        if (bytes % 2 != 0) throw new InvalidDataException($"{path} holds {bytes} bytes, not a whole number of uint16 tokens.");
        Count = bytes / 2;
        if (Count == 0) return;
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = map.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        tokens = (ushort*)(p + view.PointerOffset);
    }

    public void Read(long start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"Tokens [{start}, {start + destination.Length}) lie outside {Path} ({Count} tokens).");
        ushort* src = tokens + start;
        for (int i = 0; i < destination.Length; i++) destination[i] = src[i];
    }

    public void Dispose()
    {
        if (tokens != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }

    /// <summary>Writes ids as little-endian uint16 (the ids must fit).</summary>
    public static void Write(string path, ReadOnlySpan<int> ids)
    {
        var buffer = new byte[ids.Length * 2];
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] > ushort.MaxValue) throw new ArgumentException($"Token id {ids[i]} does not fit a uint16 token file.");
            buffer[2 * i] = (byte)ids[i];
            buffer[2 * i + 1] = (byte)(ids[i] >> 8);
        }
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(buffer);
        f.Flush(flushToDisk: true);
    }
}
