using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Inverted dropout with a counter-based generator: element i is kept iff Uniform(seed, i) >= p, so the mask
/// depends only on (seed, i), never on threads or the SIMD path. Kept elements are scaled by 1/(1-p).
/// The loops are written once over <see cref="ILanes{V}"/>; the SplitMix64 hash runs 8 (or 4) lanes at a time
/// in 64-bit integer vectors (<see cref="IMaskLanes{V}"/>); since Uniform is k/2^24 for
/// a 24-bit integer k, the test Uniform >= p is done exactly as k >= ceil(p * 2^24) in integers.
/// </summary>
public static unsafe class Dropout
{
    const ulong Golden = 0x9E3779B97F4A7C15UL, Mix1 = 0xBF58476D1CE4E5B9UL, Mix2 = 0x94D049BB133111EBUL;
    const int ParallelThreshold = 1 << 15;
    const int Chunk = 1 << 14; // a multiple of every block width below, so chunks split no SIMD block

    /// <summary>Writes y and the keep mask (1 = kept).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<byte> keep, float p, ulong seed)
    {
        using var timing = Profiler.Time(KernelKind.Dropout);
        if (y.Length != x.Length || keep.Length != x.Length)
            throw new ArgumentException($"Dropout.Forward: x holds {x.Length} floats, y {y.Length}, keep {keep.Length}; they must match.");
        CheckP(p);
        fixed (float* px = x, py = y)
        fixed (byte* pk = keep)
            Run(px, py, pk, x.Length, p, seed, backward: false);
    }

    /// <summary>Adds dy * mask / (1-p) into dx.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<byte> keep, Span<float> dx, float p)
    {
        using var timing = Profiler.Time(KernelKind.Dropout);
        if (keep.Length != dy.Length || dx.Length != dy.Length)
            throw new ArgumentException($"Dropout.Backward: dy holds {dy.Length} floats, keep {keep.Length}, dx {dx.Length}; they must match.");
        CheckP(p);
        fixed (float* pdy = dy, pdx = dx)
        fixed (byte* pk = keep)
            Run(pdy, pdx, pk, dy.Length, p, 0, backward: true);
    }

