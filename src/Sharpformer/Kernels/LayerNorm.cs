using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>
/// LayerNorm over the last dimension of x [rows, cols]: y = (x - mean) * rstd * gamma (+ beta).
/// Forward saves mean and rstd (1/std) per row for the backward. Rows are split over threads; the
/// backward's dgamma/dbeta sums are formed per fixed block of rows and added in block order, so they
/// are bit-identical for any thread count.
/// </summary>
public static unsafe class LayerNorm
{
    const int RowBlock = 64;

    /// <param name="beta">Empty when the layer has no bias.</param>
    public static void Forward(
        ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps = 1e-5f)
    {
        Check(x.Length, gamma.Length, beta.Length, y.Length, mean.Length, rstd.Length, rows, cols, "y");
        fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = mean, pr = rstd)
        {
            var job = new Job(px, pg, beta.IsEmpty ? null : pb, py, pm, pr, rows, cols) { Eps = eps };
            Run(job, backward: false);
        }
    }

    /// <summary>Adds into dx, dgamma and dbeta (dbeta may be empty).</summary>
    public static void Backward(
        ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols)
    {
        Check(x.Length, gamma.Length, dbeta.Length, dx.Length, mean.Length, rstd.Length, rows, cols, "dx");
        if (dy.Length != x.Length || dgamma.Length != cols)
            throw new ArgumentException($"LayerNorm backward: dy holds {dy.Length} floats (x {x.Length}), dgamma {dgamma.Length} (cols {cols}).");
        int blocks = (rows + RowBlock - 1) / RowBlock;
        float[] partial = System.Buffers.ArrayPool<float>.Shared.Rent(blocks * 2 * cols); // per block: dgamma then dbeta
        fixed (float* pdy = dy, px = x, pg = gamma, pm = mean, pr = rstd, pdx = dx, pp = partial)
        {
            var job = new Job(px, pg, null, null, pm, pr, rows, cols) { Dy = pdy, Dx = pdx, Partial = pp };
            Run(job, backward: true);
        }
        for (int blk = 0; blk < blocks; blk++)
        {
            TensorPrimitives.Add(dgamma, partial.AsSpan(blk * 2 * cols, cols), dgamma);
            if (!dbeta.IsEmpty) TensorPrimitives.Add(dbeta, partial.AsSpan(blk * 2 * cols + cols, cols), dbeta);
        }
        System.Buffers.ArrayPool<float>.Shared.Return(partial);
    }

    /// <summary>Small inputs run inline (no delegate, no allocation: decode steps); large ones over threads.</summary>
    static void Run(Job job, bool backward)
    {
        int blocks = (job.Rows + RowBlock - 1) / RowBlock;
        if ((long)job.Rows * job.Cols < 1 << 15)
        {
            for (int b = 0; b < blocks; b++)
                if (backward) job.Backward(b); else job.Forward(b);
            return;
        }
        var box = new JobBox(job);
        Parallelism.For(blocks, backward ? box.Backward : box.Forward);
    }

    sealed class JobBox(Job job)
    {
        public void Forward(int block) => job.Forward(block);
        public void Backward(int block) => job.Backward(block);
    }

    readonly struct Job(float* x, float* gamma, float* beta, float* y, float* mean, float* rstd, int rows, int cols)
    {
        public int Rows => rows;
        public int Cols => cols;
        public float Eps { get; init; }
        public float* Dy { get; init; }
        public float* Dx { get; init; }
        public float* Partial { get; init; }

        public void Forward(int block)
        {
            var g = new ReadOnlySpan<float>(gamma, cols);
            for (int r = block * RowBlock; r < Math.Min(rows, (block + 1) * RowBlock); r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                var yr = new Span<float>(y + (long)r * cols, cols);
                float m = TensorPrimitives.Sum(xr) / cols;
                TensorPrimitives.Subtract(xr, m, yr);
                float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / cols + Eps);
                mean[r] = m; rstd[r] = rs;
                TensorPrimitives.Multiply(yr, rs, yr);
                if (beta == null) TensorPrimitives.Multiply(yr, g, yr);
                else TensorPrimitives.FusedMultiplyAdd(yr, g, new ReadOnlySpan<float>(beta, cols), yr);
            }
        }

        public void Backward(int block)
        {
            var g = new ReadOnlySpan<float>(gamma, cols);
            var dgamma = new Span<float>(Partial + (long)block * 2 * cols, cols);
            var dbeta = new Span<float>(Partial + (long)block * 2 * cols + cols, cols);
            dgamma.Clear(); // the block's partial sums start from zero (the buffer is rented)
            dbeta.Clear();
            float[] rented = System.Buffers.ArrayPool<float>.Shared.Rent(2 * cols);
            var xhat = rented.AsSpan(0, cols);
            var gdy = rented.AsSpan(cols, cols);
            for (int r = block * RowBlock; r < Math.Min(rows, (block + 1) * RowBlock); r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                var dyr = new ReadOnlySpan<float>(Dy + (long)r * cols, cols);
                var dxr = new Span<float>(Dx + (long)r * cols, cols);
                float rs = rstd[r];
                TensorPrimitives.Subtract(xr, mean[r], xhat);
                TensorPrimitives.Multiply(xhat, rs, xhat);
                TensorPrimitives.FusedMultiplyAdd(dyr, xhat, dgamma, dgamma);
                TensorPrimitives.Add(dbeta, dyr, dbeta);
                TensorPrimitives.Multiply(dyr, g, gdy);
                float meanG = TensorPrimitives.Sum(gdy) / cols;
                float meanGX = TensorPrimitives.Dot(gdy, xhat) / cols;
                // dx += rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat))
                TensorPrimitives.MultiplyAdd(xhat, -meanGX, gdy, gdy);
                TensorPrimitives.Subtract(gdy, meanG, gdy);
                TensorPrimitives.MultiplyAdd(gdy, rs, dxr, dxr);
            }
            System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    static void Check(int x, int gamma, int beta, int y, int mean, int rstd, int rows, int cols, string yName)
    {
        if (rows < 0 || cols <= 0 || x != (long)rows * cols || y != x || gamma != cols || (beta != 0 && beta != cols) || mean < rows || rstd < rows)
            throw new ArgumentException($"LayerNorm over [{rows}, {cols}]: x holds {x} floats, {yName} {y}, gamma {gamma}, beta {beta}, mean {mean}, rstd {rstd}; " +
                $"x and {yName} must hold rows*cols, gamma (and beta, if any) cols, mean and rstd rows.");
    }
}
