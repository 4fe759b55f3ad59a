using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// What a stack of <see cref="TransformerBlock"/>s keeps between incremental decoding steps, for several
/// independent streams (samples, beams): per layer the self-attention keys and values of every position so far
/// [streams, Capacity, 2C] (k and v side by side), and for blocks with cross-attention the keys and values of the
/// encoder's output [streams, S, 2C], computed once (<see cref="TransformerBlock.PrepareMemory"/>). Also the scratch a
/// step needs, grown only when a longer prompt arrives. Dispose to return the memory.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] kv;
    readonly Tensor?[] memoryKv;
    Tensor? scratch, logits;
    int scratchRows;
    readonly int width, hidden, heads;

    /// <param name="blocks">The stack the cache serves (its width, heads, MLP width and cross-attention).</param>
    /// <param name="memoryLength">Encoder positions per stream for cross-attention (0 without).</param>
    /// <param name="weights">Packed block weights for decode steps (<see cref="DecodeWeights"/>), shared by the caches of one run.</param>
    public KvCache(IReadOnlyList<TransformerBlock> blocks, int streams, int capacity, int memoryLength = 0, DecodeWeights? weights = null)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count == 0) throw new ArgumentException("KvCache: a stack of at least one block is needed.", nameof(blocks));
        if (streams <= 0 || capacity <= 0 || memoryLength < 0)
            throw new ArgumentException($"KvCache: streams ({streams}) and capacity ({capacity}) must be positive and the memory length ({memoryLength}) not negative.");
        if (weights is not null && !weights.Serves(blocks)) throw new ArgumentException("KvCache: the packed weights were made from other blocks.", nameof(weights));
        bool cross = blocks[0].Cross is not null;
        if (cross != memoryLength > 0)
            throw new ArgumentException(cross ? "KvCache: blocks with cross-attention need the encoder's length per stream." : "KvCache: blocks without cross-attention take no memory.", nameof(memoryLength));
        Blocks = blocks;
        Streams = streams;
        Capacity = capacity;
        MemoryLength = memoryLength;
        Weights = weights;
        var o = blocks[0].Options;
        (width, hidden, heads) = (o.Width, o.HiddenWidth, o.Heads);
        kv = new Tensor[blocks.Count];
        memoryKv = new Tensor?[blocks.Count];
        for (int l = 0; l < kv.Length; l++)
        {
            kv[l] = new Tensor(streams, capacity, 2 * width);
            if (cross) memoryKv[l] = new Tensor(streams, memoryLength, 2 * width);
        }
        KeyLengths = new int[streams];
        MemoryLengths = new int[streams];
    }

    public IReadOnlyList<TransformerBlock> Blocks { get; }
    public int Streams { get; }

    /// <summary>Positions the cache holds per stream.</summary>
    public int Capacity { get; }

    /// <summary>Encoder positions per stream (0 without cross-attention).</summary>
    public int MemoryLength { get; }

    /// <summary>The packed block weights its decode steps use, if any.</summary>
    public DecodeWeights? Weights { get; }

    /// <summary>Positions cached per stream (every stream holds the same number).</summary>
    public int Length { get; set; }

    /// <summary>Forgets every cached position (the memory is kept for reuse; the encoder's keys and values stay).</summary>
    public void Reset() => Length = 0;

    /// <summary>
    /// Makes <paramref name="stream"/> hold the positions of a one-stream cache of the same blocks, and this cache as
    /// long as it (every stream shares one length: the other streams must be refilled to it too).
    /// </summary>
    public void CopyStream(KvCache source, int stream)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Blocks != Blocks || source.Streams != 1 || source.Capacity != Capacity)
            throw new ArgumentException("KvCache.CopyStream: the source must be a one-stream cache of the same blocks.", nameof(source));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)stream, (uint)Streams, nameof(stream));
        int row = 2 * width, positions = Capacity * row;
        for (int l = 0; l < kv.Length; l++)
        {
            source.kv[l].Span[..(source.Length * row)].CopyTo(kv[l].Span.Slice(stream * positions, source.Length * row));
            if (memoryKv[l] is { } memory)
                source.memoryKv[l]!.Span.CopyTo(memory.Span.Slice(stream * MemoryLength * row, MemoryLength * row));
        }
        if (MemoryLength > 0) MemoryLengths[stream] = source.MemoryLengths[0];
        Length = source.Length;
    }

    /// <summary>
    /// Beam search's reordering: afterwards stream s holds what stream <paramref name="parents"/>[s] held (a parent
    /// may be taken by several streams, or by none).
    /// </summary>
    public void Reorder(ReadOnlySpan<int> parents)
    {
        if (parents.Length != Streams) throw new ArgumentException($"KvCache.Reorder: {parents.Length} parents for {Streams} streams.", nameof(parents));
        foreach (int p in parents)
            if ((uint)p >= (uint)Streams) throw new ArgumentException($"KvCache.Reorder: parent {p} is not a stream of {Streams}.", nameof(parents));
        bool identity = true;
        for (int s = 0; s < parents.Length; s++) identity &= parents[s] == s;
        if (identity) return;
        int row = 2 * width;
        Span<int> lengths = stackalloc int[Streams];
        MemoryLengths.CopyTo(lengths);
        for (int s = 0; s < Streams; s++) MemoryLengths[s] = lengths[parents[s]];
        if (Length == 0 && MemoryLength == 0) return;
        // One scratch of every stream's used rows serves each layer in turn: only the cached positions move, not the
        // whole capacity (beam search reorders at every step).
        using var scratch = new Tensor(Streams * Math.Max(Length, MemoryLength) * row);
        for (int l = 0; l < kv.Length; l++)
        {
            Permute(kv[l].Span, Capacity * row, Length * row, parents, scratch.Span);
            if (memoryKv[l] is { } memory) Permute(memory.Span, MemoryLength * row, MemoryLength * row, parents, scratch.Span);
        }
    }

    /// <summary>Stream s's first <paramref name="used"/> floats become those of stream parents[s] (streams <paramref name="stride"/> apart).</summary>
    static void Permute(Span<float> values, int stride, int used, ReadOnlySpan<int> parents, Span<float> scratch)
    {
        if (used == 0) return;
        for (int s = 0; s < parents.Length; s++) values.Slice(s * stride, used).CopyTo(scratch.Slice(s * used, used));
        for (int s = 0; s < parents.Length; s++) scratch.Slice(parents[s] * used, used).CopyTo(values.Slice(s * stride, used));
    }

    internal Span<float> Kv(int layer) => kv[layer].Span;
    internal Span<float> MemoryKv(int layer) => memoryKv[layer]!.Span;

    /// <summary>Keys each stream's query sees in a decode step (every stream holds Length positions).</summary>
    internal int[] KeyLengths { get; }

    /// <summary>Encoder positions each stream's cross-attention sees (its source sentence's length).</summary>
    public int[] MemoryLengths { get; }

    /// <summary>The output buffer of a step: [streams, vocab] logits, allocated on first use.</summary>
    internal Span<float> Logits(int vocab)
    {
        if (logits is null || logits.Length != Streams * vocab)
        {
            logits?.Dispose();
            logits = new Tensor(Streams, vocab);
        }
        return logits.Span;
    }

    internal Span<float> X => Slice(0, width);
    internal Span<float> H => Slice(1, width);
    internal Span<float> Tmp => Slice(2, width);
    internal Span<float> Att => Slice(3, width);
    internal Span<float> Qkv => Slice(4, 3 * width);
    internal Span<float> Fc => Slice(7, hidden);
    internal Span<float> Act => Slice(7, hidden, hidden);
    internal Span<float> Stats => Slice(7, 2, 2 * hidden);
    internal Span<float> Lse => scratch!.Span[(scratchRows * (7 * width + 2 * hidden + 2))..];

    Span<float> Slice(int unitsOfC, int perRow, int extraPerRow = 0) =>
        scratch!.Span.Slice(scratchRows * (unitsOfC * width + extraPerRow), scratchRows * perRow);

    /// <summary>Grows the scratch to hold <paramref name="rows"/> rows (only when a longer prompt arrives).</summary>
    internal void EnsureScratch(int rows)
    {
        if (rows <= scratchRows) return;
        scratch?.Dispose();
        scratchRows = Math.Max(rows, Streams);
        scratch = new Tensor(scratchRows * (7 * width + 2 * hidden + 2) + heads * Math.Max(Math.Max(Capacity, scratchRows), MemoryLength));
    }

    public void Dispose()
    {
        foreach (var t in kv) t.Dispose();
        foreach (var t in memoryKv) t?.Dispose();
        scratch?.Dispose();
        logits?.Dispose();
    }
}

