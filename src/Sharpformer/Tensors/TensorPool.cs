using System.Runtime.InteropServices;

namespace Sharpformer.Tensors;

/// <summary>
/// Process-wide pool of 64-byte aligned native buffers, keyed by size (rounded up to 64 bytes). A training
/// step that repeats the shapes of the previous one rents back exactly the buffers it returned, so in
/// steady state it allocates neither native nor managed memory. Where shapes change from step to step
/// (padded sentences, images of a last short batch), a request with no idle buffer of its size takes the
/// smallest idle one up to twice as large, so the pool holds about one step's buffers at the largest shape,
/// not one set per shape seen. Buffers are never freed while pooled; <see cref="Trim"/> gives them back to the OS.
/// </summary>
public static unsafe class TensorPool
{
    const nuint Alignment = 64;
    static readonly Dictionary<nuint, Stack<nint>> free = [];
    /// <summary>The keys of <see cref="free"/>, ascending, for finding the smallest larger size.</summary>
    static readonly List<nuint> sizes = [];
    /// <summary>A request takes an idle buffer at most this many times its size: more would waste memory for speed.</summary>
    const int MaxOversize = 2;
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

    /// <summary>Rents at least <paramref name="bytes"/> bytes (contents undefined unless <paramref name="clear"/>).</summary>
    internal static void* Rent(nuint bytes, bool clear)
    {
        nuint size = RoundUp(bytes == 0 ? 1 : bytes);
        void* p = null;
        lock (gate)
        {
            if (TryTakeIdle(size, out nint q, out nuint capacity))
            {
                p = (void*)q;
                bytesPooled -= (long)capacity;
                size = capacity;
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
        else if (clear) NativeMemory.Clear(p, RoundUp(bytes == 0 ? 1 : bytes));
        return p;
    }

    /// <summary>An idle buffer of exactly <paramref name="size"/> bytes, else the smallest idle one up to <see cref="MaxOversize"/> times larger.</summary>
    static bool TryTakeIdle(nuint size, out nint buffer, out nuint capacity)
    {
        capacity = size;
        if (free.TryGetValue(size, out var exact) && exact.TryPop(out buffer)) return true;
        int i = sizes.BinarySearch(size);
        for (i = i < 0 ? ~i : i + 1; i < sizes.Count && sizes[i] <= size * MaxOversize; i++)
            if (free[sizes[i]].TryPop(out buffer))
            {
                capacity = sizes[i];
                return true;
            }
        buffer = 0;
        return false;
    }

    /// <summary>
    /// A fresh 64-byte-aligned block. Zeroed blocks come from calloc, which hands out untouched zero pages for
    /// large sizes, so a gradient buffer that is never written (a model loaded only to sample) costs no
    /// resident memory. Just below the aligned pointer sit the block's capacity (a rented buffer may be larger
    /// than asked for) and the original pointer for <see cref="FreeAligned"/>.
    /// </summary>
    static void* AllocAligned(nuint size, bool zeroed)
    {
        nuint total = size + Alignment + 2 * (nuint)sizeof(void*);
        byte* raw = (byte*)(zeroed ? NativeMemory.AllocZeroed(total) : NativeMemory.Alloc(total));
        byte* aligned = (byte*)(((nuint)(raw + 2 * sizeof(void*)) + Alignment - 1) & ~(Alignment - 1));
        ((void**)aligned)[-1] = raw;
        ((nuint*)aligned)[-2] = size;
        return aligned;
    }

    static nuint Capacity(void* p) => ((nuint*)p)[-2];

    static void FreeAligned(void* p) => NativeMemory.Free(((void**)p)[-1]);

    /// <summary>Gives a rented buffer back to the pool (its size is the one it was allocated with, whatever was asked).</summary>
    internal static void Return(void* p)
    {
        if (p is null) return;
        nuint size = Capacity(p);
        lock (gate)
        {
            if (!free.TryGetValue(size, out var stack))
            {
                free[size] = stack = new Stack<nint>();
                int i = sizes.BinarySearch(size);
                sizes.Insert(~i, size);
            }
            stack.Push((nint)p);
            bytesPooled += (long)size;
            rented--;
            bytesRented -= (long)size;
        }
    }

    /// <summary>Frees a buffer straight to the OS (finalizers: no locks held on the finalizer thread's behalf).</summary>
    internal static void FreeDirect(void* p)
    {
        if (p is null) return;
        nuint size = Capacity(p);
        FreeAligned(p);
        Interlocked.Add(ref bytesAllocated, -(long)size);
        Interlocked.Decrement(ref rented);
        lock (gate) bytesRented -= (long)size;
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
    public void Return() => TensorPool.Return(Pointer);
}
