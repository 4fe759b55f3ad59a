using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// exp in float for the fused kernels (softmax, GELU). The library's Vector512.Exp widens to double and
/// costs about twice as much; this is Cephes' expf: n = round(x·log2 e), r = x − n·ln 2 in two parts,
/// a degree-6 polynomial for e^r on |r| ≤ ln2/2, times 2^n built in the exponent bits. Relative error
/// ≤ 2 ulp on [−87.3, 88.3]; below −87.3 (where e^x would be subnormal) it returns 0, including −∞;
/// above 88.3 it returns e^88.3. Every operation is IEEE-exact per lane (FMA, multiply, add, shift), so
/// the Vector512 and Vector256 forms give bit-identical lanes.
/// </summary>
static class FastMath
{
    const float Log2E = 1.44269504088896341f;
    const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    const float Magic = 12582912f; // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
    const float Lo = -87.33654f, Hi = 88.37626f; // n stays within [−126, 127], so 2^n is a normal float
    const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /// <summary>e^x per lane, at the width <typeparamref name="L"/> gives.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Exp<V, L>(V x) where V : struct where L : struct, ILanes<V>
    {
        var keep = L.GreaterThanOrEqual(x, L.Splat(Lo));
        x = L.MinNative(L.MaxNative(x, L.Splat(Lo)), L.Splat(Hi));
        var k = L.Fma(x, L.Splat(Log2E), L.Splat(Magic));
        var n = L.Sub(k, L.Splat(Magic));
        var r = L.Fma(n, L.Splat(-Ln2Hi), x);
        r = L.Fma(n, L.Splat(-Ln2Lo), r);
        var p = L.Fma(L.Splat(P0), r, L.Splat(P1));
        p = L.Fma(p, r, L.Splat(P2));
        p = L.Fma(p, r, L.Splat(P3));
        p = L.Fma(p, r, L.Splat(P4));
        p = L.Fma(p, r, L.Splat(P5));
        var y = L.Add(L.Fma(p, L.Mul(r, r), r), L.Splat(1f));
        var scale = L.Int32ShiftLeftAdd(k, 23, 0x3F800000); // 2^n: n sits in k's low mantissa bits
        return L.And(L.Mul(y, scale), keep);
    }
}
