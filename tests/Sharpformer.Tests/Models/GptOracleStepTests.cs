using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Kernels;
using Sharpformer.Models;

namespace Sharpformer.Tests.Models;

/// <summary>
/// A whole training step against PyTorch (tools/oracle/make_references.py): our forward, our backward, global-norm
/// clipping and AdamW straight from the kernels (Optim.SumOfSquares, Optim.AdamW), compared with the weights
/// PyTorch has after the same step. Independent of the Trainer.
/// </summary>
[Collection("Simd")]
public class GptOracleStepTests
{
    [Theory]
    [InlineData("gpt_small", SimdPath.Vector512)]
    [InlineData("gpt_small", SimdPath.Vector256)]
    [InlineData("gpt_small_nobias", SimdPath.Vector512)]
    [InlineData("gpt_small_nobias", SimdPath.Vector256)]
    public void OneTrainingStepMatchesPyTorch(string file, SimdPath path)
    {
        var saved = Simd.Path;
        Simd.Path = path;
        try { Step(file); }
        finally { Simd.Path = saved; }
    }

    static void Step(string file)
    {
        using var f = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", file + ".safetensors"));
        var c = JsonDocument.Parse(f.Metadata["config"]).RootElement;
        var model = new Gpt(new GptConfig
        {
            VocabSize = c.GetProperty("vocab_size").GetInt32(), BlockSize = c.GetProperty("block_size").GetInt32(),
            NLayer = c.GetProperty("n_layer").GetInt32(), NHead = c.GetProperty("n_head").GetInt32(), NEmbd = c.GetProperty("n_embd").GetInt32(),
            Bias = c.GetProperty("bias").GetBoolean(),
            Activation = c.GetProperty("activation").GetString() == "gelu_erf" ? Activation.GeluErf : Activation.GeluTanh,
        });
        foreach (var p in model.Parameters) f.ReadFloats("param." + p.Name, p.Value.Span);
        int[] idx = f.ReadInts("idx"), targets = f.ReadInts("targets");
        int B = f["idx"].Shape[0], T = f["idx"].Shape[1];
        float lr = c.GetProperty("lr").GetSingle(), clip = c.GetProperty("grad_clip").GetSingle();

        model.ZeroGrad();
        using (Graph.Record()) model.Loss(idx, targets, B, T).Backward(c.GetProperty("loss_scale").GetSingle());

        // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), applied when below 1.
        double sumSq = 0;
        foreach (var p in model.Parameters) sumSq += Optim.SumOfSquares(p.Grad.Span);
        float norm = (float)Math.Sqrt(sumSq);
        Assert.True(Math.Abs(norm - f.ReadFloats("grad_norm")[0]) <= 1e-4 * norm, $"grad norm {norm} vs {f.ReadFloats("grad_norm")[0]}");
        float coef = clip / (norm + 1e-6f);
        Assert.True(coef < 1, "the reference step must exercise clipping");

        float eps = c.GetProperty("eps").GetSingle();
        // Adam's first step moves a weight by lr·g/(|g| + eps) (m̂ = g, v̂ = g²): the gradient tolerance δ, pushed
        // through that function, bounds how far the step may differ. It matters only where |g| is near zero.
        double Update(double g) => lr * g / (Math.Abs(g) + eps);
        int widened = 0, total = 0;
        foreach (var p in model.Parameters)
        {
            var g = p.Grad.Span;
            System.Numerics.Tensors.TensorPrimitives.Multiply(g, coef, g);
            var m = new float[p.Length];
            var v = new float[p.Length];
            Optim.AdamW(p.Value.Span, g, m, v, lr, c.GetProperty("beta1").GetSingle(), c.GetProperty("beta2").GetSingle(),
                eps, p.Decay ? c.GetProperty("weight_decay").GetSingle() : 0f, step: 1);

            float[] expected = f.ReadFloats("after." + p.Name), refGrad = f.ReadFloats("grad." + p.Name);
            float scale = 0, gradScale = 0;
            foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
            foreach (var e in refGrad) gradScale = Math.Max(gradScale, Math.Abs(e));
            var got = p.Value.Span;
            for (int i = 0; i < expected.Length; i++)
            {
                total++;
                double err = Math.Abs(got[i] - expected[i]);
                double tolerance = 1e-4 * Math.Abs(expected[i]) + 1e-5 * scale;
                if (err <= tolerance) continue;
                double gr = refGrad[i] * (double)coef, delta = (1e-4 * Math.Abs(refGrad[i]) + 1e-5 * gradScale) * coef;
                tolerance += Math.Abs(Update(gr + delta) - Update(gr - delta));
                Assert.True(err <= tolerance,
                    $"after.{p.Name}[{i}] = {got[i]}, PyTorch {expected[i]} (clipped gradient {gr:g3}, tolerance {tolerance:g3})");
                widened++;
            }
        }
        Assert.True(widened <= total / 500, $"{widened} of {total} weights needed the near-zero-gradient tolerance");
    }
}
