using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>Which vector width the hand-written kernels use.</summary>
public enum SimdPath { Vector512, Vector256 }

/// <summary>
/// The SIMD path chosen at start-up: Vector512 where the CPU accelerates it, else Vector256.
/// SHARPFORMER_SIMD=256 forces the Vector256 fallback (tests flip <see cref="Path"/> to cover both).
/// </summary>
public static class Simd
{
    public static readonly SimdPath Best = Vector512.IsHardwareAccelerated ? SimdPath.Vector512 : SimdPath.Vector256;

    /// <summary>The path kernels take now. Settable so tests can run both paths in one process.</summary>
    public static SimdPath Path { get; set; } =
        Environment.GetEnvironmentVariable("SHARPFORMER_SIMD") == "256" ? SimdPath.Vector256 : Best;

    public static bool Use512 => Path == SimdPath.Vector512;
}

/// <summary>
/// One vector width as a type, so a kernel is written once as a generic method over it and the JIT emits a
/// specialised copy per width (as the operator structs of System.Numerics.Tensors).
/// </summary>
internal unsafe interface ILanes<V> where V : struct
{
    static abstract int Count { get; }
    static abstract V Load(float* p);
    static abstract void Store(V x, float* p);
    static abstract V Splat(float x);
    static abstract V Fma(V a, V b, V c);
    static abstract V Add(V a, V b);
    static abstract V Sub(V a, V b);
    static abstract V Mul(V a, V b);
    static abstract V Max(V a, V b);
    static abstract V Div(V a, V b);
    static abstract V Sqrt(V x);
    static abstract V Abs(V x);
    /// <summary>min/max by the instruction's own rules for NaN and signed zero: one instruction, unlike <see cref="Max"/>.</summary>
    static abstract V MinNative(V a, V b);
    static abstract V MaxNative(V a, V b);
    static abstract V And(V a, V b);
    /// <summary>Lanes of <paramref name="a"/> where <paramref name="mask"/> is set, else of <paramref name="b"/>.</summary>
    static abstract V Select(V mask, V a, V b);
    static abstract V LessThan(V a, V b);
    static abstract V GreaterThan(V a, V b);
    static abstract V GreaterThanOrEqual(V a, V b);
    /// <summary>A mask of the lanes whose index is at least <paramref name="first"/>.</summary>
    static abstract V LanesFrom(int first);
    /// <summary>As int32 lanes, (x &lt;&lt; shift) + add: builds a float's exponent bits.</summary>
    static abstract V Int32ShiftLeftAdd(V x, int shift, int add);
    /// <summary><see cref="FastMath"/>'s exp: the same bits per lane at either width.</summary>
    static abstract V Exp(V x);
    /// <summary>
    /// The lanes' sum in a fixed order: halves folded onto each other down to four lanes, then
    /// (x0 + x2) + (x1 + x3). <see cref="Sum4"/> adds in exactly this order, four vectors at a time.
    /// </summary>
    static abstract float Sum(V x);
    /// <summary>[Sum(a), Sum(b), Sum(c), Sum(d)], bit for bit, sharing the shuffles of the four folds.</summary>
    static abstract Vector128<float> Sum4(V a, V b, V c, V d);
    static abstract float MaxAcross(V x);
    /// <summary>
    /// Vector512.Sum / Vector256.Sum: the library's lane order, which differs from <see cref="Sum"/>'s. Kernels
    /// whose results predate <see cref="Sum"/> keep it, so their bits do not change.
    /// </summary>
    static abstract float LibrarySum(V x);
    /// <summary>The lanes' maximum by <see cref="MaxNative"/> down to four lanes, then max((x0, x1), (x2, x3)).</summary>
    static abstract float MaxNativeAcross(V x);
}

