using Sharpformer.Kernels;
using Sharpformer.Nn;

namespace Sharpformer.Training;

/// <summary>
/// AdamW over a model's parameters with nanoGPT's two groups: weight decay on parameters of two or more
/// dimensions (matmul weights, embeddings), none on biases and LayerNorm gains, nor on those a model exempts
/// (<see cref="Models.Model.DecaysWeight"/>). Moments are kept per
/// parameter, by name, so they can be saved and restored for an exact resume.
/// </summary>
public sealed class AdamW
{
    readonly IReadOnlyList<Parameter> parameters;
    readonly float[][] m, v;
    readonly bool[] decays;

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    public float WeightDecay { get; }
    /// <summary>Updates taken so far (bias correction uses Step + 1 for the next one).</summary>
    public int Step { get; set; }

    /// <summary>Whether parameter i (in the order given) takes weight decay.</summary>
    public bool Decays(int i) => decays[i];

    /// <param name="decays">Which parameters take weight decay; by default those of rank ≥ 2 (<see cref="Parameter.Decay"/>).</param>
    public AdamW(IReadOnlyList<Parameter> parameters, float beta1, float beta2, float weightDecay, float epsilon = 1e-8f, Func<Parameter, bool>? decays = null)
    {
        this.parameters = parameters;
        this.decays = parameters.Select(decays ?? (p => p.Decay)).ToArray();
        Beta1 = beta1; Beta2 = beta2; WeightDecay = weightDecay; Epsilon = epsilon;
        m = parameters.Select(p => new float[p.Value.Length]).ToArray();
        v = parameters.Select(p => new float[p.Value.Length]).ToArray();
    }

    /// <summary>One update of every parameter from its gradient at learning rate <paramref name="lr"/>.</summary>
    public void Update(float lr)
    {
        Step++;
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            Optim.AdamW(p.Value.Span, p.Grad.Span, m[i], v[i], lr, Beta1, Beta2, Epsilon, decays[i] ? WeightDecay : 0f, Step);
        }
    }

    /// <summary>The first and second moments of every parameter, by parameter name.</summary>
    public IEnumerable<(string Name, int[] Shape, float[] M, float[] V)> Moments()
    {
        for (int i = 0; i < parameters.Count; i++) yield return (parameters[i].Name, parameters[i].Shape, m[i], v[i]);
    }

    /// <summary>Restores moments saved by <see cref="Moments"/>; every parameter must be present with its size.</summary>
    public void LoadMoments(Func<string, (float[] M, float[] V)?> lookup)
    {
        for (int i = 0; i < parameters.Count; i++)
        {
            var saved = lookup(parameters[i].Name)
                ?? throw new InvalidDataException($"The optimizer state has no moments for '{parameters[i].Name}'.");
            if (saved.M.Length != m[i].Length || saved.V.Length != v[i].Length)
                throw new InvalidDataException($"The optimizer moments for '{parameters[i].Name}' hold {saved.M.Length} values, expected {m[i].Length}.");
            saved.M.CopyTo(m[i], 0);
            saved.V.CopyTo(v[i], 0);
        }
    }
}
