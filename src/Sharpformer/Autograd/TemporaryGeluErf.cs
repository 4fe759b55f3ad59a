namespace Sharpformer.Autograd;

// TEMPORARY: naive erf GELU until Kernels.Activations.GeluErfForward/GeluErfBackward land on main. Remove on rebase.
internal static class TemporaryGeluErf
{
    const double InvSqrt2 = 0.70710678118654752440;
    const double InvSqrt2Pi = 0.39894228040143267794;

    public static void GeluErfForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Erf(v * InvSqrt2)));
        }
    }

    public static void GeluErfBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double grad = 0.5 * (1 + Erf(v * InvSqrt2)) + v * InvSqrt2Pi * Math.Exp(-0.5 * v * v);
            dx[i] += (float)(dy[i] * grad);
        }
    }

    /// <summary>erf via the Numerical Recipes Chebyshev erfc (fractional error below 1.2e-7).</summary>
    static double Erf(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double erfc = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1 - erfc : erfc - 1;
    }
}
