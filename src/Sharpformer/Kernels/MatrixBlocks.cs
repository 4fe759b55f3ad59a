using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>Small register-blocked data moves the kernels share (packing B for GEMM, K and V for attention).</summary>
internal static unsafe class MatrixBlocks
{
    /// <summary>dst[c*dstStride + r] = src[r*srcStride + c] for an 8x8 block: two unpack stages and a 128-bit lane swap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8x8(float* src, long srcStride, float* dst, long dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + srcStride);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * srcStride), r3 = Avx.LoadVector256(src + 3 * srcStride);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * srcStride), r5 = Avx.LoadVector256(src + 5 * srcStride);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * srcStride), r7 = Avx.LoadVector256(src + 7 * srcStride);
        // Interleave pairs of rows (32-bit), then pairs of pairs (64-bit): each 128-bit lane holds a 4x4 transposed.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        // Rows 0-3 supply the low 128 bits of each output, rows 4-7 the high.
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// dst[p·width + q] = src[q·srcStride + p] for q &lt; rows, p &lt; depth, and zeros for q in [rows, width):
    /// rows of a matrix packed as one column panel, depth-major: GEMM's panels of a transposed B, the decode
    /// steps' packed weights, attention's per-head transposed K and V. Whole 8x8 blocks are transposed in registers; the
    /// depth and row tails are copied one by one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the decode weights are packed a few times per run: no slow first tier
    public static void PackRowsAsPanel(float* src, long srcStride, int rows, int depth, float* dst, int width)
    {
        if (rows < width)
            for (int p = 0; p < depth; p++) new Span<float>(dst + p * width + rows, width - rows).Clear();
        int q = 0, p8 = depth / 8 * 8;
        if (Avx.IsSupported && p8 > 0)
            for (; q + 8 <= rows; q += 8)
            {
                float* s = src + q * srcStride;
                for (int p = 0; p < p8; p += 8) Transpose8x8(s + p, srcStride, dst + p * width + q, width);
                for (int p = p8; p < depth; p++)
                    for (int r = 0; r < 8; r++) dst[p * width + q + r] = s[r * srcStride + p];
            }
        for (; q < rows; q++)
        {
            float* s = src + q * srcStride, col = dst + q;
            int p = 0;
            for (; p + 4 <= depth; p += 4)
            {
                col[p * width] = s[p];
                col[(p + 1) * width] = s[p + 1];
                col[(p + 2) * width] = s[p + 2];
                col[(p + 3) * width] = s[p + 3];
            }
            for (; p < depth; p++) col[p * width] = s[p];
        }
    }
}
