using Sharpformer.Autograd;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Autograd;

/// <summary>Backward through the tape vs central finite differences of the same float32 forward.</summary>
public static class GradCheck
{
    public static Tensor Random(Random rng, float scale, params int[] shape)
    {
        var t = Tensor.Leaf(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return t;
    }

    public static Tensor Constant(Random rng, params int[] shape)
    {
        var t = new Tensor(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    /// <summary>
    /// Checks d loss / d input for every element of every input. loss() builds a scalar with Ops; it runs once
    /// under Graph.Record (analytic) and twice per element under Graph.NoGrad (numeric, step eps).
    /// Passes when |analytic - numeric| &lt;= atol + rtol·|numeric| for every element.
    /// </summary>
    public static void Check(Func<Tensor> loss, Tensor[] inputs, float eps = 1e-2f, double atol = 2e-3, double rtol = 1e-2)
    {
        foreach (var x in inputs) x.Grad!.Span.Clear();
        using (Graph.Record())
        {
            var l = loss();
            l.Backward();
        }
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            var analytic = x.Grad!.ToArray();
            var v = x.Span;
            for (int i = 0; i < v.Length; i++)
            {
                float keep = v[i];
                v[i] = keep + eps;
                double plus = Eval(loss);
                v[i] = keep - eps;
                double minus = Eval(loss);
                v[i] = keep;
                double numeric = (plus - minus) / (2 * eps);
                double err = Math.Abs(analytic[i] - numeric);
                Assert.True(err <= atol + rtol * Math.Abs(numeric),
                    $"input {k} {x.ShapeText} element {i}: analytic {analytic[i]:G6}, numeric {numeric:G6} (error {err:G3})");
            }
        }
    }

    static double Eval(Func<Tensor> loss)
    {
        using (Graph.NoGrad()) return loss().Item;
    }
}
