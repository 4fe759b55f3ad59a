namespace Sharpformer.Kernels;

/// <summary>AdamW update and gradient-norm pieces. CONTRACT STUB: naive and correct.</summary>
public static class Optim
{
    /// <summary>
    /// One AdamW step for one parameter tensor, as torch.optim.AdamW: p -= lr*wd*p (decoupled decay);
    /// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps). t is 1-based.
    /// </summary>
    public static void AdamW(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        float stepSize = (float)(lr / bc1);
        float bc2Sqrt = (float)Math.Sqrt(bc2);
        for (int i = 0; i < param.Length; i++)
        {
            float g = grad[i];
            param[i] *= 1 - lr * weightDecay;
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            param[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / bc2Sqrt + eps);
        }
    }

    /// <summary>Sum of squares in double, in a fixed order (deterministic).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (var t in x) s += (double)t * t;
        return s;
    }
}
