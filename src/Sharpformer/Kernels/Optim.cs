using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>AdamW update and the sum of squares behind global-norm clipping.</summary>
public static unsafe class Optim
{
    const int Chunk = 4096;

    /// <summary>
    /// One AdamW step for one parameter tensor, as torch.optim.AdamW: p -= lr*wd*p (decoupled decay);
    /// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps). t is 1-based.
    /// Vector and scalar lanes do the same IEEE operations in the same order (no fused multiply-add), so the
    /// result is identical on either SIMD path.
    /// </summary>
    public static void AdamW(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        if (grad.Length != param.Length || m.Length != param.Length || v.Length != param.Length)
            throw new ArgumentException($"AdamW: param holds {param.Length} floats, grad {grad.Length}, m {m.Length}, v {v.Length}; they must match.");
        if (step < 1) throw new ArgumentException($"AdamW: step is 1-based, got {step}.");
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2), decay = 1 - lr * weightDecay;
        float b1c = 1 - beta1, b2c = 1 - beta2;
        int n = param.Length, i = 0;
        fixed (float* p = param, g = grad, pm = m, pv = v)
        {
            if (Vector512.IsHardwareAccelerated && Simd.Use512)
            {
                for (; i + 16 <= n; i += 16)
                {
                    var gi = Vector512.Load(g + i);
                    var mi = Vector512.Load(pm + i) * beta1 + gi * b1c;
                    var vi = Vector512.Load(pv + i) * beta2 + gi * gi * b2c;
                    var pi = Vector512.Load(p + i) * decay;
                    pi -= mi * stepSize / (Vector512.Sqrt(vi) / bc2Sqrt + Vector512.Create(eps));
                    mi.Store(pm + i); vi.Store(pv + i); pi.Store(p + i);
                }
            }
            for (; i + 8 <= n; i += 8)
            {
                var gi = Vector256.Load(g + i);
                var mi = Vector256.Load(pm + i) * beta1 + gi * b1c;
                var vi = Vector256.Load(pv + i) * beta2 + gi * gi * b2c;
                var pi = Vector256.Load(p + i) * decay;
                pi -= mi * stepSize / (Vector256.Sqrt(vi) / bc2Sqrt + Vector256.Create(eps));
                mi.Store(pm + i); vi.Store(pv + i); pi.Store(p + i);
            }
            for (; i < n; i++)
            {
                float gi = g[i];
                float mi = pm[i] * beta1 + gi * b1c;
                float vi = pv[i] * beta2 + gi * gi * b2c;
                float pi = p[i] * decay;
                pi -= mi * stepSize / (MathF.Sqrt(vi) / bc2Sqrt + eps);
                pm[i] = mi; pv[i] = vi; p[i] = pi;
            }
        }
    }

    /// <summary>Sum of squares: float sums over fixed chunks of 4096, added in order in double — deterministic.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i += Chunk)
            s += TensorPrimitives.SumOfSquares(x.Slice(i, Math.Min(Chunk, x.Length - i)));
        return s;
    }
}
