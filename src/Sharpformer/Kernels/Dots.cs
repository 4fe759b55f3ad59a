using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Dot products of one or two vectors with rows of a matrix, for the kernels of a decode step: GEMM's
/// dot-product path (rows of a weight matrix) and decode attention (rows of the key cache). Every result is one
/// vector accumulator along the rows, its lanes summed in <see cref="ILanes{V}.Sum"/>'s order, then the scalar
/// tail, so which of these computes it never changes it.
/// </summary>
internal static unsafe class Dots
{
    /// <summary>x·y over n floats: one vector accumulator, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float One<V, L>(float* x, float* y, int n) where V : struct where L : struct, ILanes<V>
    {
        V acc = default;
        int i = 0, w = L.Count;
        for (; i + w <= n; i += w) acc = L.Fma(L.Load(x + i), L.Load(y + i), acc);
        float result = L.Sum(acc);
        for (; i < n; i++) result += x[i] * y[i];
        return result;
    }

    /// <summary>
    /// sums[r] += x·row_r for the four rows starting at rows, stride floats apart (n floats each): one pass over
    /// x, four independent accumulators (so four FMA chains overlap), then their horizontal sums together
    /// (<see cref="ILanes{V}.Sum4"/>, each as <see cref="ILanes{V}.Sum"/> would give it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Four<V, L>(float* x, float* rows, long stride, int n, float* sums) where V : struct where L : struct, ILanes<V>
    {
        float* r0 = rows, r1 = rows + stride, r2 = r1 + stride, r3 = r2 + stride;
        V s0 = default, s1 = default, s2 = default, s3 = default;
        int i = 0, w = L.Count;
        for (; i + w <= n; i += w)
        {
            V xv = L.Load(x + i);
            s0 = L.Fma(xv, L.Load(r0 + i), s0);
            s1 = L.Fma(xv, L.Load(r1 + i), s1);
            s2 = L.Fma(xv, L.Load(r2 + i), s2);
            s3 = L.Fma(xv, L.Load(r3 + i), s3);
        }
        var t = L.Sum4(s0, s1, s2, s3);
        float t0 = t.GetElement(0), t1 = t.GetElement(1), t2 = t.GetElement(2), t3 = t.GetElement(3);
        for (; i < n; i++)
        {
            t0 += x[i] * r0[i]; t1 += x[i] * r1[i]; t2 += x[i] * r2[i]; t3 += x[i] * r3[i];
        }
        sums[0] += t0; sums[1] += t1; sums[2] += t2; sums[3] += t3;
    }

    /// <summary>
    /// <see cref="Four"/> for two vectors at once (cx[r] += x·b_r, cy[r] += y·b_r, rows k floats apart): each
    /// row load serves two FMAs. Every accumulator sums in Four's order, so a result does not depend on
    /// whether its vector was paired.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TwoByFour<V, L>(float* x, float* y, float* b, int k, float* cx, float* cy) where V : struct where L : struct, ILanes<V>
    {
        float* b0 = b, b1 = b + k, b2 = b + 2 * k, b3 = b + 3 * k;
        V s0 = default, s1 = default, s2 = default, s3 = default, t0 = default, t1 = default, t2 = default, t3 = default;
        int p = 0, w = L.Count;
        for (; p + w <= k; p += w)
        {
            V xv = L.Load(x + p), yv = L.Load(y + p), v;
            v = L.Load(b0 + p); s0 = L.Fma(xv, v, s0); t0 = L.Fma(yv, v, t0);
            v = L.Load(b1 + p); s1 = L.Fma(xv, v, s1); t1 = L.Fma(yv, v, t1);
            v = L.Load(b2 + p); s2 = L.Fma(xv, v, s2); t2 = L.Fma(yv, v, t2);
            v = L.Load(b3 + p); s3 = L.Fma(xv, v, s3); t3 = L.Fma(yv, v, t3);
        }
        Vector128<float> sx = L.Sum4(s0, s1, s2, s3), sy = L.Sum4(t0, t1, t2, t3);
        float u0 = sx.GetElement(0), u1 = sx.GetElement(1), u2 = sx.GetElement(2), u3 = sx.GetElement(3);
        float v0 = sy.GetElement(0), v1 = sy.GetElement(1), v2 = sy.GetElement(2), v3 = sy.GetElement(3);
        for (; p < k; p++)
        {
            u0 += x[p] * b0[p]; u1 += x[p] * b1[p]; u2 += x[p] * b2[p]; u3 += x[p] * b3[p];
            v0 += y[p] * b0[p]; v1 += y[p] * b1[p]; v2 += y[p] * b2[p]; v3 += y[p] * b3[p];
        }
        cx[0] += u0; cx[1] += u1; cx[2] += u2; cx[3] += u3;
        cy[0] += v0; cy[1] += v1; cy[2] += v2; cy[3] += v3;
    }
}
