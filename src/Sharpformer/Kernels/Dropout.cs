namespace Sharpformer.Kernels;

/// <summary>
/// Inverted dropout with a counter-based generator: element i is kept iff hash(seed, i) >= p, so the mask
/// depends only on (seed, i), never on threads. Kept elements are scaled by 1/(1-p).
/// CONTRACT STUB: naive and correct.
/// </summary>
public static class Dropout
{
    /// <summary>Writes y and the keep mask (1 = kept).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<byte> keep, float p, ulong seed)
    {
        float scale = p < 1 ? 1f / (1f - p) : 0f;
        for (int i = 0; i < x.Length; i++)
        {
            bool k = Uniform(seed, (ulong)i) >= p;
            keep[i] = k ? (byte)1 : (byte)0;
            y[i] = k ? x[i] * scale : 0f;
        }
    }

    /// <summary>Adds dy * mask / (1-p) into dx.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<byte> keep, Span<float> dx, float p)
    {
        float scale = p < 1 ? 1f / (1f - p) : 0f;
        for (int i = 0; i < dy.Length; i++) if (keep[i] != 0) dx[i] += dy[i] * scale;
    }

    /// <summary>A uniform float in [0, 1) from (seed, index): SplitMix64 finaliser.</summary>
    public static float Uniform(ulong seed, ulong index)
    {
        ulong z = seed + (index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }
}
