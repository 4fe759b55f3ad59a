using System.Numerics.Tensors;
using Sharpformer.Kernels;
using Sharpformer.Nn;

namespace Sharpformer.Training;

/// <summary>Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_.</summary>
public static class GradientClipping
{
    /// <summary>Returns the global L2 norm of all gradients; scales them down to <paramref name="maxNorm"/> if above it (0 disables clipping).</summary>
    public static float ClipGlobalNorm(IReadOnlyList<Parameter> parameters, float maxNorm)
    {
        double sumSquares = 0;
        foreach (var p in parameters) sumSquares += Optim.SumOfSquares(p.Grad.Span);
        float norm = (float)Math.Sqrt(sumSquares);
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = maxNorm / (norm + 1e-6f); // torch adds 1e-6 the same way
            foreach (var p in parameters) TensorPrimitives.Multiply(p.Grad.Span, scale, p.Grad.Span);
        }
        return norm;
    }
}