internal unsafe struct Lanes512 : ILanes<Vector512<float>>
{
    public static int Count => 16;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> x, float* p) => Vector512.Store(x, p);
    public static Vector512<float> Splat(float x) => Vector512.Create(x);
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    public static Vector512<float> Sqrt(Vector512<float> x) => Vector512.Sqrt(x);
    public static Vector512<float> Abs(Vector512<float> x) => Vector512.Abs(x);
    public static Vector512<float> MinNative(Vector512<float> a, Vector512<float> b) => Vector512.MinNative(a, b);
    public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    public static Vector512<float> And(Vector512<float> a, Vector512<float> b) => a & b;
    public static Vector512<float> Select(Vector512<float> mask, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(mask, a, b);
    public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);
    public static Vector512<float> GreaterThan(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThan(a, b);
    public static Vector512<float> GreaterThanOrEqual(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThanOrEqual(a, b);
    public static Vector512<float> LanesFrom(int first) =>
        Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(first)).AsSingle();
    public static Vector512<float> Int32ShiftLeftAdd(Vector512<float> x, int shift, int add) =>
        (Vector512.ShiftLeft(x.AsInt32(), shift) + Vector512.Create(add)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) => FastMath.Exp<Vector512<float>, Lanes512>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> x) => Lanes256.Sum(x.GetLower() + x.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        if (!Avx512F.IsSupported) return Vector128.Create(Sum(a), Sum(b), Sum(c), Sum(d));
        // 512 -> 256 for two vectors per add: [a0+a2, a1+a3, b0+b2, b1+b3] in 128-bit blocks.
        var ab = Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10);
        var cd = Avx512F.Shuffle4x128(c, d, 0b01_00_01_00) + Avx512F.Shuffle4x128(c, d, 0b11_10_11_10);
        // 256 -> 128 for all four: blocks [a, b, c, d].
        var q = Avx512F.Shuffle4x128(ab, cd, 0b10_00_10_00) + Avx512F.Shuffle4x128(ab, cd, 0b11_01_11_01);
        // Within each block (x0 + x2) + (x1 + x3) lands in its first lane.
        var t = q + Avx512F.Permute4x32(q, 0b01_00_11_10);
        t += Avx512F.Permute4x32(t, 0b10_11_00_01);
        return Avx512F.PermuteVar16x32(t, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
    }

    public static float MaxAcross(Vector512<float> x) => Lanes256.MaxAcross(Vector256.Max(x.GetLower(), x.GetUpper()));
    public static float LibrarySum(Vector512<float> x) => Vector512.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxNativeAcross(Vector512<float> x) => Lanes256.MaxNativeAcross(Vector256.MaxNative(x.GetLower(), x.GetUpper()));
}

internal unsafe struct Lanes256 : ILanes<Vector256<float>>
{
    public static int Count => 8;
    public static Vector256<float> Load(float* p) => Vector256.Load(p);
    public static void Store(Vector256<float> x, float* p) => Vector256.Store(x, p);
    public static Vector256<float> Splat(float x) => Vector256.Create(x);
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    public static Vector256<float> Abs(Vector256<float> x) => Vector256.Abs(x);
    public static Vector256<float> MinNative(Vector256<float> a, Vector256<float> b) => Vector256.MinNative(a, b);
    public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    public static Vector256<float> And(Vector256<float> a, Vector256<float> b) => a & b;
    public static Vector256<float> Select(Vector256<float> mask, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(mask, a, b);
    public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);
    public static Vector256<float> GreaterThan(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThan(a, b);
    public static Vector256<float> GreaterThanOrEqual(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThanOrEqual(a, b);
    public static Vector256<float> LanesFrom(int first) =>
        Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(first)).AsSingle();
    public static Vector256<float> Int32ShiftLeftAdd(Vector256<float> x, int shift, int add) =>
        (Vector256.ShiftLeft(x.AsInt32(), shift) + Vector256.Create(add)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x) => FastMath.Exp<Vector256<float>, Lanes256>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> x) => Sum(x.GetLower() + x.GetUpper());

    /// <summary>Four lanes as (x0 + x2) + (x1 + x3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Sum(Vector128<float> q)
    {
        var t = q + Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1));
        return t.ToScalar() + t.GetElement(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
    {
        if (!Avx.IsSupported) return Vector128.Create(Sum(a), Sum(b), Sum(c), Sum(d));
        // 256 -> 128 for two vectors per add: [a, b] and [c, d] in 128-bit blocks.
        var ab = Avx.Permute2x128(a, b, 0x20) + Avx.Permute2x128(a, b, 0x31);
        var cd = Avx.Permute2x128(c, d, 0x20) + Avx.Permute2x128(c, d, 0x31);
        // Within each block (x0 + x2) + (x1 + x3) lands in its first lane.
        ab += Avx.Permute(ab, 0b01_00_11_10);
        ab += Avx.Permute(ab, 0b10_11_00_01);
        cd += Avx.Permute(cd, 0b01_00_11_10);
        cd += Avx.Permute(cd, 0b10_11_00_01);
        return Vector128.Create(ab.ToScalar(), ab.GetElement(4), cd.ToScalar(), cd.GetElement(4));
    }

    public static float MaxAcross(Vector256<float> x)
    {
        var m = Vector128.Max(x.GetLower(), x.GetUpper());
        return MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
    }

    public static float LibrarySum(Vector256<float> x) => Vector256.Sum(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxNativeAcross(Vector256<float> x)
    {
        var m = Vector128.MaxNative(x.GetLower(), x.GetUpper());
        return MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
    }
}
