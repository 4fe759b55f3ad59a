using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>Shape of one fused multi-head attention call. Scale is 1/sqrt(HeadDim).</summary>
/// <param name="Causal">Query i (of QueryLength) sees key j only if j &lt;= i + (KeyLength - QueryLength):
/// bottom-right aligned, so a KV-cached decode step (QueryLength 1) sees every cached key.</param>
public readonly record struct AttentionShape(int Batch, int Heads, int QueryLength, int KeyLength, int HeadDim, bool Causal)
{
    public int Width => Heads * HeadDim;
}

/// <summary>
/// Fused multi-head attention, flash-style. Layout: row (b, t) of q starts at (b*QueryLength + t)*qStride,
/// row (b, t) of k and v at (b*KeyLength + t)*kvStride; head h occupies [h*HeadDim, (h+1)*HeadDim) of a
/// row. So self-attention passes the packed [B,T,3C] QKV buffer as qkv, qkv[C..], qkv[2C..] with both
/// strides 3C. Output is [B, QueryLength, C] (stride C); logSumExp is [B, Heads, QueryLength].
/// keyLengths (optional, per batch row) masks keys j &gt;= length; a query row with no visible key outputs zeros.
/// <para>
/// Forward walks the visible keys of each query row in tiles of <see cref="KeyTile"/> with an online
/// softmax (running max, running sum, rescaled accumulator) and keeps only the log-sum-exp per row;
/// backward recomputes each tile's probabilities from it. No [T, T] matrix exists at any time.
/// Work is split over (batch, head) pairs, each done by one thread in a fixed order, so results are
/// bit-identical for any thread count.
/// </para>
/// </summary>
public static unsafe class Attention
{
    const int KeyTile = 64;

