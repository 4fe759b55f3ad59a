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

    ulong NextUInt64()
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

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
}
