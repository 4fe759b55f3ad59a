using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// GELU in GPT-2's tanh form, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), and in the exact erf form
/// nanoGPT's nn.GELU() uses, 0.5x(1 + erf(x/sqrt 2)); ReLU. Backwards add into dx.
/// Each is one fused SIMD pass (Vector512, or Vector256 on the fallback path), split over threads in
/// fixed chunks for large inputs.
/// </summary>
public static unsafe class Activations
{
    const float C0 = 0.7978845608028654f; // sqrt(2/pi)
    const float C1 = 0.044715f;
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    const int Chunk = 16384;

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.GeluTanh);
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Run(x, dy, dx, Op.GeluTanhBackward);
    public static void GeluErfForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.GeluErf);
    public static void GeluErfBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Run(x, dy, dx, Op.GeluErfBackward);
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y) => Run(x, default, y, Op.Relu);
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Run(x, dy, dx, Op.ReluBackward);

    enum Op { GeluTanh, GeluTanhBackward, GeluErf, GeluErfBackward, Relu, ReluBackward }

    static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> result, Op op)
    {
        bool backward = op is Op.GeluTanhBackward or Op.GeluErfBackward or Op.ReluBackward;
        if (result.Length != x.Length || (backward && dy.Length != x.Length))
            throw new ArgumentException($"Activation: x holds {x.Length} floats, {(backward ? $"dy {dy.Length}, dx" : "y")} {result.Length}; they must match.");
        fixed (float* px = x, pdy = dy, pr = result)
        {
            int n = x.Length;
            if (n <= 4 * Chunk)
            {
                Apply(px, pdy, pr, n, op);
                return;
            }
            var job = new Job(px, pdy, pr, n, op);
            Parallelism.For((n + Chunk - 1) / Chunk, job.Run);
        }
    }

    sealed class Job(float* x, float* dy, float* r, int n, Op op)
    {
        public void Run(int chunk)
        {
            int start = chunk * Chunk;
            Apply(x + start, dy == null ? null : dy + start, r + start, Math.Min(Chunk, n - start), op);
        }
    }

    static void Apply(float* x, float* dy, float* r, int n, Op op)
    {
        int i = 0;
        if (Simd.Use512 && Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                switch (op)
                {
                    case Op.GeluTanh: Vector512.Store(GeluTanh(v), r + i); break;
                    case Op.GeluErf: Vector512.Store(GeluErf(v), r + i); break;
                    case Op.Relu: Vector512.Store(Vector512.Max(v, Vector512<float>.Zero), r + i); break;
                    case Op.GeluTanhBackward: Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(dy + i), GeluTanhGrad(v), Vector512.Load(r + i)), r + i); break;
                    case Op.GeluErfBackward: Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(dy + i), GeluErfGrad(v), Vector512.Load(r + i)), r + i); break;
                    default:
                        var keep = Vector512.GreaterThan(v, Vector512<float>.Zero);
                        Vector512.Store(Vector512.Load(r + i) + (Vector512.Load(dy + i) & keep), r + i);
                        break;
                }
            }
        }
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i);
            switch (op)
            {
                case Op.GeluTanh: Vector256.Store(GeluTanh(v), r + i); break;
                case Op.GeluErf: Vector256.Store(GeluErf(v), r + i); break;
                case Op.Relu: Vector256.Store(Vector256.Max(v, Vector256<float>.Zero), r + i); break;
                case Op.GeluTanhBackward: Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dy + i), GeluTanhGrad(v), Vector256.Load(r + i)), r + i); break;
                case Op.GeluErfBackward: Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dy + i), GeluErfGrad(v), Vector256.Load(r + i)), r + i); break;
                default:
                    var keep = Vector256.GreaterThan(v, Vector256<float>.Zero);
                    Vector256.Store(Vector256.Load(r + i) + (Vector256.Load(dy + i) & keep), r + i);
                    break;
            }
        }
        // Tail through the 256-bit path on a padded copy, so every element sees the same arithmetic.
        if (i < n)
        {
            float* tx = stackalloc float[8], tdy = stackalloc float[8], tr = stackalloc float[8];
            int rest = n - i;
            for (int j = 0; j < 8; j++) { tx[j] = j < rest ? x[i + j] : 0; tdy[j] = dy != null && j < rest ? dy[i + j] : 0; tr[j] = j < rest ? r[i + j] : 0; }
            Apply256Once(tx, tdy, tr, op);
            for (int j = 0; j < rest; j++) r[i + j] = tr[j];
        }
    }

    static void Apply256Once(float* x, float* dy, float* r, Op op)
    {
        var v = Vector256.Load(x);
        switch (op)
        {
            case Op.GeluTanh: Vector256.Store(GeluTanh(v), r); break;
            case Op.GeluErf: Vector256.Store(GeluErf(v), r); break;
            case Op.Relu: Vector256.Store(Vector256.Max(v, Vector256<float>.Zero), r); break;
            case Op.GeluTanhBackward: Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dy), GeluTanhGrad(v), Vector256.Load(r)), r); break;
            case Op.GeluErfBackward: Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dy), GeluErfGrad(v), Vector256.Load(r)), r); break;
            default:
                var keep = Vector256.GreaterThan(v, Vector256<float>.Zero);
                Vector256.Store(Vector256.Load(r) + (Vector256.Load(dy) & keep), r);
                break;
        }
    }

    // tanh(u) = 1 - 2/(exp(2u) + 1), with u clamped so exp stays finite.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Tanh(Vector512<float> u)
    {
        var e = Vector512.Exp(Vector512.Min(Vector512.Max(u, Vector512.Create(-15f)), Vector512.Create(15f)) * 2f);
        return Vector512<float>.One - Vector512.Create(2f) / (e + Vector512<float>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Tanh(Vector256<float> u)
    {
        var e = Vector256.Exp(Vector256.Min(Vector256.Max(u, Vector256.Create(-15f)), Vector256.Create(15f)) * 2f);
        return Vector256<float>.One - Vector256.Create(2f) / (e + Vector256<float>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> GeluTanh(Vector512<float> x)
    {
        var t = Tanh(x * Vector512.FusedMultiplyAdd(x * x, Vector512.Create(C0 * C1), Vector512.Create(C0)));
        return x * 0.5f * (Vector512<float>.One + t);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluTanh(Vector256<float> x)
    {
        var t = Tanh(x * Vector256.FusedMultiplyAdd(x * x, Vector256.Create(C0 * C1), Vector256.Create(C0)));
        return x * 0.5f * (Vector256<float>.One + t);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> GeluTanhGrad(Vector512<float> x)
    {
        var x2 = x * x;
        var t = Tanh(x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(C0 * C1), Vector512.Create(C0)));
        var du = Vector512.FusedMultiplyAdd(x2, Vector512.Create(3 * C0 * C1), Vector512.Create(C0));
        return 0.5f * (Vector512<float>.One + t) + 0.5f * x * (Vector512<float>.One - t * t) * du;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluTanhGrad(Vector256<float> x)
    {
        var x2 = x * x;
        var t = Tanh(x * Vector256.FusedMultiplyAdd(x2, Vector256.Create(C0 * C1), Vector256.Create(C0)));
        var du = Vector256.FusedMultiplyAdd(x2, Vector256.Create(3 * C0 * C1), Vector256.Create(C0));
        return 0.5f * (Vector256<float>.One + t) + 0.5f * x * (Vector256<float>.One - t * t) * du;
    }

    // erf by Abramowitz & Stegun 7.1.26 (max absolute error 1.5e-7), odd-extended to negative inputs.
    const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Erf(Vector512<float> z)
    {
        var a = Vector512.Abs(z);
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(a, Vector512.Create(P), Vector512<float>.One);
        var poly = Vector512.FusedMultiplyAdd(t, Vector512.Create(A5), Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(t, poly, Vector512.Create(A1));
        var e = Vector512<float>.One - poly * t * Vector512.Exp(-(a * a));
        return Vector512.CopySign(e, z);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Erf(Vector256<float> z)
    {
        var a = Vector256.Abs(z);
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(a, Vector256.Create(P), Vector256<float>.One);
        var poly = Vector256.FusedMultiplyAdd(t, Vector256.Create(A5), Vector256.Create(A4));
        poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A3));
        poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A2));
        poly = Vector256.FusedMultiplyAdd(t, poly, Vector256.Create(A1));
        var e = Vector256<float>.One - poly * t * Vector256.Exp(-(a * a));
        return Vector256.CopySign(e, z);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> GeluErf(Vector512<float> x) => x * 0.5f * (Vector512<float>.One + Erf(x * InvSqrt2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluErf(Vector256<float> x) => x * 0.5f * (Vector256<float>.One + Erf(x * InvSqrt2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> GeluErfGrad(Vector512<float> x) =>
        0.5f * (Vector512<float>.One + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * Vector512.Exp(x * x * -0.5f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluErfGrad(Vector256<float> x) =>
        0.5f * (Vector256<float>.One + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * Vector256.Exp(x * x * -0.5f);
}
