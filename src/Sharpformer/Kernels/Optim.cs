using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// AdamW update and the gradient-norm reduction. AdamW is one fused SIMD pass over (param, grad, m, v);
/// every element is independent, so chunks go to threads freely and the scalar tail does the vector
/// lanes' arithmetic exactly. SumOfSquares sums fixed chunks in double and adds the chunk sums in
/// order, so it is bit-identical for any thread count. (Scaling gradients for clipping is
/// TensorPrimitives.Multiply.)
/// </summary>
public static unsafe class Optim
{
    const int ParallelThreshold = 1 << 15;
    const int Chunk = 1 << 15; // elements per work item (a multiple of both vector widths)

    /// <summary>
    /// One AdamW step for one parameter tensor, as torch.optim.AdamW: p -= lr*wd*p (decoupled decay);
    /// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps). t is 1-based.
    /// The float operations follow torch's single-tensor kernel: p *= 1 - lr*wd; m = lerp(m, g, 1-b1)
    /// (one fused multiply-add); v = b2*v + ((1-b2)*g)*g; p += (-(lr/bc1) * m) / (sqrt(v)/sqrt(bc2) + eps),
    /// with the scalar coefficients formed in double and rounded once.
    /// </summary>
    public static void AdamW(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        using var timing = Profiler.Time(KernelKind.Optimizer);
        if (grad.Length != param.Length || m.Length != param.Length || v.Length != param.Length)
            throw new ArgumentException($"Optim.AdamW: param holds {param.Length} floats, grad {grad.Length}, m {m.Length}, v {v.Length}; they must match.");
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        if (param.IsEmpty) return;
        var c = new AdamCoefficients
        {
            Decay = (float)(1 - (double)lr * weightDecay),
            W1 = (float)(1 - (double)beta1),
            Beta2 = beta2,
            W2 = (float)(1 - (double)beta2),
            StepSize = (float)(lr / (1 - Math.Pow(beta1, step))),
            Bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(beta2, step)),
            Eps = eps,
        };
        fixed (float* pp = param, pg = grad, pm = m, pv = v)
        {
            int n = param.Length;
            if (n < ParallelThreshold || Parallelism.ThreadCount == 1)
            {
                AdamRange(pp, pg, pm, pv, 0, n, c);
                return;
            }
            var job = AdamJob.Current;
            job.Set(pp, pg, pm, pv, n, c);
            Parallelism.For((n + Chunk - 1) / Chunk, job.Body);
            job.Set(null, null, null, null, 0, default);
        }
    }

    struct AdamCoefficients
    {
        public float Decay, W1, Beta2, W2, StepSize, Bc2Sqrt, Eps;
    }

    sealed class AdamJob
    {
        [ThreadStatic] static AdamJob? current;
        public static AdamJob Current => current ??= new AdamJob();

        public readonly Action<int> Body;
        float* p, g, m, v;
        int n;
        AdamCoefficients c;

        AdamJob() => Body = Execute;

        public void Set(float* p, float* g, float* m, float* v, int n, AdamCoefficients c)
        {
            this.p = p; this.g = g; this.m = m; this.v = v; this.n = n; this.c = c;
        }

        void Execute(int chunk)
        {
            int start = chunk * Chunk;
            AdamRange(p, g, m, v, start, Math.Min(n, start + Chunk), c);
        }
    }

    static void AdamRange(float* p, float* g, float* m, float* v, int i, int end, in AdamCoefficients c)
    {
        if (Simd.Use512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<float> decay = Vector512.Create(c.Decay), w1 = Vector512.Create(c.W1), b2 = Vector512.Create(c.Beta2),
                w2 = Vector512.Create(c.W2), stepSize = Vector512.Create(c.StepSize), bc2 = Vector512.Create(c.Bc2Sqrt), eps = Vector512.Create(c.Eps);
            for (; i + 16 <= end; i += 16)
            {
                var gi = Vector512.Load(g + i);
                var mi = Vector512.Load(m + i);
                mi = Vector512.FusedMultiplyAdd(w1, gi - mi, mi);
                var vi = b2 * Vector512.Load(v + i) + w2 * gi * gi;
                var denom = Vector512.Sqrt(vi) / bc2 + eps;
                Vector512.Store(Vector512.Load(p + i) * decay - stepSize * mi / denom, p + i);
                Vector512.Store(mi, m + i);
                Vector512.Store(vi, v + i);
            }
        }
        else
        {
            Vector256<float> decay = Vector256.Create(c.Decay), w1 = Vector256.Create(c.W1), b2 = Vector256.Create(c.Beta2),
                w2 = Vector256.Create(c.W2), stepSize = Vector256.Create(c.StepSize), bc2 = Vector256.Create(c.Bc2Sqrt), eps = Vector256.Create(c.Eps);
            for (; i + 8 <= end; i += 8)
            {
                var gi = Vector256.Load(g + i);
                var mi = Vector256.Load(m + i);
                mi = Vector256.FusedMultiplyAdd(w1, gi - mi, mi);
                var vi = b2 * Vector256.Load(v + i) + w2 * gi * gi;
                var denom = Vector256.Sqrt(vi) / bc2 + eps;
                Vector256.Store(Vector256.Load(p + i) * decay - stepSize * mi / denom, p + i);
                Vector256.Store(mi, m + i);
                Vector256.Store(vi, v + i);
            }
        }
        for (; i < end; i++) // the same operations, one lane
        {
            float gi = g[i];
            float mi = MathF.FusedMultiplyAdd(c.W1, gi - m[i], m[i]);
            float vi = c.Beta2 * v[i] + c.W2 * gi * gi;
            float denom = MathF.Sqrt(vi) / c.Bc2Sqrt + c.Eps;
            p[i] = p[i] * c.Decay - c.StepSize * mi / denom;
            m[i] = mi;
            v[i] = vi;
        }
    }

    /// <summary>Sum of squares in double, in a fixed order (deterministic, and the same for any thread count).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        using var timing = Profiler.Time(KernelKind.Optimizer);
        int n = x.Length;
        int chunks = (n + Chunk - 1) / Chunk;
        fixed (float* px = x)
        {
            if (chunks <= 1) return SumSquares(px, n);
            if (n < ParallelThreshold || Parallelism.ThreadCount == 1)
            {
                double s = 0;
                for (int k = 0; k < chunks; k++) s += SumSquares(px + (long)k * Chunk, Math.Min(Chunk, n - k * Chunk));
                return s;
            }
            double[]? rented = chunks > 512 ? System.Buffers.ArrayPool<double>.Shared.Rent(chunks) : null;
            double* stack = stackalloc double[rented is null ? chunks : 0];
            fixed (double* pr = rented)
            {
                double* partial = rented is null ? stack : pr;
                var job = SquaresJob.Current;
                job.Set(px, n, partial);
                Parallelism.For(chunks, job.Body);
                job.Set(null, 0, null);
                double s = 0;
                for (int k = 0; k < chunks; k++) s += partial[k];
                if (rented is not null) System.Buffers.ArrayPool<double>.Shared.Return(rented);
                return s;
            }
        }
    }

    sealed class SquaresJob
    {
        [ThreadStatic] static SquaresJob? current;
        public static SquaresJob Current => current ??= new SquaresJob();

        public readonly Action<int> Body;
        float* x;
        double* partial;
        int n;

        SquaresJob() => Body = Execute;

        public void Set(float* x, int n, double* partial) { this.x = x; this.n = n; this.partial = partial; }

        void Execute(int chunk) => partial[chunk] = SumSquares(x + (long)chunk * Chunk, Math.Min(Chunk, n - chunk * Chunk));
    }

    /// <summary>One chunk: floats widened to double, four vector accumulators, combined in a fixed order.</summary>
    static double SumSquares(float* x, int n)
    {
        int i = 0;
        double s;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= n; i += 32)
            {
                var f0 = Vector512.Load(x + i);
                var f1 = Vector512.Load(x + i + 16);
                var (l0, h0) = Vector512.Widen(f0);
                var (l1, h1) = Vector512.Widen(f1);
                a0 = Vector512.FusedMultiplyAdd(l0, l0, a0);
                a1 = Vector512.FusedMultiplyAdd(h0, h0, a1);
                a2 = Vector512.FusedMultiplyAdd(l1, l1, a2);
                a3 = Vector512.FusedMultiplyAdd(h1, h1, a3);
            }
            s = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else
        {
            Vector256<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 16 <= n; i += 16)
            {
                var (l0, h0) = Vector256.Widen(Vector256.Load(x + i));
                var (l1, h1) = Vector256.Widen(Vector256.Load(x + i + 8));
                a0 = Vector256.FusedMultiplyAdd(l0, l0, a0);
                a1 = Vector256.FusedMultiplyAdd(h0, h0, a1);
                a2 = Vector256.FusedMultiplyAdd(l1, l1, a2);
                a3 = Vector256.FusedMultiplyAdd(h1, h1, a3);
            }
            s = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++) s += (double)x[i] * x[i];
        return s;
    }
}
