using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// LayerNorm over the last dimension of x [rows, cols]: y = (x - mean) * rstd * gamma (+ beta).
/// Forward saves mean and rstd (1/std) per row for the backward. Forward is three SIMD passes over a row
/// (sum, squared deviations, output) while it sits in L1; backward is two (the row's sums and the
/// parameter-gradient partials, then dx). Rows go to threads in fixed blocks; the backward's dgamma/dbeta
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
        bool use512 = Simd.Use512 && Vector512.IsHardwareAccelerated;
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* x = a.X + (long)r * n, y = a.Y + (long)r * n;
            float m = Sum(x, n, use512) / n;
            float rs = 1f / MathF.Sqrt(SumSquaredDeviations(x, n, m, use512) / n + a.Eps);
            a.Mean[r] = m;
            a.Rstd[r] = rs;
            Normalize(x, a.Gamma, a.Beta, y, n, m, rs, use512);
        }
    }

    static float Sum(float* x, int n, bool use512)
    {
        int i = 0;
        float s = 0;
        if (use512)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 64 <= n; i += 64)
            {
                s0 += Vector512.Load(x + i); s1 += Vector512.Load(x + i + 16);
                s2 += Vector512.Load(x + i + 32); s3 += Vector512.Load(x + i + 48);
            }
            for (; i + 16 <= n; i += 16) s0 += Vector512.Load(x + i);
            s = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 32 <= n; i += 32)
            {
                s0 += Vector256.Load(x + i); s1 += Vector256.Load(x + i + 8);
                s2 += Vector256.Load(x + i + 16); s3 += Vector256.Load(x + i + 24);
            }
            for (; i + 8 <= n; i += 8) s0 += Vector256.Load(x + i);
            s = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    static float SumSquaredDeviations(float* x, int n, float m, bool use512)
    {
        int i = 0;
        float s = 0;
        if (use512)
        {
            var vm = Vector512.Create(m);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 64 <= n; i += 64)
            {
                var d0 = Vector512.Load(x + i) - vm; var d1 = Vector512.Load(x + i + 16) - vm;
                var d2 = Vector512.Load(x + i + 32) - vm; var d3 = Vector512.Load(x + i + 48) - vm;
                s0 = Vector512.FusedMultiplyAdd(d0, d0, s0); s1 = Vector512.FusedMultiplyAdd(d1, d1, s1);
                s2 = Vector512.FusedMultiplyAdd(d2, d2, s2); s3 = Vector512.FusedMultiplyAdd(d3, d3, s3);
            }
            for (; i + 16 <= n; i += 16) { var d = Vector512.Load(x + i) - vm; s0 = Vector512.FusedMultiplyAdd(d, d, s0); }
            s = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else
        {
            var vm = Vector256.Create(m);
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 32 <= n; i += 32)
            {
                var d0 = Vector256.Load(x + i) - vm; var d1 = Vector256.Load(x + i + 8) - vm;
                var d2 = Vector256.Load(x + i + 16) - vm; var d3 = Vector256.Load(x + i + 24) - vm;
                s0 = Vector256.FusedMultiplyAdd(d0, d0, s0); s1 = Vector256.FusedMultiplyAdd(d1, d1, s1);
                s2 = Vector256.FusedMultiplyAdd(d2, d2, s2); s3 = Vector256.FusedMultiplyAdd(d3, d3, s3);
            }
            for (; i + 8 <= n; i += 8) { var d = Vector256.Load(x + i) - vm; s0 = Vector256.FusedMultiplyAdd(d, d, s0); }
            s = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++) { float d = x[i] - m; s = MathF.FusedMultiplyAdd(d, d, s); }
        return s;
    }

    /// <summary>y = (x - m)·rs·gamma + beta (no beta: + 0 is skipped).</summary>
    static void Normalize(float* x, float* g, float* b, float* y, int n, float m, float rs, bool use512)
    {
        int i = 0;
        if (use512)
        {
            Vector512<float> vm = Vector512.Create(m), vr = Vector512.Create(rs);
            if (b == null)
                for (; i + 16 <= n; i += 16) Vector512.Store((Vector512.Load(x + i) - vm) * vr * Vector512.Load(g + i), y + i);
            else
                for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - vm) * vr, Vector512.Load(g + i), Vector512.Load(b + i)), y + i);
        }
        {
            Vector256<float> vm = Vector256.Create(m), vr = Vector256.Create(rs);
            if (b == null)
                for (; i + 8 <= n; i += 8) Vector256.Store((Vector256.Load(x + i) - vm) * vr * Vector256.Load(g + i), y + i);
            else
                for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.FusedMultiplyAdd((Vector256.Load(x + i) - vm) * vr, Vector256.Load(g + i), Vector256.Load(b + i)), y + i);
        }
        for (; i < n; i++) y[i] = b == null ? (x[i] - m) * rs * g[i] : MathF.FusedMultiplyAdd((x[i] - m) * rs, g[i], b[i]);
    }

    /// <summary>
    /// One block of rows. Per row, pass 1 forms xhat = (x - mean)·rstd, adds dy·xhat and dy into the block's
    /// dgamma/dbeta partials and sums g·dy and g·dy·xhat; pass 2 adds rstd·(g·dy - mean(g·dy) - xhat·mean(g·dy·xhat)) into dx.
    /// </summary>
    static void BackwardBlock(in Args a, int block, float* partial)
    {
        int n = a.Cols;
        float* pg = partial, pb = partial + n;
        new Span<float>(partial, 2 * n).Clear();
        bool use512 = Simd.Use512 && Vector512.IsHardwareAccelerated;
        for (int r = block * RowBlock; r < Math.Min(a.Rows, (block + 1) * RowBlock); r++)
        {
            float* x = a.X + (long)r * n, dy = a.Dy + (long)r * n, dx = a.Dx + (long)r * n, g = a.Gamma;
            float m = a.Mean[r], rs = a.Rstd[r];
            int i = 0;
            float sg = 0, sgx = 0;
            if (use512)
            {
                Vector512<float> vm = Vector512.Create(m), vr = Vector512.Create(rs), a0 = default, a1 = default, b0 = default, b1 = default;
                for (; i + 32 <= n; i += 32)
                {
                    var xh0 = (Vector512.Load(x + i) - vm) * vr; var xh1 = (Vector512.Load(x + i + 16) - vm) * vr;
                    var d0 = Vector512.Load(dy + i); var d1 = Vector512.Load(dy + i + 16);
                    Vector512.Store(Vector512.FusedMultiplyAdd(d0, xh0, Vector512.Load(pg + i)), pg + i);
                    Vector512.Store(Vector512.FusedMultiplyAdd(d1, xh1, Vector512.Load(pg + i + 16)), pg + i + 16);
                    Vector512.Store(Vector512.Load(pb + i) + d0, pb + i);
                    Vector512.Store(Vector512.Load(pb + i + 16) + d1, pb + i + 16);
                    var gd0 = Vector512.Load(g + i) * d0; var gd1 = Vector512.Load(g + i + 16) * d1;
                    a0 += gd0; a1 += gd1;
                    b0 = Vector512.FusedMultiplyAdd(gd0, xh0, b0); b1 = Vector512.FusedMultiplyAdd(gd1, xh1, b1);
                }
                for (; i + 16 <= n; i += 16)
                {
                    var xh = (Vector512.Load(x + i) - vm) * vr; var d = Vector512.Load(dy + i);
                    Vector512.Store(Vector512.FusedMultiplyAdd(d, xh, Vector512.Load(pg + i)), pg + i);
                    Vector512.Store(Vector512.Load(pb + i) + d, pb + i);
                    var gd = Vector512.Load(g + i) * d;
                    a0 += gd; b0 = Vector512.FusedMultiplyAdd(gd, xh, b0);
                }
                sg = Vector512.Sum(a0 + a1); sgx = Vector512.Sum(b0 + b1);
            }
            {
                Vector256<float> vm = Vector256.Create(m), vr = Vector256.Create(rs), a0 = default, b0 = default;
                for (; i + 8 <= n; i += 8)
                {
                    var xh = (Vector256.Load(x + i) - vm) * vr; var d = Vector256.Load(dy + i);
                    Vector256.Store(Vector256.FusedMultiplyAdd(d, xh, Vector256.Load(pg + i)), pg + i);
                    Vector256.Store(Vector256.Load(pb + i) + d, pb + i);
                    var gd = Vector256.Load(g + i) * d;
                    a0 += gd; b0 = Vector256.FusedMultiplyAdd(gd, xh, b0);
                }
                sg += Vector256.Sum(a0); sgx += Vector256.Sum(b0);
            }
            for (; i < n; i++)
            {
                float xh = (x[i] - m) * rs, d = dy[i];
                pg[i] = MathF.FusedMultiplyAdd(d, xh, pg[i]);
                pb[i] += d;
                float gd = g[i] * d;
                sg += gd; sgx = MathF.FusedMultiplyAdd(gd, xh, sgx);
            }

            float mg = sg / n, mgx = sgx / n;
            i = 0;
            if (use512)
            {
                Vector512<float> vm = Vector512.Create(m), vr = Vector512.Create(rs), vmg = Vector512.Create(mg), vmgx = Vector512.Create(mgx);
                for (; i + 16 <= n; i += 16)
                {
                    var xh = (Vector512.Load(x + i) - vm) * vr;
                    var t = Vector512.Load(g + i) * Vector512.Load(dy + i) - Vector512.FusedMultiplyAdd(xh, vmgx, vmg);
                    Vector512.Store(Vector512.FusedMultiplyAdd(t, vr, Vector512.Load(dx + i)), dx + i);
                }
            }
            {
                Vector256<float> vm = Vector256.Create(m), vr = Vector256.Create(rs), vmg = Vector256.Create(mg), vmgx = Vector256.Create(mgx);
                for (; i + 8 <= n; i += 8)
                {
                    var xh = (Vector256.Load(x + i) - vm) * vr;
                    var t = Vector256.Load(g + i) * Vector256.Load(dy + i) - Vector256.FusedMultiplyAdd(xh, vmgx, vmg);
                    Vector256.Store(Vector256.FusedMultiplyAdd(t, vr, Vector256.Load(dx + i)), dx + i);
                }
            }
            for (; i < n; i++)
            {
                float xh = (x[i] - m) * rs;
                float t = g[i] * dy[i] - MathF.FusedMultiplyAdd(xh, mgx, mg);
                dx[i] = MathF.FusedMultiplyAdd(t, rs, dx[i]);
            }
        }
    }

    static void Check(int x, int gamma, int beta, int y, int mean, int rstd, int rows, int cols, string yName)
    {
        if (rows < 0 || cols <= 0 || x != (long)rows * cols || y != x || gamma != cols || (beta != 0 && beta != cols) || mean < rows || rstd < rows)
            throw new ArgumentException($"LayerNorm over [{rows}, {cols}]: x holds {x} floats, {yName} {y}, gamma {gamma}, beta {beta}, mean {mean}, rstd {rstd}; " +
                $"x and {yName} must hold rows*cols, gamma (and beta, if any) cols, mean and rstd rows.");
    }
}
