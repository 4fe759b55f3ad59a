using System.Runtime.InteropServices;

namespace Sharpformer.Tensors;

/// <summary>
/// Process-wide pool of 64-byte aligned native buffers, keyed by size class: small sizes rounded up to 64 bytes,
/// sizes from 64 KB up to the next eighth of their power of two (at most 12.5% more). A training step that repeats
/// the shapes of the previous one rents back exactly the buffers it returned, so in steady state it allocates
/// neither native nor managed memory; steps whose shapes vary a little (sentence pairs batched by length) share
/// classes instead of each keeping buffers of its own sizes. Buffers are never freed while pooled;
/// <see cref="Trim"/> gives them back to the OS.
/// </summary>
public static unsafe class TensorPool
{
    const nuint Alignment = 64;
    static readonly Dictionary<nuint, Stack<nint>> free = [];
    static readonly Lock gate = new();
    static long allocations, bytesAllocated, bytesPooled, rented, bytesRented, peakBytesRented;

    /// <summary>Native buffers allocated from the OS so far (a steady-state step adds none).</summary>
    public static long Allocations => Volatile.Read(ref allocations);

    /// <summary>Bytes currently allocated from the OS through the pool (rented plus idle).</summary>
    public static long BytesAllocated => Volatile.Read(ref bytesAllocated);

    /// <summary>Bytes sitting idle in the pool, ready for reuse.</summary>
    public static long BytesPooled => Volatile.Read(ref bytesPooled);

    /// <summary>The most bytes rented out at once since start-up: the memory a step truly needs at its peak.</summary>
    public static long PeakBytesRented => Volatile.Read(ref peakBytesRented);

    /// <summary>Buffers currently rented out (intermediates alive plus caller-owned tensors).</summary>
    public static long Rented => Volatile.Read(ref rented);

    internal static nuint RoundUp(nuint bytes) => (bytes + Alignment - 1) & ~(Alignment - 1);

    const int ClassBits = 3;            // eight classes per doubling
    const nuint ClassFrom = 64 * 1024;  // below this, every 64-byte size is its own class

    /// <summary>The bytes a buffer of <paramref name="bytes"/> really takes: its size class.</summary>
    internal static nuint SizeClass(nuint bytes)
    {
        nuint size = RoundUp(bytes == 0 ? 1 : bytes);
        if (size < ClassFrom) return size;
        nuint step = (nuint)1 << (System.Numerics.BitOperations.Log2(size) - ClassBits);
        return (size + step - 1) & ~(step - 1);
    }

    /// <summary>Rents at least <paramref name="bytes"/> bytes (contents undefined unless <paramref name="clear"/>).</summary>
    internal static void* Rent(nuint bytes, bool clear)
    {
        nuint size = SizeClass(bytes);
        void* p = null;
        lock (gate)
        {
            if (free.TryGetValue(size, out var stack) && stack.TryPop(out nint q))
            {
                p = (void*)q;
                bytesPooled -= (long)size;
            }
            rented++;
            bytesRented += (long)size;
            if (bytesRented > peakBytesRented) peakBytesRented = bytesRented;
        }
        if (p is null)
        {
            p = AllocAligned(size, clear);
            Interlocked.Increment(ref allocations);
            Interlocked.Add(ref bytesAllocated, (long)size);
        }
        else if (clear) NativeMemory.Clear(p, RoundUp(bytes == 0 ? 1 : bytes)); // the caller sees only what it asked for
        return p;
    }

    /// <summary>
    /// A fresh 64-byte-aligned block. Zeroed blocks come from calloc, which hands out untouched zero pages for
    /// large sizes, so a gradient buffer that is never written (a model loaded only to sample) costs no
    /// resident memory. The original pointer is kept just below the aligned one for <see cref="FreeAligned"/>.
    /// </summary>
    static void* AllocAligned(nuint size, bool zeroed)
    {
        nuint total = size + Alignment + (nuint)sizeof(void*);
        byte* raw = (byte*)(zeroed ? NativeMemory.AllocZeroed(total) : NativeMemory.Alloc(total));
        byte* aligned = (byte*)(((nuint)(raw + sizeof(void*)) + Alignment - 1) & ~(Alignment - 1));
        ((void**)aligned)[-1] = raw;
        return aligned;
    }

    static void FreeAligned(void* p) => NativeMemory.Free(((void**)p)[-1]);

    internal static void Return(void* p, nuint bytes)
    {
        if (p is null) return;
        nuint size = SizeClass(bytes);
        lock (gate)
        {
            if (!free.TryGetValue(size, out var stack)) free[size] = stack = new Stack<nint>();
            stack.Push((nint)p);
            bytesPooled += (long)size;
            rented--;
            bytesRented -= (long)size;
        }
    }

    /// <summary>Frees a buffer straight to the OS (finalizers: no locks held on the finalizer thread's behalf).</summary>
    internal static void FreeDirect(void* p, nuint bytes)
    {
        if (p is null) return;
        FreeAligned(p);
        Interlocked.Add(ref bytesAllocated, -(long)SizeClass(bytes));
        Interlocked.Decrement(ref rented);
        lock (gate) bytesRented -= (long)SizeClass(bytes);
    }

    /// <summary>Bytes rented right now.</summary>
    public static long BytesRented { get { lock (gate) return bytesRented; } }

    /// <summary>Starts a new peak from what is rented now, to measure what one piece of work needs at most.</summary>
    public static void ResetPeak()
    {
        lock (gate) peakBytesRented = bytesRented;
    }

    /// <summary>Frees every idle pooled buffer. Rented buffers are unaffected.</summary>
    public static void Trim()
    {
        lock (gate)
        {
            foreach (var (size, stack) in free)
                while (stack.TryPop(out nint q))
                {
                    FreeAligned((void*)q);
                    bytesAllocated -= (long)size;
                    bytesPooled -= (long)size;
                }
        }
    }
}

/// <summary>A raw pooled buffer held by the tape (saved statistics, masks, ids). Not a tensor.</summary>
internal readonly unsafe struct NativeBuffer(void* pointer, nuint bytes)
{
    public readonly void* Pointer = pointer;
    public readonly nuint Bytes = bytes;
    public bool IsEmpty => Pointer is null;
    public Span<float> Floats => new(Pointer, (int)(Bytes / sizeof(float)));
    public Span<int> Ints => new(Pointer, (int)(Bytes / sizeof(int)));
    public Span<byte> ByteSpan => new(Pointer, (int)Bytes);

    public static NativeBuffer Rent(nuint bytes, bool clear = false) => new(TensorPool.Rent(bytes, clear), bytes);
    public void Return() => TensorPool.Return(Pointer, Bytes);
}
