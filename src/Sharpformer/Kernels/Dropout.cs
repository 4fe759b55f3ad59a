using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Inverted dropout with a counter-based generator: element i is kept iff Uniform(seed, i) >= p, so the mask
/// depends only on (seed, i), never on threads or the SIMD path. Kept elements are scaled by 1/(1-p).
/// The SplitMix64 hash runs 8 (or 4) lanes at a time in 64-bit integer vectors; since Uniform is k/2^24 for
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
        int i = start;
        if (backward)
        {
            if (Simd.Use512 && Vector512.IsHardwareAccelerated) i = Backward512(a, b, keep, i, end, scale);
            else i = Backward256(a, b, keep, i, end, scale);
            for (; i < end; i++) if (keep[i] != 0) b[i] = MathF.FusedMultiplyAdd(a[i], scale, b[i]);
            return;
        }
        uint threshold = Threshold(p);
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) i = Forward512(a, b, keep, i, end, scale, threshold, seed);
        else i = Forward256(a, b, keep, i, end, scale, threshold, seed);
        for (; i < end; i++)
        {
            bool k = Hash24(seed, (ulong)i) >= threshold;
            keep[i] = k ? (byte)1 : (byte)0;
            b[i] = k ? a[i] * scale : 0f;
        }
    }

    /// <summary>64 elements a step: 8 hash vectors of 8 lanes narrow to 4 uint vectors, then to 64 mask bytes.</summary>
    static int Forward512(float* x, float* y, byte* keep, int i, int end, float scale, uint threshold, ulong seed)
    {
        var lanes = Vector512<ulong>.Indices * Golden; // lane offsets of z = seed + (i+1)*G
        var step = Vector512.Create(unchecked(8 * Golden));
        var step2 = step + step;
        var vt = Vector512.Create(threshold);
        var vs = Vector512.Create(scale);
        var one = Vector512<uint>.One;
        for (; i + 64 <= end; i += 64)
        {
            var z = Vector512.Create(seed + ((ulong)i + 1) * Golden) + lanes;
            var k0 = Vector512.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k1 = Vector512.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k2 = Vector512.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k3 = Vector512.Narrow(Mix(z), Mix(z + step));
            var c0 = Vector512.GreaterThanOrEqual(k0, vt);
            var c1 = Vector512.GreaterThanOrEqual(k1, vt);
            var c2 = Vector512.GreaterThanOrEqual(k2, vt);
            var c3 = Vector512.GreaterThanOrEqual(k3, vt);
            Vector512.Store((Vector512.Load(x + i) * vs) & c0.AsSingle(), y + i);
            Vector512.Store((Vector512.Load(x + i + 16) * vs) & c1.AsSingle(), y + i + 16);
            Vector512.Store((Vector512.Load(x + i + 32) * vs) & c2.AsSingle(), y + i + 32);
            Vector512.Store((Vector512.Load(x + i + 48) * vs) & c3.AsSingle(), y + i + 48);
            var bytes = Vector512.Narrow(Vector512.Narrow(c0 & one, c1 & one), Vector512.Narrow(c2 & one, c3 & one));
            Vector512.Store(bytes, keep + i);
        }
        return i;
    }

    static int Forward256(float* x, float* y, byte* keep, int i, int end, float scale, uint threshold, ulong seed)
    {
        var lanes = Vector256<ulong>.Indices * Golden;
        var step = Vector256.Create(unchecked(4 * Golden));
        var step2 = step + step;
        var vt = Vector256.Create(threshold);
        var vs = Vector256.Create(scale);
        var one = Vector256<uint>.One;
        for (; i + 32 <= end; i += 32)
        {
            var z = Vector256.Create(seed + ((ulong)i + 1) * Golden) + lanes;
            var k0 = Vector256.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k1 = Vector256.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k2 = Vector256.Narrow(Mix(z), Mix(z + step));
            z += step2;
            var k3 = Vector256.Narrow(Mix(z), Mix(z + step));
            var c0 = Vector256.GreaterThanOrEqual(k0, vt);
            var c1 = Vector256.GreaterThanOrEqual(k1, vt);
            var c2 = Vector256.GreaterThanOrEqual(k2, vt);
            var c3 = Vector256.GreaterThanOrEqual(k3, vt);
            Vector256.Store((Vector256.Load(x + i) * vs) & c0.AsSingle(), y + i);
            Vector256.Store((Vector256.Load(x + i + 8) * vs) & c1.AsSingle(), y + i + 8);
            Vector256.Store((Vector256.Load(x + i + 16) * vs) & c2.AsSingle(), y + i + 16);
            Vector256.Store((Vector256.Load(x + i + 24) * vs) & c3.AsSingle(), y + i + 24);
            var bytes = Vector256.Narrow(Vector256.Narrow(c0 & one, c1 & one), Vector256.Narrow(c2 & one, c3 & one));
            Vector256.Store(bytes, keep + i);
        }
        return i;
    }

    /// <summary>The SplitMix64 finaliser, then the top 24 bits (as Hash24).</summary>
    static Vector512<ulong> Mix(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Mix1;
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Mix2;
        z ^= Vector512.ShiftRightLogical(z, 31);
        return Vector512.ShiftRightLogical(z, 40);
    }

    static Vector256<ulong> Mix(Vector256<ulong> z)
    {
        z = (z ^ Vector256.ShiftRightLogical(z, 30)) * Mix1;
        z = (z ^ Vector256.ShiftRightLogical(z, 27)) * Mix2;
        z ^= Vector256.ShiftRightLogical(z, 31);
        return Vector256.ShiftRightLogical(z, 40);
    }

    /// <summary>dx += dy * scale where kept, 64 elements a step: the mask bytes widen to four uint vectors.</summary>
    static int Backward512(float* dy, float* dx, byte* keep, int i, int end, float scale)
    {
        var vs = Vector512.Create(scale);
        for (; i + 64 <= end; i += 64)
        {
            var (lo, hi) = Vector512.Widen(Vector512.Load(keep + i));
            var (w0, w1) = Vector512.Widen(lo);
            var (w2, w3) = Vector512.Widen(hi);
            Step(dy + i, dx + i, w0, vs);
            Step(dy + i + 16, dx + i + 16, w1, vs);
            Step(dy + i + 32, dx + i + 32, w2, vs);
            Step(dy + i + 48, dx + i + 48, w3, vs);
        }
        return i;

        static void Step(float* dy, float* dx, Vector512<uint> k, Vector512<float> vs)
        {
            var d = Vector512.Load(dx);
            var kept = ~Vector512.Equals(k, Vector512<uint>.Zero);
            Vector512.Store(Vector512.ConditionalSelect(kept.AsSingle(), Vector512.FusedMultiplyAdd(Vector512.Load(dy), vs, d), d), dx);
        }
    }

    static int Backward256(float* dy, float* dx, byte* keep, int i, int end, float scale)
    {
        var vs = Vector256.Create(scale);
        for (; i + 32 <= end; i += 32)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(keep + i));
            var (w0, w1) = Vector256.Widen(lo);
            var (w2, w3) = Vector256.Widen(hi);
            Step(dy + i, dx + i, w0, vs);
            Step(dy + i + 8, dx + i + 8, w1, vs);
            Step(dy + i + 16, dx + i + 16, w2, vs);
            Step(dy + i + 24, dx + i + 24, w3, vs);
        }
        return i;

        static void Step(float* dy, float* dx, Vector256<uint> k, Vector256<float> vs)
        {
            var d = Vector256.Load(dx);
            var kept = ~Vector256.Equals(k, Vector256<uint>.Zero);
            Vector256.Store(Vector256.ConditionalSelect(kept.AsSingle(), Vector256.FusedMultiplyAdd(Vector256.Load(dy), vs, d), d), dx);
        }
    }
}