/// <summary>
/// Every block's linear weights packed for decode steps (<see cref="PackedWeight"/>): a snapshot of them, shared
/// by the caches of one sampling run. Dispose it after the run to return its memory to the pool.
/// </summary>
public sealed class DecodeWeights : IDisposable
{
    internal readonly record struct Block(PackedWeight Qkv, PackedWeight Out, PackedWeight Fc, PackedWeight Proj, PackedWeight? CrossQ, PackedWeight? CrossOut);

    /// <summary>Largest copy kept in the shared array pool between runs (reused, its pages are already mapped).</summary>
    const long PooledBytes = 64 << 20;

    readonly Block[] blocks;
    readonly IReadOnlyList<TransformerBlock> source;
    float[]? storage; // every packed weight, one array
    readonly bool pooled;

    public DecodeWeights(IReadOnlyList<TransformerBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        source = blocks;
        long total = Bytes(blocks) / sizeof(float);
        if (total > Array.MaxLength) throw new InvalidOperationException($"DecodeWeights: {total} packed floats exceed one array; these blocks are too large to pack for decoding.");
        pooled = total * sizeof(float) <= PooledBytes;
        storage = pooled ? System.Buffers.ArrayPool<float>.Shared.Rent((int)total) : GC.AllocateUninitializedArray<float>((int)total);
        int offset = 0;
        this.blocks = blocks.Select(b => new Block(Pack(b.Attn.QkvProj), Pack(b.Attn.OutProj), Pack(b.Mlp.Fc), Pack(b.Mlp.Proj),
            b.Cross is null ? null : Pack(b.Cross.QProj), b.Cross is null ? null : Pack(b.Cross.OutProj))).ToArray();

        PackedWeight Pack(Linear layer)
        {
            var packed = new PackedWeight(layer.Weight.Value.Span, layer.Bias is null ? default : layer.Bias.Value.Span, layer.OutFeatures, layer.InFeatures, storage, offset);
            offset += Floats(layer);
            return packed;
        }
    }

    static int Floats(Linear layer) => PackedWeight.Floats(layer.OutFeatures, layer.InFeatures);

    /// <summary>Bytes the packed copy of these blocks' weights takes.</summary>
    public static long Bytes(IReadOnlyList<TransformerBlock> blocks) =>
        blocks.Sum(b => (long)Floats(b.Attn.QkvProj) + Floats(b.Attn.OutProj) + Floats(b.Mlp.Fc) + Floats(b.Mlp.Proj)
            + (b.Cross is null ? 0 : (long)Floats(b.Cross.QProj) + Floats(b.Cross.OutProj))) * sizeof(float);

    internal bool Serves(IReadOnlyList<TransformerBlock> blocks) => ReferenceEquals(blocks, source) || blocks.SequenceEqual(source);

    internal Block Layer(int l) => blocks[l];

    public void Dispose()
    {
        foreach (var b in blocks)
        {
            b.Qkv.Dispose(); b.Out.Dispose(); b.Fc.Dispose(); b.Proj.Dispose(); b.CrossQ?.Dispose(); b.CrossOut?.Dispose();
        }
        if (pooled && storage is not null) System.Buffers.ArrayPool<float>.Shared.Return(storage);
        storage = null;
    }
}