    /// <summary>
    /// In-place dropout of one short row (a row of attention probabilities), with the same mask and values as
    /// <see cref="Forward"/> but no mask bytes and no profiler scope: every block, the last one too (through a
    /// padded copy), takes the vector path, where Forward would do a row shorter than four vectors one element at a time.
    /// </summary>
    internal static void Row(float* x, int n, float p, ulong seed)
    {
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) Row<Vector512<float>, Lanes512, Masks512>(x, n, Scale(p), Threshold(p), seed);
        else Row<Vector256<float>, Lanes256, Masks256>(x, n, Scale(p), Threshold(p), seed);
    }

    static void Row<V, L, M>(float* x, int n, float scale, uint threshold, ulong seed)
        where V : struct where L : struct, ILanes<V> where M : struct, IMaskLanes<V>
    {
        int w = L.Count;
        float* tail = stackalloc float[4 * 16];
        var vs = L.Splat(scale);
        for (int i = 0; i < n; i += 4 * w)
        {
            int m = Math.Min(4 * w, n - i);
            float* y = m == 4 * w ? x + i : tail;
            if (m < 4 * w) new Span<float>(x + i, m).CopyTo(new Span<float>(tail, 4 * w));
            M.Keep(seed + ((ulong)i + 1) * Golden, threshold, out var c0, out var c1, out var c2, out var c3);
            L.Store(L.And(L.Mul(L.Load(y), vs), c0), y);
            L.Store(L.And(L.Mul(L.Load(y + w), vs), c1), y + w);
            L.Store(L.And(L.Mul(L.Load(y + 2 * w), vs), c2), y + 2 * w);
            L.Store(L.And(L.Mul(L.Load(y + 3 * w), vs), c3), y + 3 * w);
            if (m < 4 * w) new Span<float>(tail, m).CopyTo(new Span<float>(x + i, m));
        }
    }

    /// <summary>A uniform float in [0, 1) from (seed, index): SplitMix64 finaliser.</summary>
    public static float Uniform(ulong seed, ulong index) => Hash24(seed, index) * (1f / (1 << 24));

    static uint Hash24(ulong seed, ulong index)
    {
        ulong z = seed + (index + 1) * Golden;
        z = (z ^ (z >> 30)) * Mix1;
        z = (z ^ (z >> 27)) * Mix2;
        z ^= z >> 31;
        return (uint)(z >> 40);
    }

    static void CheckP(float p)
    {
        if (!(p >= 0f && p <= 1f)) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout: p = {p} must lie in [0, 1].");
    }

    static float Scale(float p) => p < 1 ? 1f / (1f - p) : 0f;

    /// <summary>Uniform(seed, i) >= p  ⟺  k >= ceil(p·2^24): p·2^24 is exact in double.</summary>
    static uint Threshold(float p) => (uint)Math.Ceiling(p * 16777216.0);

    static void Run(float* a, float* b, byte* keep, int n, float p, ulong seed, bool backward)
    {
        if (n < ParallelThreshold || Parallelism.ThreadCount == 1)
        {
            Apply(a, b, keep, 0, n, p, seed, backward);
            return;
        }
        var job = Job.Current;
        job.Set(a, b, keep, n, p, seed, backward);
        Parallelism.For((n + Chunk - 1) / Chunk, job.Body);
        job.Set(null, null, null, 0, 0, 0, false);
    }

    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public readonly Action<int> Body;
        float* a, b;
        byte* keep;
        int n;
        float p;
        ulong seed;
        bool backward;

        Job() => Body = Execute;

        public void Set(float* a, float* b, byte* keep, int n, float p, ulong seed, bool backward)
        {
            this.a = a; this.b = b; this.keep = keep; this.n = n; this.p = p; this.seed = seed; this.backward = backward;
        }

        void Execute(int chunk)
        {
            int start = chunk * Chunk;
            Apply(a, b, keep, start, Math.Min(n, start + Chunk), p, seed, backward);
        }
    }

    /// <summary>Elements [start, end): forward a = x, b = y; backward a = dy, b = dx.</summary>
    static void Apply(float* a, float* b, byte* keep, int start, int end, float p, ulong seed, bool backward)
    {
        float scale = Scale(p);
        bool use512 = Simd.Use512 && Vector512.IsHardwareAccelerated;
        int i = start;
        if (backward)
        {
            i = use512
                ? Backward<Vector512<float>, Lanes512, Masks512>(a, b, keep, i, end, scale)
                : Backward<Vector256<float>, Lanes256, Masks256>(a, b, keep, i, end, scale);
            for (; i < end; i++) if (keep[i] != 0) b[i] = MathF.FusedMultiplyAdd(a[i], scale, b[i]);
            return;
        }
        uint threshold = Threshold(p);
        i = use512
            ? Forward<Vector512<float>, Lanes512, Masks512>(a, b, keep, i, end, scale, threshold, seed)
            : Forward<Vector256<float>, Lanes256, Masks256>(a, b, keep, i, end, scale, threshold, seed);
        for (; i < end; i++)
        {
            bool k = Hash24(seed, (ulong)i) >= threshold;
            keep[i] = k ? (byte)1 : (byte)0;
            b[i] = k ? a[i] * scale : 0f;
        }
    }

    /// <summary>Four float vectors a step: their keep masks, the kept lanes scaled, the masks as 0/1 bytes.</summary>
    static int Forward<V, L, M>(float* x, float* y, byte* keep, int i, int end, float scale, uint threshold, ulong seed)
        where V : struct where L : struct, ILanes<V> where M : struct, IMaskLanes<V>
    {
        int w = L.Count;
        var vs = L.Splat(scale);
        for (; i + 4 * w <= end; i += 4 * w)
        {
            M.Keep(seed + ((ulong)i + 1) * Golden, threshold, out var c0, out var c1, out var c2, out var c3);
            L.Store(L.And(L.Mul(L.Load(x + i), vs), c0), y + i);
            L.Store(L.And(L.Mul(L.Load(x + i + w), vs), c1), y + i + w);
            L.Store(L.And(L.Mul(L.Load(x + i + 2 * w), vs), c2), y + i + 2 * w);
            L.Store(L.And(L.Mul(L.Load(x + i + 3 * w), vs), c3), y + i + 3 * w);
            M.StoreBytes(c0, c1, c2, c3, keep + i);
        }
        return i;
    }

    /// <summary>dx += dy * scale where kept, four float vectors a step: the mask bytes widen to four lane masks.</summary>
    static int Backward<V, L, M>(float* dy, float* dx, byte* keep, int i, int end, float scale)
        where V : struct where L : struct, ILanes<V> where M : struct, IMaskLanes<V>
    {
        int w = L.Count;
        var vs = L.Splat(scale);
        for (; i + 4 * w <= end; i += 4 * w)
        {
            M.LoadBytes(keep + i, out var k0, out var k1, out var k2, out var k3);
            Step(dy + i, dx + i, k0, vs);
            Step(dy + i + w, dx + i + w, k1, vs);
            Step(dy + i + 2 * w, dx + i + 2 * w, k2, vs);
            Step(dy + i + 3 * w, dx + i + 3 * w, k3, vs);
        }
        return i;

        static void Step(float* dy, float* dx, V k, V vs)
        {
            var d = L.Load(dx);
            L.Store(L.Select(M.Kept(k), L.Fma(L.Load(dy), vs, d), d), dx);
        }
    }

    /// <summary>The keep masks at one vector width: the hash in 64-bit lanes, masks to and from bytes.</summary>
    interface IMaskLanes<V> where V : struct
    {
        /// <summary>
        /// Four vectors' keep masks (all-ones lanes where Hash24 >= threshold) for the elements whose SplitMix64
        /// states are z, z + Golden, …: eight vectors of 64-bit lanes hashed, narrowed in pairs to 32-bit lanes.
        /// </summary>
        static abstract void Keep(ulong z, uint threshold, out V c0, out V c1, out V c2, out V c3);
        /// <summary>Four vectors' masks narrowed to one byte (0 or 1) a lane.</summary>
        static abstract void StoreBytes(V c0, V c1, V c2, V c3, byte* keep);
        /// <summary>Four vectors' worth of mask bytes, each widened to a 32-bit lane.</summary>
        static abstract void LoadBytes(byte* keep, out V k0, out V k1, out V k2, out V k3);
        /// <summary>All-ones lanes where a widened mask byte is not 0.</summary>
        static abstract V Kept(V k);
    }

    readonly struct Masks512 : IMaskLanes<Vector512<float>>
    {
        // Constant vectors (not static fields, which would cost a class-init check in the loop): the lanes'
        // offsets of z = seed + (i+1)·G, and the step from one vector of lanes to the next.
        static Vector512<ulong> Lanes
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Vector512.Create(0, Golden, unchecked(2 * Golden), unchecked(3 * Golden),
            unchecked(4 * Golden), unchecked(5 * Golden), unchecked(6 * Golden), unchecked(7 * Golden));
        }
        static Vector512<ulong> Step => Vector512.Create(unchecked(8 * Golden));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Keep(ulong z0, uint threshold, out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3)
        {
            var z = Vector512.Create(z0) + Lanes;
            var step2 = Step + Step;
            var vt = Vector512.Create(threshold);
            c0 = Vector512.GreaterThanOrEqual(Vector512.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c1 = Vector512.GreaterThanOrEqual(Vector512.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c2 = Vector512.GreaterThanOrEqual(Vector512.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c3 = Vector512.GreaterThanOrEqual(Vector512.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void StoreBytes(Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3, byte* keep)
        {
            var one = Vector512<uint>.One;
            Vector512.Store(Vector512.Narrow(Vector512.Narrow(c0.AsUInt32() & one, c1.AsUInt32() & one),
                Vector512.Narrow(c2.AsUInt32() & one, c3.AsUInt32() & one)), keep);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadBytes(byte* keep, out Vector512<float> k0, out Vector512<float> k1, out Vector512<float> k2, out Vector512<float> k3)
        {
            var (lo, hi) = Vector512.Widen(Vector512.Load(keep));
            var (w0, w1) = Vector512.Widen(lo);
            var (w2, w3) = Vector512.Widen(hi);
            k0 = w0.AsSingle(); k1 = w1.AsSingle(); k2 = w2.AsSingle(); k3 = w3.AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Kept(Vector512<float> k) => (~Vector512.Equals(k.AsUInt32(), Vector512<uint>.Zero)).AsSingle();

        /// <summary>The SplitMix64 finaliser, then the top 24 bits (as Hash24).</summary>
        static Vector512<ulong> Mix(Vector512<ulong> z)
        {
            z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Mix1;
            z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Mix2;
            z ^= Vector512.ShiftRightLogical(z, 31);
            return Vector512.ShiftRightLogical(z, 40);
        }
    }

    readonly struct Masks256 : IMaskLanes<Vector256<float>>
    {
        static Vector256<ulong> Lanes
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Vector256.Create(0, Golden, unchecked(2 * Golden), unchecked(3 * Golden));
        }
        static Vector256<ulong> Step => Vector256.Create(unchecked(4 * Golden));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Keep(ulong z0, uint threshold, out Vector256<float> c0, out Vector256<float> c1, out Vector256<float> c2, out Vector256<float> c3)
        {
            var z = Vector256.Create(z0) + Lanes;
            var step2 = Step + Step;
            var vt = Vector256.Create(threshold);
            c0 = Vector256.GreaterThanOrEqual(Vector256.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c1 = Vector256.GreaterThanOrEqual(Vector256.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c2 = Vector256.GreaterThanOrEqual(Vector256.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
            z += step2;
            c3 = Vector256.GreaterThanOrEqual(Vector256.Narrow(Mix(z), Mix(z + Step)), vt).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void StoreBytes(Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3, byte* keep)
        {
            var one = Vector256<uint>.One;
            Vector256.Store(Vector256.Narrow(Vector256.Narrow(c0.AsUInt32() & one, c1.AsUInt32() & one),
                Vector256.Narrow(c2.AsUInt32() & one, c3.AsUInt32() & one)), keep);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadBytes(byte* keep, out Vector256<float> k0, out Vector256<float> k1, out Vector256<float> k2, out Vector256<float> k3)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(keep));
            var (w0, w1) = Vector256.Widen(lo);
            var (w2, w3) = Vector256.Widen(hi);
            k0 = w0.AsSingle(); k1 = w1.AsSingle(); k2 = w2.AsSingle(); k3 = w3.AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Kept(Vector256<float> k) => (~Vector256.Equals(k.AsUInt32(), Vector256<uint>.Zero)).AsSingle();

        static Vector256<ulong> Mix(Vector256<ulong> z)
        {
            z = (z ^ Vector256.ShiftRightLogical(z, 30)) * Mix1;
            z = (z ^ Vector256.ShiftRightLogical(z, 27)) * Mix2;
            z ^= Vector256.ShiftRightLogical(z, 31);
            return Vector256.ShiftRightLogical(z, 40);
        }
    }
}
