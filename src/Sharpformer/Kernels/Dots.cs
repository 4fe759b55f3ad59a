using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Dot products of one vector with rows of a matrix, for the kernels of a decode step: GEMM's dot-product path
/// (rows of a weight matrix) and decode attention (rows of the key cache).
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
}
