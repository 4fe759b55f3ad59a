using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// GELU in GPT-2's tanh form, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), and in the exact erf form
/// nanoGPT's nn.GELU() uses, 0.5x(1 + erf(x/sqrt 2)); ReLU; tanh (BERT's pooler). Backwards add into dx.
/// Each is one fused SIMD pass (Vector512, or Vector256 on the fallback path), written once over
/// <see cref="ILanes{V}"/> and split over threads in fixed chunks for large inputs. Every lane does the same IEEE operations on either path and the last
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
    public static void TanhForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.Tanh);
    public static void TanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite = false) => Run(x, dy, dx, Op.TanhBackward, overwrite);

    enum Op { GeluTanh, GeluTanhBackward, GeluErf, GeluErfBackward, Relu, ReluBackward, Tanh, TanhBackward }

    static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> result, Op op, bool overwrite = false)
    {
        using var timing = Profiler.Time(KernelKind.Activation);
        bool backward = op is Op.GeluTanhBackward or Op.GeluErfBackward or Op.ReluBackward or Op.TanhBackward;
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
            case Op.Tanh: Forward<TanhOp>(x, r, n); break;
            case Op.GeluTanhBackward: Backward<GeluTanhOp>(x, dy, r, n, overwrite); break;
            case Op.GeluErfBackward: Backward<GeluErfOp>(x, dy, r, n, overwrite); break;
            case Op.TanhBackward: Backward<TanhOp>(x, dy, r, n, overwrite); break;
            default: Backward<ReluOp>(x, dy, r, n, overwrite); break;
        }
    }

    /// <summary>An element-wise function and its derivative, at any vector width.</summary>
    interface IActivation
    {
        static abstract V F<V, L>(V x) where V : struct where L : struct, ILanes<V>;
        /// <summary>dx + dy·f'(x).</summary>
        static abstract V AddGrad<V, L>(V x, V dy, V dx) where V : struct where L : struct, ILanes<V>;
    }

    static void Forward<T>(float* x, float* y, int n) where T : IActivation
    {
        int i = 0;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) i = Forward<Vector512<float>, Lanes512, T>(x, y, i, n);
        i = Forward<Vector256<float>, Lanes256, T>(x, y, i, n);
        if (i < n)
        {
            float* t = stackalloc float[8];
            int rest = n - i;
            for (int j = 0; j < 8; j++) t[j] = j < rest ? x[i + j] : 0f;
            Vector256.Store(T.F<Vector256<float>, Lanes256>(Vector256.Load(t)), t);
            for (int j = 0; j < rest; j++) y[i + j] = t[j];
        }
    }

    /// <summary>Whole vectors from <paramref name="i"/>, two a step while they last; returns where it stopped.</summary>
    static int Forward<V, L, T>(float* x, float* y, int i, int n) where V : struct where L : struct, ILanes<V> where T : IActivation
    {
        int w = L.Count;
        for (; i + 2 * w <= n; i += 2 * w)
        {
            L.Store(T.F<V, L>(L.Load(x + i)), y + i);
            L.Store(T.F<V, L>(L.Load(x + i + w)), y + i + w);
        }
        for (; i + w <= n; i += w) L.Store(T.F<V, L>(L.Load(x + i)), y + i);
        return i;
    }

    /// <summary>
    /// dx += dy · f'(x), or with <paramref name="overwrite"/> dx = dy · f'(x) (the addend is zero instead of dx),
    /// which may run in place (dx = dy): every lane reads dy before its result is stored.
    /// </summary>
    static void Backward<T>(float* x, float* dy, float* dx, int n, bool overwrite) where T : IActivation
    {
        int i = 0;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated) i = Backward<Vector512<float>, Lanes512, T>(x, dy, dx, i, n, overwrite);
        i = Backward<Vector256<float>, Lanes256, T>(x, dy, dx, i, n, overwrite);
        if (i < n)
        {
            float* tx = stackalloc float[8], tdy = stackalloc float[8], tdx = stackalloc float[8];
            int rest = n - i;
            for (int j = 0; j < 8; j++)
            {
                bool inside = j < rest;
                tx[j] = inside ? x[i + j] : 0f; tdy[j] = inside ? dy[i + j] : 0f; tdx[j] = inside && !overwrite ? dx[i + j] : 0f;
            }
            Vector256.Store(T.AddGrad<Vector256<float>, Lanes256>(Vector256.Load(tx), Vector256.Load(tdy), Vector256.Load(tdx)), tdx);
            for (int j = 0; j < rest; j++) dx[i + j] = tdx[j];
        }
    }

    static int Backward<V, L, T>(float* x, float* dy, float* dx, int i, int n, bool overwrite)
        where V : struct where L : struct, ILanes<V> where T : IActivation
    {
        var zero = L.Splat(0f);
        for (; i + L.Count <= n; i += L.Count)
            L.Store(T.AddGrad<V, L>(L.Load(x + i), L.Load(dy + i), overwrite ? zero : L.Load(dx + i)), dx + i);
        return i;
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
        public static V F<V, L>(V x) where V : struct where L : struct, ILanes<V>
        {
            var m2u = L.Mul(x, L.Fma(L.Mul(x, x), L.Splat(A), L.Splat(B)));
            var e = L.Exp(L.MinNative(m2u, L.Splat(Cap)));
            return L.Div(x, L.Add(L.Splat(1f), e));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static V Grad<V, L>(V x) where V : struct where L : struct, ILanes<V>
        {
            var one = L.Splat(1f);
            var x2 = L.Mul(x, x);
            var m2u = L.Mul(x, L.Fma(x2, L.Splat(A), L.Splat(B)));
            var e = L.Exp(L.MinNative(m2u, L.Splat(Cap)));
            var s = L.Div(one, L.Add(one, e));
            var twoXdu = L.Mul(x, L.Fma(x2, L.Splat(D1), L.Splat(D0))); // 2x·u'
            return L.Mul(s, L.Fma(twoXdu, L.Mul(e, s), one));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V AddGrad<V, L>(V x, V dy, V dx) where V : struct where L : struct, ILanes<V> => L.Fma(dy, Grad<V, L>(x), dx);
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
        static V Phi<V, L>(V x, V e) where V : struct where L : struct, ILanes<V>
        {
            var one = L.Splat(1f);
            var t = L.Div(one, L.Fma(L.Abs(x), L.Splat(P), one));
            var poly = L.Fma(t, L.Splat(A5), L.Splat(A4));
            poly = L.Fma(t, poly, L.Splat(A3));
            poly = L.Fma(t, poly, L.Splat(A2));
            poly = L.Fma(t, poly, L.Splat(A1));
            var half = L.Mul(L.Mul(L.Mul(poly, t), e), L.Splat(0.5f)); // 0.5·erfc(|x|/√2) = Φ(−|x|)
            return L.Select(L.LessThan(x, L.Splat(0f)), half, L.Sub(one, half));
        }

        /// <summary>e^(−x²/2).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static V Gauss<V, L>(V x) where V : struct where L : struct, ILanes<V> => L.Exp(L.Mul(L.Mul(x, x), L.Splat(-0.5f)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V F<V, L>(V x) where V : struct where L : struct, ILanes<V> => L.Mul(x, Phi<V, L>(x, Gauss<V, L>(x)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static V Grad<V, L>(V x) where V : struct where L : struct, ILanes<V>
        {
            var e = Gauss<V, L>(x);
            return L.Fma(L.Mul(x, L.Splat(InvSqrt2Pi)), e, Phi<V, L>(x, e));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V AddGrad<V, L>(V x, V dy, V dx) where V : struct where L : struct, ILanes<V> => L.Fma(dy, Grad<V, L>(x), dx);
    }

    /// <summary>max(x, 0); the derivative is 1 where x &gt; 0, else 0 (PyTorch's choice at 0).</summary>
    readonly struct ReluOp : IActivation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V F<V, L>(V x) where V : struct where L : struct, ILanes<V> => L.Max(x, L.Splat(0f));
        // Masking (not multiplying by 0/1) passes dx through untouched where x <= 0, whatever dy holds there.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V AddGrad<V, L>(V x, V dy, V dx) where V : struct where L : struct, ILanes<V> =>
            L.Select(L.GreaterThan(x, L.Splat(0f)), L.Add(dx, dy), dx);
    }

    /// <summary>
    /// tanh x. For |x| ≤ 0.625, Cephes' tanhf polynomial x + x³·P(x²) (relative error ~1e-7, no cancellation near 0);
    /// beyond, (1 − e)/(1 + e) with e = e^(−2|x|), which tends to 1 without overflow (e underflows to 0). The
    /// derivative 1 − tanh² is 4e/(1 + e)² beyond 0.625, so it keeps its relative accuracy in the tails.
    /// </summary>
    readonly struct TanhOp : IActivation
    {
        const float Split = 0.625f, P0 = -5.70498872745e-3f, P1 = 2.06390887954e-2f, P2 = -5.37397155531e-2f, P3 = 1.33314422036e-1f, P4 = -3.33332819422e-1f;

        /// <summary>e^(−2|x|), and whether |x| is past the split.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static V Tail<V, L>(V x, out V large) where V : struct where L : struct, ILanes<V>
        {
            var a = L.Abs(x);
            large = L.GreaterThan(a, L.Splat(Split));
            return L.Exp(L.Mul(a, L.Splat(-2f)));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V F<V, L>(V x) where V : struct where L : struct, ILanes<V>
        {
            var one = L.Splat(1f);
            var z = L.Mul(x, x);
            var p = L.Fma(z, L.Splat(P0), L.Splat(P1));
            p = L.Fma(z, p, L.Splat(P2));
            p = L.Fma(z, p, L.Splat(P3));
            p = L.Fma(z, p, L.Splat(P4));
            var small = L.Fma(L.Mul(p, z), x, x);
            var e = Tail<V, L>(x, out var large);
            var t = L.Div(L.Sub(one, e), L.Add(one, e));
            return L.Select(large, L.Select(L.LessThan(x, L.Splat(0f)), L.Sub(L.Splat(0f), t), t), small);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static V AddGrad<V, L>(V x, V dy, V dx) where V : struct where L : struct, ILanes<V>
        {
            var one = L.Splat(1f);
            var t = F<V, L>(x);
            var e = Tail<V, L>(x, out var large);
            var onePlusE = L.Add(one, e);
            var tail = L.Div(L.Mul(e, L.Splat(4f)), L.Mul(onePlusE, onePlusE));
            var grad = L.Select(large, tail, L.Sub(one, L.Mul(t, t)));
            return L.Fma(dy, grad, dx);
        }
    }
}
