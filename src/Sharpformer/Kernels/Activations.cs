using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// GELU in GPT-2's tanh form, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), and in the exact erf form
/// nanoGPT's nn.GELU() uses, 0.5x(1 + erf(x/sqrt 2)); ReLU. Backwards add into dx.
/// Each is one fused SIMD pass (Vector512, or Vector256 on the fallback path), split over threads in
/// fixed chunks for large inputs. Every lane does the same IEEE operations on either path and the last
/// partial vector runs on a padded copy, so results do not depend on the path, the thread count or an
/// element's position.
/// </summary>
public static unsafe class Activations
{
    const float C0 = 0.7978845608028654f; // sqrt(2/pi)
    const float C1 = 0.044715f;
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    const int Chunk = 16384;
    const int ParallelThreshold = 1 << 15;

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.GeluTanh);
    /// <summary>dx += dy·f'(x); with <paramref name="overwrite"/>, dx = dy·f'(x) and dy may be dx itself (in place).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite = false) => Run(x, dy, dx, Op.GeluTanhBackward, overwrite);
    public static void GeluErfForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.GeluErf);
    public static void GeluErfBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite = false) => Run(x, dy, dx, Op.GeluErfBackward, overwrite);
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.Relu);
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite = false) => Run(x, dy, dx, Op.ReluBackward, overwrite);

    enum Op { GeluTanh, GeluTanhBackward, GeluErf, GeluErfBackward, Relu, ReluBackward }

    static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> result, Op op, bool overwrite = false)
    {
        using var timing = Profiler.Time(KernelKind.Activation);
        bool backward = op is Op.GeluTanhBackward or Op.GeluErfBackward or Op.ReluBackward;
        if (result.Length != x.Length || (backward && dy.Length != x.Length))
            throw new ArgumentException($"Activation: x holds {x.Length} floats, {(backward ? $"dy {dy.Length}, dx" : "y")} {result.Length}; they must match.");
        fixed (float* px = x, pdy = dy, pr = result)
        {
            int n = x.Length;
            if (n < ParallelThreshold || Parallelism.ThreadCount == 1)
            {
                Apply(px, pdy, pr, n, op, overwrite);
                return;
            }
            var job = Job.Current;
            job.Set(px, pdy, pr, n, op, overwrite);
            Parallelism.For((n + Chunk - 1) / Chunk, job.Body);
            job.Set(null, null, null, 0, op, false);
        }
    }

    /// <summary>One reusable job per calling thread, so a parallel call allocates nothing once warm.</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public readonly Action<int> Body;
        float* x, dy, r;
        int n;
        Op op;
        bool overwrite;

        Job() => Body = Execute;

        public void Set(float* x, float* dy, float* r, int n, Op op, bool overwrite) { this.x = x; this.dy = dy; this.r = r; this.n = n; this.op = op; this.overwrite = overwrite; }

        void Execute(int chunk)
        {
            int start = chunk * Chunk;
            Apply(x + start, dy == null ? null : dy + start, r + start, Math.Min(Chunk, n - start), op, overwrite);
        }
    }

    static void Apply(float* x, float* dy, float* r, int n, Op op, bool overwrite)
    {
        switch (op)
        {
            case Op.GeluTanh: Forward<GeluTanhOp>(x, r, n); break;
            case Op.GeluErf: Forward<GeluErfOp>(x, r, n); break;
            case Op.Relu: Forward<ReluOp>(x, r, n); break;
            case Op.GeluTanhBackward: Backward<GeluTanhOp>(x, dy, r, n, overwrite); break;
            case Op.GeluErfBackward: Backward<GeluErfOp>(x, dy, r, n, overwrite); break;
            default: Backward<ReluOp>(x, dy, r, n, overwrite); break;
        }
    }

    /// <summary>An element-wise function and its derivative, at both vector widths.</summary>
    interface IActivation
    {
        static abstract Vector512<float> F(Vector512<float> x);
        static abstract Vector256<float> F(Vector256<float> x);
        /// <summary>dx + dy·f'(x).</summary>
        static abstract Vector512<float> AddGrad(Vector512<float> x, Vector512<float> dy, Vector512<float> dx);
        static abstract Vector256<float> AddGrad(Vector256<float> x, Vector256<float> dy, Vector256<float> dx);
    }

    static void Forward<T>(float* x, float* y, int n) where T : IActivation
    {
        int i = 0;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                Vector512.Store(T.F(Vector512.Load(x + i)), y + i);
                Vector512.Store(T.F(Vector512.Load(x + i + 16)), y + i + 16);
            }
            for (; i + 16 <= n; i += 16) Vector512.Store(T.F(Vector512.Load(x + i)), y + i);
        }
        for (; i + 8 <= n; i += 8) Vector256.Store(T.F(Vector256.Load(x + i)), y + i);
        if (i < n)
        {
            float* t = stackalloc float[8];
            int rest = n - i;
            for (int j = 0; j < 8; j++) t[j] = j < rest ? x[i + j] : 0f;
            Vector256.Store(T.F(Vector256.Load(t)), t);
            for (int j = 0; j < rest; j++) y[i + j] = t[j];
        }
    }

    /// <summary>
    /// dx += dy · f'(x), or with <paramref name="overwrite"/> dx = dy · f'(x) (the addend is zero instead of dx),
    /// which may run in place (dx = dy): every lane reads dy before its result is stored.
    /// </summary>
    static void Backward<T>(float* x, float* dy, float* dx, int n, bool overwrite) where T : IActivation
    {
        int i = 0;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
                Vector512.Store(T.AddGrad(Vector512.Load(x + i), Vector512.Load(dy + i), overwrite ? Vector512<float>.Zero : Vector512.Load(dx + i)), dx + i);
        }
        for (; i + 8 <= n; i += 8)
            Vector256.Store(T.AddGrad(Vector256.Load(x + i), Vector256.Load(dy + i), overwrite ? Vector256<float>.Zero : Vector256.Load(dx + i)), dx + i);
        if (i < n)
        {
            float* tx = stackalloc float[8], tdy = stackalloc float[8], tdx = stackalloc float[8];
            int rest = n - i;
            for (int j = 0; j < 8; j++)
            {
                bool inside = j < rest;
                tx[j] = inside ? x[i + j] : 0f; tdy[j] = inside ? dy[i + j] : 0f; tdx[j] = inside && !overwrite ? dx[i + j] : 0f;
            }
            Vector256.Store(T.AddGrad(Vector256.Load(tx), Vector256.Load(tdy), Vector256.Load(tdx)), tdx);
            for (int j = 0; j < rest; j++) dx[i + j] = tdx[j];
        }
    }

    /// <summary>
    /// 0.5x(1 + tanh u) = x·sigmoid(2u) = x / (1 + e^(−2u)): one exp and one division, and no cancellation
    /// for negative x. With s = sigmoid(2u) and e = e^(−2u), the derivative 0.5(1 + t) + 0.5x(1 − t²)u'
    /// is s·(1 + 2x·u'·e·s). −2u is capped at 88 so e and 1 + e stay finite.
    /// </summary>
    readonly struct GeluTanhOp : IActivation
    {
        const float A = -2 * C0 * C1, B = -2 * C0, D0 = 2 * C0, D1 = 6 * C0 * C1, Cap = 88f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> F(Vector512<float> x)
        {
            var m2u = x * Vector512.FusedMultiplyAdd(x * x, Vector512.Create(A), Vector512.Create(B));
            var e = FastMath.Exp(Vector512.MinNative(m2u, Vector512.Create(Cap)));
            return x / (Vector512<float>.One + e);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> F(Vector256<float> x)
        {
            var m2u = x * Vector256.FusedMultiplyAdd(x * x, Vector256.Create(A), Vector256.Create(B));
            var e = FastMath.Exp(Vector256.MinNative(m2u, Vector256.Create(Cap)));
            return x / (Vector256<float>.One + e);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<float> Grad(Vector512<float> x)
        {
            var x2 = x * x;
            var m2u = x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(A), Vector512.Create(B));
            var e = FastMath.Exp(Vector512.MinNative(m2u, Vector512.Create(Cap)));
            var s = Vector512<float>.One / (Vector512<float>.One + e);
            var twoXdu = x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(D1), Vector512.Create(D0)); // 2x·u'
            return s * Vector512.FusedMultiplyAdd(twoXdu, e * s, Vector512<float>.One);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Grad(Vector256<float> x)
        {
            var x2 = x * x;
            var m2u = x * Vector256.FusedMultiplyAdd(x2, Vector256.Create(A), Vector256.Create(B));
            var e = FastMath.Exp(Vector256.MinNative(m2u, Vector256.Create(Cap)));
            var s = Vector256<float>.One / (Vector256<float>.One + e);
            var twoXdu = x * Vector256.FusedMultiplyAdd(x2, Vector256.Create(D1), Vector256.Create(D0));
            return s * Vector256.FusedMultiplyAdd(twoXdu, e * s, Vector256<float>.One);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> AddGrad(Vector512<float> x, Vector512<float> dy, Vector512<float> dx) => Vector512.FusedMultiplyAdd(dy, Grad(x), dx);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> AddGrad(Vector256<float> x, Vector256<float> dy, Vector256<float> dx) => Vector256.FusedMultiplyAdd(dy, Grad(x), dx);
    }

    /// <summary>
    /// x·Φ(x) with Φ(x) = 0.5(1 + erf(x/√2)). erf by Abramowitz &amp; Stegun 7.1.26 (|error| ≤ 1.5e-7):
    /// erfc(a) = t·P(t)·e^(−a²), t = 1/(1 + p·a), a = |x|/√2. Φ is formed as 0.5·erfc(a) for x &lt; 0 and
    /// 1 − 0.5·erfc(a) otherwise, so the negative side keeps its relative accuracy instead of cancelling.
    /// e^(−a²) = e^(−x²/2) is also the normal density's exponent, so the derivative Φ + x·φ costs one exp.
    /// </summary>
    readonly struct GeluErfOp : IActivation
    {
        const float P = 0.3275911f * InvSqrt2, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<float> Phi(Vector512<float> x, Vector512<float> e)
        {
            var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Abs(x), Vector512.Create(P), Vector512<float>.One);
            var poly = Vector512.FusedMultiplyAdd(t, Vector512.Create(A5), Vector512.Create(A4));
            poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A3));
            poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A2));
            poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A1));
            var half = poly * t * e * 0.5f; // 0.5·erfc(|x|/√2) = Φ(−|x|)
            return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), half, Vector512<float>.One - half);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Phi(Vector256<float> x, Vector256<float> e)
        {
            var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(Vector256.Abs(x), Vector256.Create(P), Vector256<float>.One);
            var poly = Vector256.FusedMultiplyAdd(t, Vector256.Create(A5), Vector256.Create(A4));
            poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A3));
            poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A2));
            poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A1));
            var half = poly * t * e * 0.5f;
            return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), half, Vector256<float>.One - half);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> F(Vector512<float> x) => x * Phi(x, FastMath.Exp(x * x * -0.5f));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> F(Vector256<float> x) => x * Phi(x, FastMath.Exp(x * x * -0.5f));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<float> Grad(Vector512<float> x)
        {
            var e = FastMath.Exp(x * x * -0.5f);
            return Vector512.FusedMultiplyAdd(x * InvSqrt2Pi, e, Phi(x, e));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Grad(Vector256<float> x)
        {
            var e = FastMath.Exp(x * x * -0.5f);
            return Vector256.FusedMultiplyAdd(x * InvSqrt2Pi, e, Phi(x, e));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> AddGrad(Vector512<float> x, Vector512<float> dy, Vector512<float> dx) => Vector512.FusedMultiplyAdd(dy, Grad(x), dx);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> AddGrad(Vector256<float> x, Vector256<float> dy, Vector256<float> dx) => Vector256.FusedMultiplyAdd(dy, Grad(x), dx);
    }

    /// <summary>max(x, 0); the derivative is 1 where x &gt; 0, else 0 (PyTorch's choice at 0).</summary>
    readonly struct ReluOp : IActivation
    {
        public static Vector512<float> F(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero);
        public static Vector256<float> F(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);
        // Masking (not multiplying by 0/1) passes dx through untouched where x <= 0, whatever dy holds there.
        public static Vector512<float> AddGrad(Vector512<float> x, Vector512<float> dy, Vector512<float> dx) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dx + dy, dx);
        public static Vector256<float> AddGrad(Vector256<float> x, Vector256<float> dy, Vector256<float> dx) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dx + dy, dx);
    }
}
