using System.Runtime.Intrinsics;

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
    /// <summary><see cref="FastMath"/>'s exp: the same bits per lane at either width.</summary>
    static abstract V Exp(V x);
    static abstract float Sum(V x);
    static abstract float MaxAcross(V x);
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
    public static Vector512<float> Exp(Vector512<float> x) => FastMath.Exp(x);
    public static float Sum(Vector512<float> x) => Vector512.Sum(x);
    public static float MaxAcross(Vector512<float> x) => Lanes256.MaxAcross(Vector256.Max(x.GetLower(), x.GetUpper()));
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
    public static Vector256<float> Exp(Vector256<float> x) => FastMath.Exp(x);
    public static float Sum(Vector256<float> x) => Vector256.Sum(x);
    public static float MaxAcross(Vector256<float> x)
    {
        var m = Vector128.Max(x.GetLower(), x.GetUpper());
        return MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
    }
}
