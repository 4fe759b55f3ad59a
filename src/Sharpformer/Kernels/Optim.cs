using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// AdamW update and the gradient-norm reduction, each written once for both vector widths. AdamW is one
/// fused SIMD pass over (param, grad, m, v); every element is independent, so chunks go to threads freely and the scalar tail does the vector
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
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) i = AdamRange<Vector512<float>, Lanes512>(p, g, m, v, i, end, c);
        else i = AdamRange<Vector256<float>, Lanes256>(p, g, m, v, i, end, c);
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

    /// <summary>Whole vectors from i; returns where it stopped.</summary>
    static int AdamRange<V, L>(float* p, float* g, float* m, float* v, int i, int end, in AdamCoefficients c)
        where V : struct where L : struct, ILanes<V>
    {
        V decay = L.Splat(c.Decay), w1 = L.Splat(c.W1), b2 = L.Splat(c.Beta2),
            w2 = L.Splat(c.W2), stepSize = L.Splat(c.StepSize), bc2 = L.Splat(c.Bc2Sqrt), eps = L.Splat(c.Eps);
        for (; i + L.Count <= end; i += L.Count)
        {
            var gi = L.Load(g + i);
            var mi = L.Load(m + i);
            mi = L.Fma(w1, L.Sub(gi, mi), mi);
            var vi = L.Add(L.Mul(b2, L.Load(v + i)), L.Mul(L.Mul(w2, gi), gi));
            var denom = L.Add(L.Div(L.Sqrt(vi), bc2), eps);
            L.Store(L.Sub(L.Mul(L.Load(p + i), decay), L.Div(L.Mul(stepSize, mi), denom)), p + i);
            L.Store(mi, m + i);
            L.Store(vi, v + i);
        }
        return i;
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
    static double SumSquares(float* x, int n) =>
        Simd.Use512 && Vector512.IsHardwareAccelerated
            ? SumSquares<Vector512<double>, Doubles512>(x, n)
            : SumSquares<Vector256<double>, Doubles256>(x, n);

    static double SumSquares<W, D>(float* x, int n) where W : struct where D : struct, IDoubleLanes<W>
    {
        int i = 0, w = D.Count;
        W a0 = default, a1 = default, a2 = default, a3 = default;
        for (; i + 2 * w <= n; i += 2 * w)
        {
            var (l0, h0) = D.LoadWidened(x + i);
            var (l1, h1) = D.LoadWidened(x + i + w);
            a0 = D.Fma(l0, l0, a0);
            a1 = D.Fma(h0, h0, a1);
            a2 = D.Fma(l1, l1, a2);
            a3 = D.Fma(h1, h1, a3);
        }
        double s = D.Sum(D.Add(D.Add(a0, a1), D.Add(a2, a3)));
        for (; i < n; i++) s += (double)x[i] * x[i];
        return s;
    }

    /// <summary>One float vector's width loaded as two double vectors: <see cref="ILanes{V}"/>'s idea for the double sums.</summary>
    interface IDoubleLanes<W> where W : struct
    {
        /// <summary>Floats per load.</summary>
        static abstract int Count { get; }
        static abstract (W Lower, W Upper) LoadWidened(float* p);
        static abstract W Fma(W a, W b, W c);
        static abstract W Add(W a, W b);
        /// <summary>Vector512.Sum / Vector256.Sum (the library's lane order).</summary>
        static abstract double Sum(W x);
    }

    readonly struct Doubles512 : IDoubleLanes<Vector512<double>>
    {
        public static int Count => 16;
        public static (Vector512<double> Lower, Vector512<double> Upper) LoadWidened(float* p) => Vector512.Widen(Vector512.Load(p));
        public static Vector512<double> Fma(Vector512<double> a, Vector512<double> b, Vector512<double> c) => Vector512.FusedMultiplyAdd(a, b, c);
        public static Vector512<double> Add(Vector512<double> a, Vector512<double> b) => a + b;
        public static double Sum(Vector512<double> x) => Vector512.Sum(x);
    }

    readonly struct Doubles256 : IDoubleLanes<Vector256<double>>
    {
        public static int Count => 8;
        public static (Vector256<double> Lower, Vector256<double> Upper) LoadWidened(float* p) => Vector256.Widen(Vector256.Load(p));
        public static Vector256<double> Fma(Vector256<double> a, Vector256<double> b, Vector256<double> c) => Vector256.FusedMultiplyAdd(a, b, c);
        public static Vector256<double> Add(Vector256<double> a, Vector256<double> b) => a + b;
        public static double Sum(Vector256<double> x) => Vector256.Sum(x);
    }
}
