namespace Sharpformer.Kernels;

/// <summary>
/// LayerNorm over the last dimension of x [rows, cols]: y = (x - mean) * rstd * gamma (+ beta).
/// Forward saves mean and rstd (1/std) per row for the backward.
/// CONTRACT STUB: naive and correct; the optimised kernel replaces the bodies, not the signatures.
/// </summary>
public static class LayerNorm
{
    /// <param name="beta">Empty when the layer has no bias.</param>
    public static void Forward(
        ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps = 1e-5f)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            double m = 0; foreach (var t in row) m += t; m /= cols;
            double var = 0; foreach (var t in row) var += (t - m) * (t - m); var /= cols;
            double rs = 1.0 / Math.Sqrt(var + eps);
            mean[r] = (float)m; rstd[r] = (float)rs;
            for (int c = 0; c < cols; c++)
                y[r * cols + c] = (float)((row[c] - m) * rs * gamma[c] + (beta.IsEmpty ? 0 : beta[c]));
        }
    }

    /// <summary>Adds into dx, dgamma and dbeta (dbeta may be empty).</summary>
    public static void Backward(
        ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double m = mean[r], rs = rstd[r];
            double sumDyG = 0, sumDyGXhat = 0;
            for (int c = 0; c < cols; c++)
            {
                double xhat = (x[r * cols + c] - m) * rs;
                double g = dy[r * cols + c] * gamma[c];
                sumDyG += g; sumDyGXhat += g * xhat;
                dgamma[c] += (float)(dy[r * cols + c] * xhat);
                if (!dbeta.IsEmpty) dbeta[c] += dy[r * cols + c];
            }
            for (int c = 0; c < cols; c++)
            {
                double xhat = (x[r * cols + c] - m) * rs;
                double g = dy[r * cols + c] * gamma[c];
                dx[r * cols + c] += (float)(rs * (g - sumDyG / cols - xhat * sumDyGXhat / cols));
            }
        }
    }
}
