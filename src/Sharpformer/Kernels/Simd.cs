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