    public static void Forward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        Span<float> output, Span<float> logSumExp,
        ReadOnlySpan<int> keyLengths = default)
    {
        Check(s, q.Length, qStride, k.Length, v.Length, kvStride, output.Length, logSumExp.Length, keyLengths);
        if (s.Batch == 0 || s.Heads == 0 || s.QueryLength == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp)
        fixed (int* pn = keyLengths)
        {
            var job = new Job(s, pq, qStride, pk, pv, kvStride, pn, keyLengths.IsEmpty) { O = po, Lse = pl };
            Run(s, job, backward: false);
        }
    }

    /// <summary>Adds the gradients into dq, dk, dv (same layouts and strides as q, k, v).</summary>
    public static void Backward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv,
        ReadOnlySpan<int> keyLengths = default)
    {
        Check(s, q.Length, qStride, k.Length, v.Length, kvStride, output.Length, logSumExp.Length, keyLengths);
        if (dOutput.Length < output.Length || dq.Length < q.Length || dk.Length < k.Length || dv.Length < v.Length)
            throw new ArgumentException($"Attention backward: gradient buffers (dOutput {dOutput.Length}, dq {dq.Length}, dk {dk.Length}, dv {dv.Length}) must match output {output.Length}, q {q.Length}, k {k.Length}, v {v.Length}.");
        if (s.Batch == 0 || s.Heads == 0 || s.QueryLength == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = dOutput, pdq = dq, pdk = dk, pdv = dv)
        fixed (int* pn = keyLengths)
        {
            var job = new Job(s, pq, qStride, pk, pv, kvStride, pn, keyLengths.IsEmpty) { O = po, Lse = pl, DO = pdo, DQ = pdq, DK = pdk, DV = pdv };
            Run(s, job, backward: true);
        }
    }

    static void Run(in AttentionShape s, Job job, bool backward)
    {
        int items = s.Batch * s.Heads;
        // A decode step is tiny: threads would cost more than they save (and it allocates nothing this way).
        if (items == 1 || (long)items * s.QueryLength * s.KeyLength * s.HeadDim < 1 << 15)
        {
            for (int i = 0; i < items; i++)
                if (backward) job.Backward(i); else job.Forward(i);
            return;
        }
        var box = new JobBox(job);
        Parallelism.For(items, backward ? box.Backward : box.Forward);
    }

    sealed class JobBox(Job job)
    {
        public void Forward(int item) => job.Forward(item);
        public void Backward(int item) => job.Backward(item);
    }

    readonly struct Job(AttentionShape s, float* q, int qStride, float* k, float* v, int kvStride, int* lengths, bool noLengths)
    {
        public float* O { get; init; }
        public float* Lse { get; init; }
        public float* DO { get; init; }
        public float* DQ { get; init; }
        public float* DK { get; init; }
        public float* DV { get; init; }
        [ThreadStatic] static float[]? scratch;

        int Visible(int b, int i)
        {
            int visible = noLengths ? s.KeyLength : Math.Min(lengths[b], s.KeyLength);
            if (s.Causal) visible = Math.Min(visible, i + s.KeyLength - s.QueryLength + 1);
            return Math.Max(visible, 0);
        }

        /// <summary>Thread-local scratch: the head's K (and V) transposed to [D, Tk16], plus three key-tile rows.</summary>
        static float[] Scratch(int floats)
        {
            var buffer = scratch;
            if (buffer is null || buffer.Length < floats) scratch = buffer = new float[Math.Max(floats, 4096)];
            return buffer;
        }

        /// <summary>dst[d * stride + j] = src row j, element d: scores for 16 keys then come from D broadcast FMAs, with no horizontal sums.</summary>
        void Transpose(float* src, float* dst, int b, int h, int keys, int stride)
        {
            int D = s.HeadDim;
            for (int j = 0; j < keys; j++)
            {
                float* row = src + (long)(b * s.KeyLength + j) * kvStride + h * D;
                for (int d = 0; d < D; d++) dst[d * stride + j] = row[d];
            }
            for (int j = keys; j < stride; j++)
                for (int d = 0; d < D; d++) dst[d * stride + j] = 0;
        }

        public void Forward(int item)
        {
            // A few query rows (a decode step) do not repay transposing the whole of K: dot each key directly.
            if (s.QueryLength <= 4)
            {
                ForwardDirect(item);
                return;
            }
            int b = item / s.Heads, h = item % s.Heads, D = s.HeadDim, C = s.Width;
            float scale = 1f / MathF.Sqrt(D);
            int keys = noLengths ? s.KeyLength : Math.Min(lengths[b], s.KeyLength);
            int stride = (keys + 15) & ~15;
            fixed (float* sc = Scratch(D * stride + KeyTile + D))
            {
                float* kt = sc, tile = sc + D * stride, acc = tile + KeyTile;
                Transpose(k, kt, b, h, keys, stride);
                for (int i = 0; i < s.QueryLength; i++)
                {
                    float* qi = q + (long)(b * s.QueryLength + i) * qStride + h * D;
                    float* oi = O + (long)(b * s.QueryLength + i) * C + h * D;
                    int visible = Visible(b, i);
                    float max = float.NegativeInfinity, sum = 0;
                    new Span<float>(acc, D).Clear();
                    for (int j0 = 0; j0 < visible; j0 += KeyTile)
                    {
                        int n = Math.Min(KeyTile, visible - j0);
                        Scores(qi, kt + j0, stride, D, n, scale, tile);
                        float tileMax = Max(tile, n);
                        // Online softmax: rescale what was accumulated under the old maximum.
                        float newMax = Math.Max(max, tileMax);
                        float correction = MathF.Exp(max - newMax);
                        sum = sum * correction + ExpShifted(tile, n, newMax);
                        if (correction != 1f) Scale(acc, correction, D);
                        for (int j = 0; j < n; j++)
                            Axpy(acc, tile[j], v + (long)(b * s.KeyLength + j0 + j) * kvStride + h * D, D);
                        max = newMax;
                    }
                    Finish(b, h, i, oi, acc, max, sum, visible);
                }
            }
        }

        /// <summary>Writes a query row's output (the normalised accumulator, or zeros with no visible key) and its log-sum-exp.</summary>
        void Finish(int b, int h, int i, float* oi, float* acc, float max, float sum, int visible)
        {
            int D = s.HeadDim;
            float* lse = Lse + (long)(b * s.Heads + h) * s.QueryLength + i;
            if (visible == 0)
            {
                new Span<float>(oi, D).Clear();
                *lse = float.NegativeInfinity;
                return;
            }
            float inv = 1f / sum;
            for (int d = 0; d < D; d++) oi[d] = acc[d] * inv;
            *lse = max + MathF.Log(sum);
        }

        /// <summary>The same online softmax over key tiles, with one dot product per key (no transposed copy of K).</summary>
        void ForwardDirect(int item)
        {
            int b = item / s.Heads, h = item % s.Heads, D = s.HeadDim, C = s.Width;
            float scale = 1f / MathF.Sqrt(D);
            fixed (float* sc = Scratch(KeyTile + D))
            {
                float* tile = sc, acc = sc + KeyTile;
                for (int i = 0; i < s.QueryLength; i++)
                {
                    float* qi = q + (long)(b * s.QueryLength + i) * qStride + h * D;
                    float* oi = O + (long)(b * s.QueryLength + i) * C + h * D;
                    int visible = Visible(b, i);
                    float max = float.NegativeInfinity, sum = 0;
                    new Span<float>(acc, D).Clear();
                    for (int j0 = 0; j0 < visible; j0 += KeyTile)
                    {
                        int n = Math.Min(KeyTile, visible - j0);
                        for (int j = 0; j < n; j++)
                            tile[j] = Dot(qi, k + (long)(b * s.KeyLength + j0 + j) * kvStride + h * D, D) * scale;
                        float newMax = Math.Max(max, Max(tile, n));
                        float correction = MathF.Exp(max - newMax);
                        sum = sum * correction + ExpShifted(tile, n, newMax);
                        if (correction != 1f) Scale(acc, correction, D);
                        for (int j = 0; j < n; j++)
                            Axpy(acc, tile[j], v + (long)(b * s.KeyLength + j0 + j) * kvStride + h * D, D);
                        max = newMax;
                    }
                    Finish(b, h, i, oi, acc, max, sum, visible);
                }
            }
        }

        public void Backward(int item)
        {
            int b = item / s.Heads, h = item % s.Heads, D = s.HeadDim, C = s.Width;
            float scale = 1f / MathF.Sqrt(D);
            int keys = noLengths ? s.KeyLength : Math.Min(lengths[b], s.KeyLength);
            int stride = (keys + 15) & ~15;
            fixed (float* sc = Scratch(2 * D * stride + 2 * KeyTile))
            {
                float* kt = sc, vt = sc + D * stride, p = vt + D * stride, dp = p + KeyTile;
                Transpose(k, kt, b, h, keys, stride);
                Transpose(v, vt, b, h, keys, stride);
                for (int i = 0; i < s.QueryLength; i++)
                {
                    int visible = Visible(b, i);
                    if (visible == 0) continue;
                    long qRow = (long)(b * s.QueryLength + i);
                    float* qi = q + qRow * qStride + h * D, dqi = DQ + qRow * qStride + h * D;
                    float* oi = O + qRow * C + h * D, doi = DO + qRow * C + h * D;
                    float lse = Lse[(long)(b * s.Heads + h) * s.QueryLength + i];
                    float di = Dot(doi, oi, D);
                    for (int j0 = 0; j0 < visible; j0 += KeyTile)
                    {
                        int n = Math.Min(KeyTile, visible - j0);
                        Scores(qi, kt + j0, stride, D, n, scale, p);
                        ExpShifted(p, n, lse);                    // p = exp(s - lse), recomputed from the saved log-sum-exp
                        Scores(doi, vt + j0, stride, D, n, 1f, dp); // dp = dO · v
                        for (int j = 0; j < n; j++)
                        {
                            long kRow = (long)(b * s.KeyLength + j0 + j) * kvStride + h * D;
                            float ds = p[j] * (dp[j] - di) * scale;
                            Axpy(DV + kRow, p[j], doi, D);
                            Axpy(dqi, ds, k + kRow, D);
                            Axpy(DK + kRow, ds, qi, D);
                        }
                    }
                }
            }
        }
    }

    /// <summary>out[j] = scale · Σ_d x[d]·t[d·stride + j] for j &lt; n (t: a transposed key tile, padded to 16).</summary>
    static void Scores(float* x, float* t, int stride, int D, int n, float scale, float* output)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated && Simd.Use512)
        {
            for (; j < n; j += 16)
            {
                var acc = Vector512<float>.Zero;
                for (int d = 0; d < D; d++) acc = Vector512.FusedMultiplyAdd(Vector512.Create(x[d]), Vector512.Load(t + (long)d * stride + j), acc);
                (acc * scale).Store(output + j);
            }
            return;
        }
        for (; j < n; j += 8)
        {
            var acc = Vector256<float>.Zero;
            for (int d = 0; d < D; d++) acc = Vector256.FusedMultiplyAdd(Vector256.Create(x[d]), Vector256.Load(t + (long)d * stride + j), acc);
            (acc * scale).Store(output + j);
        }
    }

    static float Max(float* x, int n)
    {
        float m = float.NegativeInfinity;
        for (int j = 0; j < n; j++) if (x[j] > m) m = x[j];
        return m;
    }

    /// <summary>x[j] = exp(x[j] - shift) for j &lt; n; returns their sum.</summary>
    static float ExpShifted(float* x, int n, float shift)
    {
        var span = new Span<float>(x, n);
        System.Numerics.Tensors.TensorPrimitives.Subtract(span, shift, span);
        System.Numerics.Tensors.TensorPrimitives.Exp(span, span);
        return System.Numerics.Tensors.TensorPrimitives.Sum(span);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float result;
        if (Vector512.IsHardwareAccelerated && Simd.Use512 && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            result = Vector512.Sum(acc);
        }
        else
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            result = Vector256.Sum(acc);
        }
        for (; i < n; i++) result += a[i] * b[i];
        return result;
    }

    /// <summary>y += alpha * x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy(float* y, float alpha, float* x, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Simd.Use512)
        {
            var a = Vector512.Create(alpha);
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.FusedMultiplyAdd(a, Vector512.Load(x + i), Vector512.Load(y + i)), y + i);
        }
        var a8 = Vector256.Create(alpha);
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.FusedMultiplyAdd(a8, Vector256.Load(x + i), Vector256.Load(y + i)), y + i);
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    static void Scale(float* y, float alpha, int n)
    {
        for (int i = 0; i < n; i++) y[i] *= alpha;
    }

    static void Check(in AttentionShape s, int qLength, int qStride, int kLength, int vLength, int kvStride, int outLength, int lseLength, ReadOnlySpan<int> keyLengths)
    {
        var copy = s;
        string Shape() => $"[B={copy.Batch}, H={copy.Heads}, Tq={copy.QueryLength}, Tk={copy.KeyLength}, D={copy.HeadDim}]"; // built only when throwing
        if (s.Batch < 0 || s.Heads < 0 || s.QueryLength < 0 || s.KeyLength < 0 || s.HeadDim <= 0)
            throw new ArgumentException($"Attention shape {Shape()} must have non-negative sizes and a positive head size.");
        int C = s.Width;
        if (qStride < C || kvStride < C)
            throw new ArgumentException($"Attention {Shape()}: row strides (q {qStride}, kv {kvStride}) must be at least heads x head size = {C}.");
        long qNeed = s.Batch * s.QueryLength == 0 ? 0 : (long)(s.Batch * s.QueryLength - 1) * qStride + C;
        long kvNeed = s.Batch * s.KeyLength == 0 ? 0 : (long)(s.Batch * s.KeyLength - 1) * kvStride + C;
        if (qLength < qNeed) throw new ArgumentException($"Attention {Shape()}: q holds {qLength} floats, needs {qNeed} with stride {qStride}.");
        if (kLength < kvNeed || vLength < kvNeed) throw new ArgumentException($"Attention {Shape()}: k holds {kLength} and v {vLength} floats, each needs {kvNeed} with stride {kvStride}.");
        if (outLength < (long)s.Batch * s.QueryLength * C) throw new ArgumentException($"Attention {Shape()}: output holds {outLength} floats, needs {(long)s.Batch * s.QueryLength * C}.");
        if (lseLength < (long)s.Batch * s.Heads * s.QueryLength) throw new ArgumentException($"Attention {Shape()}: logSumExp holds {lseLength} floats, needs {(long)s.Batch * s.Heads * s.QueryLength}.");
        if (!keyLengths.IsEmpty)
        {
            if (keyLengths.Length != s.Batch) throw new ArgumentException($"Attention {Shape()}: {keyLengths.Length} key lengths given for a batch of {s.Batch}.");
            foreach (var length in keyLengths)
                if ((uint)length > (uint)s.KeyLength) throw new ArgumentException($"Attention {Shape()}: key length {length} is outside [0, {s.KeyLength}].");
        }
    }

    internal static int Visible(in AttentionShape s, ReadOnlySpan<int> keyLengths, int b, int i)
    {
        int visible = keyLengths.IsEmpty ? s.KeyLength : Math.Min(keyLengths[b], s.KeyLength);
        if (s.Causal) visible = Math.Min(visible, i + s.KeyLength - s.QueryLength + 1);
        return Math.Max(visible, 0);
    }
}
