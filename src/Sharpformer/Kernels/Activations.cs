namespace Sharpformer.Kernels;

/// <summary>
/// GELU (tanh form, as GPT-2: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))) and ReLU, forward and backward.
/// Backwards add into dx. CONTRACT STUB: naive and correct.
/// </summary>
public static class Activations
{
    const double C0 = 0.7978845608028654; // sqrt(2/pi)
    const double C1 = 0.044715;

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(C0 * (v + C1 * v * v * v))));
        }
    }

    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double t = Math.Tanh(C0 * (v + C1 * v * v * v));
            double grad = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * C0 * (1 + 3 * C1 * v * v);
            dx[i] += (float)(dy[i] * grad);
        }
    }

    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : 0;
    }

    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++) if (x[i] > 0) dx[i] += dy[i];
    }
}
