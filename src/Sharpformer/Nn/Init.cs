using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// Deterministic parameter initialisation: a SplitMix64 stream turned into normals by Box-Muller, so a seed
/// gives the same weights on every machine and .NET version.
/// </summary>
public sealed class InitRng(ulong seed)
{
    ulong state = seed;
    double spare;
    bool hasSpare;

    ulong NextUInt64() => SplitMix64.Next(ref state);

    /// <summary>Uniform in (0, 1].</summary>
    public double NextUniform() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

    public double NextNormal()
    {
        if (hasSpare)
        {
            hasSpare = false;
            return spare;
        }
        double r = Math.Sqrt(-2 * Math.Log(NextUniform())), theta = 2 * Math.PI * NextUniform();
        spare = r * Math.Sin(theta);
        hasSpare = true;
        return r * Math.Cos(theta);
    }

    public void Normal(Span<float> values, double std)
    {
        for (int i = 0; i < values.Length; i++) values[i] = (float)(NextNormal() * std);
    }

    /// <summary>
    /// BERT's and ViT's init (Hugging Face _init_weights): biases 0, other 1-D parameters (LayerNorm gains) 1, and
    /// every matrix, embedding and token N(0, std), in parameter order.
    /// </summary>
    public void Encoder(IEnumerable<Parameter> parameters, double std = 0.02)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var p in parameters)
        {
            var s = p.Value.Span;
            if (p.Name.EndsWith(".bias", StringComparison.Ordinal)) s.Clear();
            else if (p.Shape.Length == 1) s.Fill(1f);
            else Normal(s, std);
        }
    }
}
