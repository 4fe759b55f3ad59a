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
/// Per (batch, head), attention is done as small matrix products by one register-blocked tile (4 rows x
/// 2 vectors) on zero-padded copies of the head's q, k and v: forward takes 4 query rows at a time
/// (S = Q·Kᵀ over the keys they see, softmax, O = P·V) and keeps only the log-sum-exp per row; backward
/// recomputes P from it for blocks of query rows. A decode step (at most 4 query rows) instead walks the
/// cached keys in tiles with an online softmax, dotting each key directly; each tile of a stream's cached rows
/// serves a group of heads in turn, so the cache streams past once rather than once per head. No [T, T] matrix
/// is kept. Work is split over (batch, head) pairs (decode: batch row, head group), each head done by one thread
/// in a fixed order, so results are bit-identical for any thread count.
/// </para>
/// </summary>
public static unsafe class Attention
{
    const int KeyTile = 64;     // keys per online-softmax step in the decode path
    const int QueryBlock = 64;  // query rows per block in backward: dK and dV tiles sum over this many rows

    public static void Forward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        Span<float> output, Span<float> logSumExp,
        ReadOnlySpan<int> keyLengths = default, float dropout = 0f, ulong seed = 0)
    {
        using var timing = Profiler.Time(KernelKind.Attention);
        Check(s, q.Length, qStride, k.Length, v.Length, kvStride, output.Length, logSumExp.Length, keyLengths);
        if (s.Batch == 0 || s.Heads == 0 || s.QueryLength == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp)
        fixed (int* pn = keyLengths)
        {
            // A decode step (a few query rows) walks each stream's cached rows once for a group of heads, rather than
            // once per head. Streams are split into head groups only to give every thread work.
            bool direct = s.QueryLength <= 4 && dropout == 0;
            int groups = direct ? Math.Clamp((Parallelism.ThreadCount + s.Batch - 1) / s.Batch, 1, s.Heads) : s.Heads;
            var job = new Job(s, pq, qStride, pk, pv, kvStride, pn, keyLengths.IsEmpty) { O = po, Lse = pl, DropoutP = dropout, Seed = seed, Direct = direct, Groups = groups };
            Run(s, job, s.Batch * groups, backward: false);
        }
    }

    /// <summary>Adds the gradients into dq, dk, dv (same layouts and strides as q, k, v).</summary>
    public static void Backward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv,
        ReadOnlySpan<int> keyLengths = default, float dropout = 0f, ulong seed = 0)
    {
        using var timing = Profiler.Time(KernelKind.Attention);
        Check(s, q.Length, qStride, k.Length, v.Length, kvStride, output.Length, logSumExp.Length, keyLengths);
        if (dOutput.Length < output.Length || dq.Length < q.Length || dk.Length < k.Length || dv.Length < v.Length)
            throw new ArgumentException($"Attention backward: gradient buffers (dOutput {dOutput.Length}, dq {dq.Length}, dk {dk.Length}, dv {dv.Length}) must match output {output.Length}, q {q.Length}, k {k.Length}, v {v.Length}.");
        if (s.Batch == 0 || s.Heads == 0 || s.QueryLength == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = dOutput, pdq = dq, pdk = dk, pdv = dv)
        fixed (int* pn = keyLengths)
        {
            var job = new Job(s, pq, qStride, pk, pv, kvStride, pn, keyLengths.IsEmpty) { O = po, Lse = pl, DO = pdo, DQ = pdq, DK = pdk, DV = pdv, DropoutP = dropout, Seed = seed };
            Run(s, job, s.Batch * s.Heads, backward: true);
        }
    }

    static void Run(in AttentionShape s, Job job, int items, bool backward)
    {
        // A decode step is tiny: threads would cost more than they save (and it allocates nothing this way).
        if (items == 1 || (long)s.Batch * s.Heads * s.QueryLength * s.KeyLength * s.HeadDim < 1 << 15)
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
        /// <summary>Dropout on the attention probabilities (nanoGPT's attn_dropout); the mask of a query row is a function of (seed, row).</summary>
        public float DropoutP { get; init; }
        public ulong Seed { get; init; }
        /// <summary>The decode path (<see cref="ForwardDirect"/>), whose items are (batch row, group of heads).</summary>
        public bool Direct { get; init; }
        /// <summary>Head groups per batch row in the decode path.</summary>
        public int Groups { get; init; }
        [ThreadStatic] static float[]? scratch;

        int Visible(int b, int i)
        {
            int visible = Keys(b);
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
        void Transpose(float* src, float* dst, int b, int h, int keys, int stride) =>
            MatrixBlocks.PackRowsAsPanel(src + (long)b * s.KeyLength * kvStride + h * s.HeadDim, kvStride, keys, s.HeadDim, dst, stride);

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

        /// <summary>
        /// The same online softmax over key tiles, with dot products straight from the rows of K (no transposed
        /// copy): four keys at a time, so four independent FMA chains run instead of one, and the weighted sum of
        /// V adds four rows per pass over the accumulator. Each group of four cached rows serves every head of
        /// the item's group before the next, so the rows stream past in order, once; each head's sums are
        /// those it would have alone (the same calls, in the same order per head).
        /// </summary>
        void ForwardDirect<V, L>(int item) where V : struct where L : struct, ILanes<V>
        {
            int b = item / Groups, g = item % Groups, D = s.HeadDim, C = s.Width;
            int h0 = g * s.Heads / Groups, heads = (g + 1) * s.Heads / Groups - h0;
            float scale = 1f / MathF.Sqrt(D);
            fixed (float* sc = Scratch((KeyTile + 2 * D + 2) * heads))
            {
                float* tiles = sc, acc = sc + heads * KeyTile, qs = acc + heads * D, maxes = qs + heads * D, sums = maxes + heads;
                for (int i = 0; i < s.QueryLength; i++)
                {
                    float* qi = q + (long)(b * s.QueryLength + i) * qStride + h0 * D;
                    float* oi = O + (long)(b * s.QueryLength + i) * C + h0 * D;
                    for (int d = 0; d < heads * D; d++) qs[d] = qi[d] * scale;
                    new Span<float>(acc, heads * D).Clear();
                    new Span<float>(maxes, heads).Fill(float.NegativeInfinity);
                    new Span<float>(sums, heads).Clear();
                    int visible = Visible(b, i);
                    for (int j0 = 0; j0 < visible; j0 += KeyTile)
                    {
                        int n = Math.Min(KeyTile, visible - j0), cols = RoundUp(n, L.Count), j;
                        float* kj = k + (long)(b * s.KeyLength + j0) * kvStride + h0 * D, vj = v + (kj - k);
                        // Scores: four rows of K at a time, every head of the group from them (the rows stream past in order).
                        new Span<float>(tiles, heads * KeyTile).Clear();
                        for (j = 0; j + 4 <= n; j += 4)
                            for (int h = 0; h < heads; h++) Dots.Four<V, L>(qs + h * D, kj + j * kvStride + h * D, kvStride, D, tiles + h * KeyTile + j);
                        for (; j < n; j++)
                            for (int h = 0; h < heads; h++) tiles[h * KeyTile + j] = Dots.One<V, L>(qs + h * D, kj + j * kvStride + h * D, D);
                        // Each head's online-softmax step; a tile's scores become its weights.
                        for (int h = 0; h < heads; h++)
                        {
                            float* tile = tiles + h * KeyTile;
                            for (j = n; j < cols; j++) tile[j] = float.NegativeInfinity; // exp gives 0 there
                            float newMax = Math.Max(maxes[h], RowMax<V, L>(tile, cols));
                            float correction = MathF.Exp(maxes[h] - newMax);
                            sums[h] = sums[h] * correction + ExpSum<V, L>(tile, cols, newMax);
                            if (correction != 1f) Scale(acc + h * D, correction, D);
                            maxes[h] = newMax;
                        }
                        // Weighted sum of V: four rows at a time, every head from them.
                        for (j = 0; j + 4 <= n; j += 4)
                            for (int h = 0; h < heads; h++) Axpy4<V, L>(acc + h * D, tiles + h * KeyTile + j, vj + j * kvStride + h * D, kvStride, D);
                        for (; j < n; j++)
                            for (int h = 0; h < heads; h++) Axpy1<V, L>(acc + h * D, tiles[h * KeyTile + j], vj + j * kvStride + h * D, D);
                    }
                    for (int h = 0; h < heads; h++) Finish(b, h0 + h, i, oi + h * D, acc + h * D, maxes[h], sums[h], visible);
                }
            }
        }

        public void Forward(int item)
        {
            // A few query rows (a decode step) do not repay copying the whole of K: dot each key directly.
            if (Direct && Simd.Use512) ForwardDirect<Vector512<float>, Lanes512>(item);
            else if (Direct) ForwardDirect<Vector256<float>, Lanes256>(item);
            else if (Simd.Use512) ForwardTiled<Vector512<float>, Lanes512>(item);
            else ForwardTiled<Vector256<float>, Lanes256>(item);
        }

        public void Backward(int item)
        {
            if (Simd.Use512) BackwardTiled<Vector512<float>, Lanes512>(item);
            else BackwardTiled<Vector256<float>, Lanes256>(item);
        }

        int Keys(int b) => noLengths ? s.KeyLength : Math.Min(lengths[b], s.KeyLength);

        /// <summary>
        /// Inverted dropout on the first n entries of a score row, with the mask of query row (b, h, i): forward
        /// drops P; backward drops dP with the same mask, and then P again for dV (the mask is a function of the row).
        /// </summary>
        void DropRow(float* row, int n, int b, int h, int i) =>
            Dropout.Row(row, n, DropoutP, Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(((long)b * s.Heads + h) * s.QueryLength + i + 1)));

        /// <summary>
        /// One block of query rows at a time (4: what one tile covers): S = Q·Kᵀ over the keys the rows see,
        /// rows turned into exp(scale·S − max) with zeros past each row's last visible key, O = P·V, normalised.
        /// </summary>
        void ForwardTiled<V, L>(int item) where V : struct where L : struct, ILanes<V>
        {
            int b = item / s.Heads, h = item % s.Heads, D = s.HeadDim, C = s.Width, w2 = 2 * L.Count;
            float scale = 1f / MathF.Sqrt(D);
            int keys = Keys(b), kp = RoundUp(Math.Max(keys, 1), w2), dp = RoundUp(D, w2);
            fixed (float* sc = Scratch(D * kp + kp * dp + 4 * (D + kp + dp + 1)))
            {
                float* kt = sc, vr = kt + D * kp, qr = vr + kp * dp, p = qr + 4 * D, o = p + 4 * kp, sums = o + 4 * dp;
                Transpose(k, kt, b, h, keys, kp);
                ScaleRows<V, L>(vr, dp, kp, v + (long)b * s.KeyLength * kvStride + h * D, kvStride, keys, D, 1f);
                for (int i0 = 0; i0 < s.QueryLength; i0 += 4)
                {
                    int rows = Math.Min(4, s.QueryLength - i0);
                    int seen = Visible(b, i0 + rows - 1), cols = RoundUp(seen, w2);
                    // Q is scaled as it is copied, so S = (scale·Q)·Kᵀ comes out of the tile ready for the softmax.
                    ScaleRows<V, L>(qr, D, 4, q + (long)(b * s.QueryLength + i0) * qStride + h * D, qStride, rows, D, scale);
                    for (int c0 = 0; c0 < cols; c0 += w2)
                        Tile<V, L>(qr, D, 1, kt + c0, kp, D, p + c0, kp, accumulate: false);
                    for (int r = 0; r < 4; r++)
                    {
                        int visible = r < rows ? Visible(b, i0 + r) : 0;
                        float* row = p + r * kp;
                        sums[r] = 0;
                        if (visible == 0)
                        {
                            new Span<float>(row, cols).Clear();
                            if (r < rows) Lse[(long)(b * s.Heads + h) * s.QueryLength + i0 + r] = float.NegativeInfinity;
                            continue;
                        }
                        sums[r] = ExpRow<V, L>(row, visible, cols, out float max);
                        Lse[(long)(b * s.Heads + h) * s.QueryLength + i0 + r] = max + MathF.Log(sums[r]);
                        if (DropoutP > 0) DropRow(row, visible, b, h, i0 + r); // O = dropout(P)·V; the sum stays the undropped one
                    }
                    for (int d0 = 0; d0 < dp; d0 += w2)
                        Tile<V, L>(p, kp, 1, vr + d0, dp, seen, o + d0, dp, accumulate: false);
                    for (int r = 0; r < rows; r++)
                        ScaleRows<V, L>(O + (long)(b * s.QueryLength + i0 + r) * C + h * D, D, 1, o + r * dp, dp, 1, D, sums[r] == 0 ? 0f : 1f / sums[r]);
                }
            }
        }

        /// <summary>
        /// Blocks of up to <see cref="QueryBlock"/> query rows: P recomputed from the saved log-sum-exp,
        /// dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O))·scale, dQ = dS·K per 4 rows; then dK += dSᵀ·Q and
        /// dV += Pᵀ·dO over the block's rows (into scratch, added to the caller's buffers at the end).
        /// </summary>
        void BackwardTiled<V, L>(int item) where V : struct where L : struct, ILanes<V>
        {
            int b = item / s.Heads, h = item % s.Heads, D = s.HeadDim, C = s.Width, w2 = 2 * L.Count;
            float scale = 1f / MathF.Sqrt(D);
            int keys = Keys(b), kp = RoundUp(Math.Max(keys, 1), w2), dp = RoundUp(D, w2);
            int qb = Math.Min(QueryBlock, RoundUp(s.QueryLength, 4)), offset = s.KeyLength - s.QueryLength;
            fixed (float* sc = Scratch(2 * D * kp + 3 * kp * dp + 2 * qb * dp + 2 * qb * kp + 4 * dp))
            {
                float* kt = sc, vt = kt + D * kp, kr = vt + D * kp, dk = kr + kp * dp, dv = dk + kp * dp;
                float* qr = dv + kp * dp, dor = qr + qb * dp, p = dor + qb * dp, ds = p + qb * kp, dq = ds + qb * kp;
                Transpose(k, kt, b, h, keys, kp);
                Transpose(v, vt, b, h, keys, kp);
                // The softmax scale is folded into the copies of Q (S = (scale·Q)·Kᵀ, dK = dSᵀ·(scale·Q)) and of
                // K rows (dQ = dS·(scale·K)), so dS below is P∘(dP − D) without it.
                ScaleRows<V, L>(kr, dp, kp, k + (long)b * s.KeyLength * kvStride + h * D, kvStride, keys, D, scale);
                new Span<float>(dk, 2 * kp * dp).Clear();
                for (int i0 = 0; i0 < s.QueryLength; i0 += qb)
                {
                    int rows = Math.Min(qb, s.QueryLength - i0), rows4 = RoundUp(rows, 4);
                    int blockSeen = Visible(b, i0 + rows - 1), blockCols = RoundUp(blockSeen, w2);
                    if (blockSeen == 0) continue;
                    ScaleRows<V, L>(qr, dp, rows4, q + (long)(b * s.QueryLength + i0) * qStride + h * D, qStride, rows, D, scale);
                    ScaleRows<V, L>(dor, dp, rows4, DO + (long)(b * s.QueryLength + i0) * C + h * D, C, rows, D, 1f);
                    for (int r0 = 0; r0 < rows4; r0 += 4)
                    {
                        int seen = Visible(b, i0 + Math.Min(r0 + 3, rows - 1)), cols = RoundUp(seen, w2);
                        for (int c0 = 0; c0 < cols; c0 += w2)
                        {
                            Tile<V, L>(qr + r0 * dp, dp, 1, kt + c0, kp, D, p + r0 * kp + c0, kp, accumulate: false);
                            Tile<V, L>(dor + r0 * dp, dp, 1, vt + c0, kp, D, ds + r0 * kp + c0, kp, accumulate: false);
                        }
                        for (int r = r0; r < r0 + 4; r++)
                        {
                            int visible = r < rows ? Visible(b, i0 + r) : 0;
                            float* pr = p + r * kp, dsr = ds + r * kp;
                            // Past the tiles of these 4 rows, the block's dK and dV products read zeros.
                            new Span<float>(pr + cols, blockCols - cols).Clear();
                            new Span<float>(dsr + cols, blockCols - cols).Clear();
                            if (visible == 0)
                            {
                                new Span<float>(pr, cols).Clear();
                                new Span<float>(dsr, cols).Clear();
                                continue;
                            }
                            long row = (long)(b * s.QueryLength + i0 + r) * C + h * D;
                            float lse = Lse[(long)(b * s.Heads + h) * s.QueryLength + i0 + r];
                            float di = Dots.One<V, L>(DO + row, O + row, D);
                            if (DropoutP > 0) DropRow(dsr, visible, b, h, i0 + r);             // dP = (dO·Vᵀ)∘mask/(1−p)
                            SoftmaxGradRow<V, L>(pr, dsr, visible, cols, lse, di);            // p = exp(s − lse), ds = p∘(dp − D_i)
                            if (DropoutP > 0) DropRow(pr, visible, b, h, i0 + r);             // dV takes dropout(P): the row's mask again
                        }
                        for (int d0 = 0; d0 < dp; d0 += w2)
                            Tile<V, L>(ds + r0 * kp, kp, 1, kr + d0, dp, seen, dq + d0, dp, accumulate: false);
                        for (int r = r0; r < Math.Min(r0 + 4, rows); r++)
                            AddInto<V, L>(DQ + (long)(b * s.QueryLength + i0 + r) * qStride + h * D, dq + (r - r0) * dp, D);
                    }
                    // Key j is seen by the block's rows from j − offset on (causal), or by all of them.
                    for (int j0 = 0; j0 < blockSeen; j0 += 4)
                    {
                        int first = s.Causal ? Math.Clamp(j0 - offset - i0, 0, rows) : 0, n = rows - first;
                        if (n == 0) continue;
                        for (int d0 = 0; d0 < dp; d0 += w2)
                        {
                            Tile<V, L>(ds + first * kp + j0, 1, kp, qr + first * dp + d0, dp, n, dk + j0 * dp + d0, dp, accumulate: true);
                            Tile<V, L>(p + first * kp + j0, 1, kp, dor + first * dp + d0, dp, n, dv + j0 * dp + d0, dp, accumulate: true);
                        }
                    }
                }
                for (int j = 0; j < keys; j++)
                {
                    long row = (long)(b * s.KeyLength + j) * kvStride + h * D;
                    AddInto<V, L>(DK + row, dk + j * dp, D);
                    AddInto<V, L>(DV + row, dv + j * dp, D);
                }
            }
        }
    }

    static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    /// <summary>
    /// C[r, 0..2W) (+)= Σ_{p &lt; n} A(r, p)·B[p·ldb + 0..2W) for the 4 rows r, with A(r, p) = a[r·ars + p·acs]:
    /// 8 accumulators in registers, one broadcast per row and two vector loads of B per p.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<V, L>(float* a, long ars, long acs, float* b, long ldb, int n, float* c, long ldc, bool accumulate)
        where V : struct where L : struct, ILanes<V>
    {
        V c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        float* a0 = a, a1 = a + ars, a2 = a + 2 * ars, a3 = a + 3 * ars;
        int w = L.Count;
        for (int p = 0; p < n; p++)
        {
            V b0 = L.Load(b), b1 = L.Load(b + w);
            b += ldb;
            long o = p * acs;
            V x = L.Splat(a0[o]); c00 = L.Fma(x, b0, c00); c01 = L.Fma(x, b1, c01);
            x = L.Splat(a1[o]); c10 = L.Fma(x, b0, c10); c11 = L.Fma(x, b1, c11);
            x = L.Splat(a2[o]); c20 = L.Fma(x, b0, c20); c21 = L.Fma(x, b1, c21);
            x = L.Splat(a3[o]); c30 = L.Fma(x, b0, c30); c31 = L.Fma(x, b1, c31);
        }
        if (accumulate)
        {
            c00 = L.Add(c00, L.Load(c)); c01 = L.Add(c01, L.Load(c + w));
            c10 = L.Add(c10, L.Load(c + ldc)); c11 = L.Add(c11, L.Load(c + ldc + w));
            c20 = L.Add(c20, L.Load(c + 2 * ldc)); c21 = L.Add(c21, L.Load(c + 2 * ldc + w));
            c30 = L.Add(c30, L.Load(c + 3 * ldc)); c31 = L.Add(c31, L.Load(c + 3 * ldc + w));
        }
        L.Store(c00, c); L.Store(c01, c + w);
        L.Store(c10, c + ldc); L.Store(c11, c + ldc + w);
        L.Store(c20, c + 2 * ldc); L.Store(c21, c + 2 * ldc + w);
        L.Store(c30, c + 3 * ldc); L.Store(c31, c + 3 * ldc + w);
    }

    /// <summary>
    /// dst[r·ld + c] = scale·src[r·srcStride + c] for r &lt; rows, c &lt; D; zeros in the rest of rows [0, rowsTo)
    /// × [0, ld). The per-head copies of Q, K, V and dO (padded rows the tiles read whole), and O's normalisation.
    /// </summary>
    static void ScaleRows<V, L>(float* dst, int ld, int rowsTo, float* src, long srcStride, int rows, int D, float scale)
        where V : struct where L : struct, ILanes<V>
    {
        V sv = L.Splat(scale), zero = default;
        int w = L.Count;
        for (int r = 0; r < rows; r++)
        {
            float* x = src + r * srcStride, y = dst + (long)r * ld;
            int c = 0;
            for (; c + w <= D; c += w) L.Store(L.Mul(L.Load(x + c), sv), y + c);
            for (; c < D; c++) y[c] = x[c] * scale;
            for (; c + w <= ld && c % w == 0; c += w) L.Store(zero, y + c); // the padding past a head of 16 (Vector512 tiles are 32 wide)
            for (; c < ld; c++) y[c] = 0;
        }
        new Span<float>(dst + (long)rows * ld, (rowsTo - rows) * ld).Clear();
    }

    /// <summary>
    /// A forward softmax row in place: row[j] = exp(row[j] − max) for j &lt; visible (max over them), 0 up to cols
    /// (a multiple of the vector width); returns the sum. One pass for the max, one for exp and sum.
    /// </summary>
    static float ExpRow<V, L>(float* row, int visible, int cols, out float max) where V : struct where L : struct, ILanes<V>
    {
        for (int j = visible; j < cols; j++) row[j] = float.NegativeInfinity; // exp gives 0 there
        max = RowMax<V, L>(row, cols);
        return ExpSum<V, L>(row, cols, max);
    }

    /// <summary>The largest of row[0..cols), cols a multiple of the vector width.</summary>
    static float RowMax<V, L>(float* row, int cols) where V : struct where L : struct, ILanes<V>
    {
        V m = L.Splat(float.NegativeInfinity);
        for (int j = 0; j < cols; j += L.Count) m = L.Max(m, L.Load(row + j));
        return L.MaxAcross(m);
    }

    /// <summary>row[j] = exp(row[j] − shift) for j &lt; cols (a multiple of the vector width); returns their sum.</summary>
    static float ExpSum<V, L>(float* row, int cols, float shift) where V : struct where L : struct, ILanes<V>
    {
        V sv = L.Splat(shift), sum = default;
        for (int j = 0; j < cols; j += L.Count)
        {
            V e = L.Exp(L.Sub(L.Load(row + j), sv));
            L.Store(e, row + j);
            sum = L.Add(sum, e);
        }
        return L.Sum(sum);
    }

    /// <summary>
    /// A backward softmax row: p[j] = exp(s[j] − lse) and ds[j] = p[j]·(ds[j] − di) for j &lt; visible; both 0 up
    /// to cols (a multiple of the vector width). dp past the visible keys is finite (a tile of dO·Vᵀ), so p = 0 zeroes it.
    /// </summary>
    static void SoftmaxGradRow<V, L>(float* p, float* ds, int visible, int cols, float lse, float di) where V : struct where L : struct, ILanes<V>
    {
        for (int j = visible; j < cols; j++) p[j] = float.NegativeInfinity;
        int w = L.Count;
        V shift = L.Splat(lse), d = L.Splat(di);
        for (int j = 0; j < cols; j += w)
        {
            V e = L.Exp(L.Sub(L.Load(p + j), shift));
            L.Store(e, p + j);
            L.Store(L.Mul(e, L.Sub(L.Load(ds + j), d)), ds + j);
        }
    }

    /// <summary>y += x over a head's D floats (TensorPrimitives.Add's checks and dispatch cost more than the adds at D = 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddInto<V, L>(float* y, float* x, int n) where V : struct where L : struct, ILanes<V>
    {
        int i = 0, w = L.Count;
        for (; i + w <= n; i += w) L.Store(L.Add(L.Load(y + i), L.Load(x + i)), y + i);
        for (; i < n; i++) y[i] += x[i];
    }

    /// <summary>y += alpha·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy1<V, L>(float* y, float alpha, float* x, int n) where V : struct where L : struct, ILanes<V>
    {
        V a = L.Splat(alpha);
        int i = 0, w = L.Count;
        for (; i + w <= n; i += w) L.Store(L.Fma(a, L.Load(x + i), L.Load(y + i)), y + i);
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    /// <summary>y += p[0]·x_0 + p[1]·x_1 + p[2]·x_2 + p[3]·x_3 for rows stride floats apart: one load and store of y per four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy4<V, L>(float* y, float* p, float* x, long stride, int n) where V : struct where L : struct, ILanes<V>
    {
        float* x1 = x + stride, x2 = x1 + stride, x3 = x2 + stride;
        V a0 = L.Splat(p[0]), a1 = L.Splat(p[1]), a2 = L.Splat(p[2]), a3 = L.Splat(p[3]);
        int i = 0, w = L.Count;
        for (; i + w <= n; i += w)
        {
            V acc = L.Fma(a0, L.Load(x + i), L.Load(y + i));
            acc = L.Fma(a1, L.Load(x1 + i), acc);
            acc = L.Fma(a2, L.Load(x2 + i), acc);
            L.Store(L.Fma(a3, L.Load(x3 + i), acc), y + i);
        }
        for (; i < n; i++) y[i] += p[0] * x[i] + p[1] * x1[i] + p[2] * x2[i] + p[3] * x3[i];
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
