namespace Sharpformer.Kernels;

/// <summary>
/// General matrix multiply, row-major: C[m,n] = op(A)·op(B) (+ bias[n]) (+ C when accumulating).
/// A is [m,k], or [k,m] when transA; B is [k,n], or [n,k] when transB.
/// CONTRACT STUB: naive and correct; the optimised kernel replaces the body, not the signature.
/// </summary>
public static class Gemm
{
    public static void Multiply(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        int m, int k, int n,
        bool transA = false, bool transB = false,
        ReadOnlySpan<float> bias = default, bool accumulate = false)
    {
        Check(a.Length, b.Length, c.Length, bias.Length, m, k, n, transA, transB);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                if (!bias.IsEmpty) s += bias[j];
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    internal static void Check(int aLength, int bLength, int cLength, int biasLength, int m, int k, int n, bool transA, bool transB)
    {
        if (m < 0 || k < 0 || n < 0)
            throw new ArgumentException($"GEMM dimensions must be non-negative: m={m}, k={k}, n={n}.");
        if (aLength < (long)m * k)
            throw new ArgumentException($"GEMM: A holds {aLength} floats but op(A) is [{m}x{k}] ({(transA ? "transposed, stored [" + k + "x" + m + "]" : "stored [" + m + "x" + k + "]")}).", "a");
        if (bLength < (long)k * n)
            throw new ArgumentException($"GEMM: B holds {bLength} floats but op(B) is [{k}x{n}] ({(transB ? "transposed, stored [" + n + "x" + k + "]" : "stored [" + k + "x" + n + "]")}).", "b");
        if (cLength < (long)m * n)
            throw new ArgumentException($"GEMM: C holds {cLength} floats but must hold [{m}x{n}].", "c");
        if (biasLength != 0 && biasLength != n)
            throw new ArgumentException($"GEMM: bias holds {biasLength} floats but C has {n} columns.", "bias");
    }
}
