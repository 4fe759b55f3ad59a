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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var keep = Vector512.GreaterThanOrEqual(x, Vector512.Create(Lo));
        x = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(Lo)), Vector512.Create(Hi));
        var k = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(Magic));
        var n = k - Vector512.Create(Magic);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        var y = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        var scale = (Vector512.ShiftLeft(k.AsInt32(), 23) + Vector512.Create(0x3F800000)).AsSingle();
        return (y * scale) & keep;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var keep = Vector256.GreaterThanOrEqual(x, Vector256.Create(Lo));
        x = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(Lo)), Vector256.Create(Hi));
        var k = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(Magic));
        var n = k - Vector256.Create(Magic);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        var y = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var scale = (Vector256.ShiftLeft(k.AsInt32(), 23) + Vector256.Create(0x3F800000)).AsSingle();
        return (y * scale) & keep;
    }
}
