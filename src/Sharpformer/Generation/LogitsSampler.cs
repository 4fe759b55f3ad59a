using System.Numerics.Tensors;
using Sharpformer.Tensors;

namespace Sharpformer.Generation;

/// <summary>
/// Turns one row of logits into a token: temperature, top-k, top-p, then a draw from the seeded generator.
/// Owns its scratch buffers so sampling a token allocates nothing.
/// </summary>
public sealed class LogitsSampler
{
    readonly float[] scratch;
    readonly int[] order;
    readonly double[] weights;
    Rng rng;

    /// <param name="vocabLimit">Tokens at or beyond this id (padding of the embedding table) are never sampled.</param>
    public LogitsSampler(int vocabLimit, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabLimit, 1);
        scratch = new float[vocabLimit];
        order = new int[vocabLimit];
        weights = new double[vocabLimit];
        rng = new Rng(seed);
    }

    public int VocabLimit => scratch.Length;

    public int Sample(ReadOnlySpan<float> logits, SamplingOptions o)
    {
        if (logits.Length < scratch.Length)
            throw new ArgumentException($"Logits hold {logits.Length} entries but the vocabulary has {scratch.Length}.", nameof(logits));
        var z = scratch.AsSpan();
        logits[..z.Length].CopyTo(z);
        if (o.Temperature == 0) return TensorPrimitives.IndexOfMax(z);

        if (o.TopK > 0 && o.TopK < z.Length)
        {
            float kth = KthLargest(z, o.TopK);
            for (int i = 0; i < z.Length; i++) if (z[i] < kth) z[i] = float.NegativeInfinity;
        }
        SoftMax(z, o.Temperature, weights);
        if (o.TopP < 1) KeepNucleus(z, o.TopP);

        double u = rng.NextDouble() * TensorPrimitives.Sum(z);
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < z.Length; i++)
        {
            if (z[i] <= 0) continue;
            cumulative += z[i];
            last = i;
            if (u < cumulative) return i;
        }
        return last; // rounding left u at the very top
    }

    /// <summary>
    /// softmax(z / temperature) in place. The maximum is subtracted before dividing and the exponentials are taken in
    /// double: dividing first overflows float at small temperatures (logit 10 at T = 0.001 is 1e4, exp(1e4) = inf,
    /// inf/inf = NaN) and sampling then returned the last token. This way the largest logit always weighs exactly 1,
    /// and as T falls every other weight falls to 0, so sampling approaches greedy decoding.
    /// </summary>
    internal static void SoftMax(Span<float> z, float temperature, Span<double> scratch)
    {
        var w = scratch[..z.Length];
        double max = TensorPrimitives.Max(z), inverse = 1.0 / temperature;
        for (int i = 0; i < z.Length; i++) w[i] = (z[i] - max) * inverse; // -inf (masked) stays -inf: weight 0
        TensorPrimitives.Exp(w, w);
        double scale = 1 / TensorPrimitives.Sum(w);
        for (int i = 0; i < z.Length; i++) z[i] = (float)(w[i] * scale);
    }

    /// <summary>The k-th largest value (quickselect over a copy; O(V) on average).</summary>
    float KthLargest(ReadOnlySpan<float> z, int k)
    {
        var work = order.AsSpan(); // select over indices so the logits stay in place
        for (int i = 0; i < z.Length; i++) work[i] = i;
        int lo = 0, hi = z.Length - 1, target = k - 1;
        while (lo < hi)
        {
            float pivot = z[work[(lo + hi) >>> 1]];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (z[work[i]] > pivot) i++;
                while (z[work[j]] < pivot) j--;
                if (i <= j) { (work[i], work[j]) = (work[j], work[i]); i++; j--; }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else break;
        }
        return z[work[target]];
    }

    /// <summary>Zeroes every probability outside the smallest most-likely set whose mass reaches p.</summary>
    void KeepNucleus(Span<float> probs, float p)
    {
        int n = 0;
        for (int i = 0; i < probs.Length; i++) if (probs[i] > 0) order[n++] = i;
        var candidates = order.AsSpan(0, n);
        var values = scratch; // captured for the comparison below
        candidates.Sort((a, b) => values[b].CompareTo(values[a]) is var c && c != 0 ? c : a.CompareTo(b));
        double mass = 0;
        int keep = 0;
        while (keep < n && mass < p) mass += probs[candidates[keep++]];
        for (int i = keep; i < n; i++) probs[candidates[i]] = 0;
    }
}
