using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// LayerNorm over the last dimension of x [rows, cols]: y = (x - mean) * rstd * gamma (+ beta).
/// Forward saves mean and rstd (1/std) per row for the backward. Forward is three SIMD passes over a row
/// (sum, squared deviations, output) while it sits in L1; backward is two (the row's sums and the
/// parameter-gradient partials, then dx); each pass is written once over <see cref="ILanes{V}"/> for both widths. Rows go to threads in fixed blocks; the backward's dgamma/dbeta
/// are summed per block and the block sums added in block order, so they are bit-identical for any
/// thread count.
/// </summary>
public static unsafe class LayerNorm
{
    const int RowBlock = 64;
    const int ParallelThreshold = 1 << 15;

    /// <param name="beta">Empty when the layer has no bias.</param>
    public static void Forward(
        ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps = 1e-5f)
    {
        using var timing = Profiler.Time(KernelKind.LayerNorm);
        Check(x.Length, gamma.Length, beta.Length, y.Length, mean.Length, rstd.Length, rows, cols, "y");
        if (rows == 0) return;
        fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = mean, pr = rstd)
        {
            var a = new Args { X = px, Gamma = pg, Beta = beta.IsEmpty ? null : pb, Y = py, Mean = pm, Rstd = pr, Rows = rows, Cols = cols, Eps = eps };
            int blocks = (rows + RowBlock - 1) / RowBlock;
            if ((long)rows * cols < ParallelThreshold || blocks == 1 || Parallelism.ThreadCount == 1)
            {
                ForwardRows(a, 0, rows);
                return;
            }
            var job = Job.Current;
            job.A = a;
            Parallelism.For(blocks, job.Forward);
            job.A = default;
        }
    }

    /// <summary>Adds into dx, dgamma and dbeta (dbeta may be empty).</summary>
    public static void Backward(
        ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols)
    {
        using var timing = Profiler.Time(KernelKind.LayerNorm);
        Check(x.Length, gamma.Length, dbeta.Length, dx.Length, mean.Length, rstd.Length, rows, cols, "dx");
        if (dy.Length != x.Length || dgamma.Length != cols)
            throw new ArgumentException($"LayerNorm backward over [{rows}, {cols}]: dy holds {dy.Length} floats (x {x.Length}), dgamma {dgamma.Length} (cols {cols}).");
        if (rows == 0) return;
        int blocks = (rows + RowBlock - 1) / RowBlock;
        bool parallel = (long)rows * cols >= ParallelThreshold && blocks > 1 && Parallelism.ThreadCount > 1;
        // Per block: dgamma then dbeta partial sums. Serially one block's worth is reused; in parallel every
        // block has its own, and they are added in block order after the parallel pass either way.
        int partialLength = (parallel ? blocks : 1) * 2 * cols;
        float[]? rented = partialLength > 4096 ? ArrayPool<float>.Shared.Rent(partialLength) : null;
        float* stack = stackalloc float[rented is null ? partialLength : 0];
        fixed (float* pdy = dy, px = x, pg = gamma, pm = mean, pr = rstd, pdx = dx, pdg = dgamma, pdb = dbeta, prented = rented)
        {
            float* partial = rented is null ? stack : prented;
            var a = new Args { X = px, Gamma = pg, Mean = pm, Rstd = pr, Rows = rows, Cols = cols, Dy = pdy, Dx = pdx, Partial = partial };
            if (!parallel)
            {
                for (int b = 0; b < blocks; b++)
                {
                    BackwardBlock(a, b, partial);
                    AddPartial(partial, pdg, dbeta.IsEmpty ? null : pdb, cols);
                }
            }
            else
            {
                var job = Job.Current;
                job.A = a;
                Parallelism.For(blocks, job.Backward);
                job.A = default;
                for (int b = 0; b < blocks; b++) AddPartial(partial + (long)b * 2 * cols, pdg, dbeta.IsEmpty ? null : pdb, cols);
            }
        }
        if (rented is not null) ArrayPool<float>.Shared.Return(rented);
    }

    static void AddPartial(float* partial, float* dgamma, float* dbeta, int cols)
    {
        var dg = new Span<float>(dgamma, cols);
        TensorPrimitives.Add(dg, new ReadOnlySpan<float>(partial, cols), dg);
        if (dbeta == null) return;
        var db = new Span<float>(dbeta, cols);
        TensorPrimitives.Add(db, new ReadOnlySpan<float>(partial + cols, cols), db);
    }

    struct Args
    {
        public float* X, Gamma, Beta, Y, Mean, Rstd, Dy, Dx, Partial;
        public int Rows, Cols;
        public float Eps;
    }

    /// <summary>One reusable job per calling thread, so a parallel call allocates nothing once warm.</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public Args A;
        public readonly Action<int> Forward, Backward;

        Job()
        {
            Forward = b => ForwardRows(A, b * RowBlock, Math.Min(A.Rows, (b + 1) * RowBlock));
            Backward = b => BackwardBlock(A, b, A.Partial + (long)b * 2 * A.Cols);
        }
    }

    static void ForwardRows(in Args a, int r0, int r1)
    {
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) ForwardRows<Vector512<float>, Lanes512>(a, r0, r1);
        else ForwardRows<Vector256<float>, Lanes256>(a, r0, r1);
    }

    static void ForwardRows<V, L>(in Args a, int r0, int r1) where V : struct where L : struct, ILanes<V>
    {
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* x = a.X + (long)r * n, y = a.Y + (long)r * n;
            float m = Sum<V, L>(x, n) / n;
            float rs = 1f / MathF.Sqrt(SumSquaredDeviations<V, L>(x, n, m) / n + a.Eps);
            a.Mean[r] = m;
            a.Rstd[r] = rs;
            int i = Normalize<V, L>(x, a.Gamma, a.Beta, y, 0, n, m, rs);
            if (L.Count > 8) i = Normalize<Vector256<float>, Lanes256>(x, a.Gamma, a.Beta, y, i, n, m, rs);
            for (; i < n; i++) y[i] = a.Beta == null ? (x[i] - m) * rs * a.Gamma[i] : MathF.FusedMultiplyAdd((x[i] - m) * rs, a.Gamma[i], a.Beta[i]);
        }
    }

    static float Sum<V, L>(float* x, int n) where V : struct where L : struct, ILanes<V>
    {
        int i = 0, w = L.Count;
        V s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 4 * w <= n; i += 4 * w)
        {
            s0 = L.Add(s0, L.Load(x + i)); s1 = L.Add(s1, L.Load(x + i + w));
            s2 = L.Add(s2, L.Load(x + i + 2 * w)); s3 = L.Add(s3, L.Load(x + i + 3 * w));
        }
        for (; i + w <= n; i += w) s0 = L.Add(s0, L.Load(x + i));
        float s = L.LibrarySum(L.Add(L.Add(s0, s1), L.Add(s2, s3)));
        for (; i < n; i++) s += x[i];
        return s;
    }

    static float SumSquaredDeviations<V, L>(float* x, int n, float m) where V : struct where L : struct, ILanes<V>
    {
        int i = 0, w = L.Count;
        var vm = L.Splat(m);
        V s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 4 * w <= n; i += 4 * w)
        {
            var d0 = L.Sub(L.Load(x + i), vm); var d1 = L.Sub(L.Load(x + i + w), vm);
            var d2 = L.Sub(L.Load(x + i + 2 * w), vm); var d3 = L.Sub(L.Load(x + i + 3 * w), vm);
            s0 = L.Fma(d0, d0, s0); s1 = L.Fma(d1, d1, s1);
            s2 = L.Fma(d2, d2, s2); s3 = L.Fma(d3, d3, s3);
        }
        for (; i + w <= n; i += w) { var d = L.Sub(L.Load(x + i), vm); s0 = L.Fma(d, d, s0); }
        float s = L.LibrarySum(L.Add(L.Add(s0, s1), L.Add(s2, s3)));
        for (; i < n; i++) { float d = x[i] - m; s = MathF.FusedMultiplyAdd(d, d, s); }
        return s;
    }

    /// <summary>y = (x - m)·rs·gamma + beta (no beta: + 0 is skipped), whole vectors from i; returns where it stopped.</summary>
    static int Normalize<V, L>(float* x, float* g, float* b, float* y, int i, int n, float m, float rs) where V : struct where L : struct, ILanes<V>
    {
        V vm = L.Splat(m), vr = L.Splat(rs);
        if (b == null)
            for (; i + L.Count <= n; i += L.Count) L.Store(L.Mul(L.Mul(L.Sub(L.Load(x + i), vm), vr), L.Load(g + i)), y + i);
        else
            for (; i + L.Count <= n; i += L.Count) L.Store(L.Fma(L.Mul(L.Sub(L.Load(x + i), vm), vr), L.Load(g + i), L.Load(b + i)), y + i);
        return i;
    }

    /// <summary>
    /// One block of rows. Per row, pass 1 forms xhat = (x - mean)·rstd, adds dy·xhat and dy into the block's
    /// dgamma/dbeta partials and sums g·dy and g·dy·xhat; pass 2 adds rstd·(g·dy - mean(g·dy) - xhat·mean(g·dy·xhat)) into dx.
    /// At 16 lanes each pass ends with an 8-lane step before the scalar tail.
    /// </summary>
    static void BackwardBlock(in Args a, int block, float* partial)
    {
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) BackwardBlock<Vector512<float>, Lanes512>(a, block, partial);
        else BackwardBlock<Vector256<float>, Lanes256>(a, block, partial);
    }

    static void BackwardBlock<V, L>(in Args a, int block, float* partial) where V : struct where L : struct, ILanes<V>
    {
        int n = a.Cols;
        float* pg = partial, pb = partial + n;
        new Span<float>(partial, 2 * n).Clear();
        for (int r = block * RowBlock; r < Math.Min(a.Rows, (block + 1) * RowBlock); r++)
        {
            float* x = a.X + (long)r * n, dy = a.Dy + (long)r * n, dx = a.Dx + (long)r * n, g = a.Gamma;
            float m = a.Mean[r], rs = a.Rstd[r];
            float sg = 0, sgx = 0;
            int i = RowSums<V, L>(x, dy, g, pg, pb, 0, n, m, rs, ref sg, ref sgx);
            if (L.Count > 8) i = RowSums<Vector256<float>, Lanes256>(x, dy, g, pg, pb, i, n, m, rs, ref sg, ref sgx);
            for (; i < n; i++)
            {
                float xh = (x[i] - m) * rs, d = dy[i];
                pg[i] = MathF.FusedMultiplyAdd(d, xh, pg[i]);
                pb[i] += d;
                float gd = g[i] * d;
                sg += gd; sgx = MathF.FusedMultiplyAdd(gd, xh, sgx);
            }

            float mg = sg / n, mgx = sgx / n;
            i = AddDx<V, L>(x, dy, g, dx, 0, n, m, rs, mg, mgx);
            if (L.Count > 8) i = AddDx<Vector256<float>, Lanes256>(x, dy, g, dx, i, n, m, rs, mg, mgx);
            for (; i < n; i++)
            {
                float xh = (x[i] - m) * rs;
                float t = g[i] * dy[i] - MathF.FusedMultiplyAdd(xh, mgx, mg);
                dx[i] = MathF.FusedMultiplyAdd(t, rs, dx[i]);
            }
        }
    }

    /// <summary>
    /// Pass 1 over whole vectors from i: the dgamma/dbeta partials, and g·dy and g·dy·xhat summed into sg and sgx.
    /// Wider than 8 lanes it runs two accumulators; at 8 lanes one, as the Vector256 path always has (same sums, same bits).
    /// </summary>
    static int RowSums<V, L>(float* x, float* dy, float* g, float* pg, float* pb, int i, int n, float m, float rs, ref float sg, ref float sgx)
        where V : struct where L : struct, ILanes<V>
    {
        int w = L.Count;
        V vm = L.Splat(m), vr = L.Splat(rs), a0 = default, a1 = default, b0 = default, b1 = default;
        if (w > 8)
            for (; i + 2 * w <= n; i += 2 * w)
            {
                var xh0 = L.Mul(L.Sub(L.Load(x + i), vm), vr); var xh1 = L.Mul(L.Sub(L.Load(x + i + w), vm), vr);
                var d0 = L.Load(dy + i); var d1 = L.Load(dy + i + w);
                L.Store(L.Fma(d0, xh0, L.Load(pg + i)), pg + i);
                L.Store(L.Fma(d1, xh1, L.Load(pg + i + w)), pg + i + w);
                L.Store(L.Add(L.Load(pb + i), d0), pb + i);
                L.Store(L.Add(L.Load(pb + i + w), d1), pb + i + w);
                var gd0 = L.Mul(L.Load(g + i), d0); var gd1 = L.Mul(L.Load(g + i + w), d1);
                a0 = L.Add(a0, gd0); a1 = L.Add(a1, gd1);
                b0 = L.Fma(gd0, xh0, b0); b1 = L.Fma(gd1, xh1, b1);
            }
        for (; i + w <= n; i += w)
        {
            var xh = L.Mul(L.Sub(L.Load(x + i), vm), vr); var d = L.Load(dy + i);
            L.Store(L.Fma(d, xh, L.Load(pg + i)), pg + i);
            L.Store(L.Add(L.Load(pb + i), d), pb + i);
            var gd = L.Mul(L.Load(g + i), d);
            a0 = L.Add(a0, gd); b0 = L.Fma(gd, xh, b0);
        }
        // Lanes that start at +0 never become -0, so neither do these sums, and sg = 0 + sum is sum to the bit.
        sg += L.LibrarySum(w > 8 ? L.Add(a0, a1) : a0);
        sgx += L.LibrarySum(w > 8 ? L.Add(b0, b1) : b0);
        return i;
    }

    /// <summary>Pass 2 over whole vectors from i: dx += rstd·(g·dy - mean(g·dy) - xhat·mean(g·dy·xhat)).</summary>
    static int AddDx<V, L>(float* x, float* dy, float* g, float* dx, int i, int n, float m, float rs, float mg, float mgx)
        where V : struct where L : struct, ILanes<V>
    {
        V vm = L.Splat(m), vr = L.Splat(rs), vmg = L.Splat(mg), vmgx = L.Splat(mgx);
        for (; i + L.Count <= n; i += L.Count)
        {
            var xh = L.Mul(L.Sub(L.Load(x + i), vm), vr);
            var t = L.Sub(L.Mul(L.Load(g + i), L.Load(dy + i)), L.Fma(xh, vmgx, vmg));
            L.Store(L.Fma(t, vr, L.Load(dx + i)), dx + i);
        }
        return i;
    }

    static void Check(int x, int gamma, int beta, int y, int mean, int rstd, int rows, int cols, string yName)
    {
        if (rows < 0 || cols <= 0 || x != (long)rows * cols || y != x || gamma != cols || (beta != 0 && beta != cols) || mean < rows || rstd < rows)
            throw new ArgumentException($"LayerNorm over [{rows}, {cols}]: x holds {x} floats, {yName} {y}, gamma {gamma}, beta {beta}, mean {mean}, rstd {rstd}; " +
                $"x and {yName} must hold rows*cols, gamma (and beta, if any) cols, mean and rstd rows.");
    }
}
