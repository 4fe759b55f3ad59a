namespace Sharpformer.Generation;

/// <summary>
/// Corpus chrF as sacreBLEU 2.x computes its default (<c>CHRF()</c>: character n-grams of orders 1–6, no word
/// n-grams, β = 2, case-sensitive, whitespace removed, eps_smoothing off), against one reference per hypothesis.
/// Per order n, summed over the corpus: hyp_n (hypothesis n-grams; 0 for a sentence whose reference has none),
/// ref_n, match_n (clipped matches). With P_n = match_n/hyp_n and R_n = match_n/ref_n averaged over the orders
/// where hyp_n &gt; 0 and ref_n &gt; 0, chrF = 100·(1 + β²)·P·R / (β²·P + R), or 0 when P + R = 0.
/// Characters are Unicode code points, as Python's str.
/// </summary>
public static class ChrF
{
    public const int CharOrder = 6;
    public const double Beta = 2;

    public static double Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references)
    {
        if (references.Count != hypotheses.Count)
            throw new ArgumentException($"There are {hypotheses.Count} hypotheses but {references.Count} references.");
        var stats = new long[CharOrder, 3]; // hyp, ref, match
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hypothesis = CharNGrams(hypotheses[s]);
            var reference = CharNGrams(references[s]);
            for (int n = 0; n < CharOrder; n++)
            {
                long hypCount = 0, refCount = 0, match = 0;
                foreach (var (ngram, count) in hypothesis[n])
                {
                    hypCount += count;
                    match += Math.Min(count, reference[n].GetValueOrDefault(ngram));
                }
                foreach (var count in reference[n].Values) refCount += count;
                stats[n, 0] += reference[n].Count > 0 ? hypCount : 0; // as sacreBLEU: no reference n-grams, no hypothesis count
                stats[n, 1] += refCount;
                stats[n, 2] += match;
            }
        }

        double precision = 0, recall = 0;
        int effectiveOrder = 0;
        for (int n = 0; n < CharOrder; n++)
        {
            long hyp = stats[n, 0], @ref = stats[n, 1], match = stats[n, 2];
            if (hyp > 0 && @ref > 0)
            {
                precision += (double)match / hyp;
                recall += (double)match / @ref;
                effectiveOrder++;
            }
        }
        if (effectiveOrder == 0) return 0;
        precision /= effectiveOrder;
        recall /= effectiveOrder;
        if (precision + recall == 0) return 0;
        double factor = Beta * Beta;
        return 100 * (1 + factor) * precision * recall / (factor * precision + recall);
    }

    /// <summary>Counts of the code-point n-grams of orders 1–6 (index n − 1) of the text with its whitespace removed.</summary>
    static Dictionary<string, int>[] CharNGrams(string text)
    {
        var squeezed = string.Concat(Bleu.SplitWhitespace(text));
        var starts = new List<int>(); // UTF-16 index of each code point, and the end
        for (int i = 0; i < squeezed.Length; i += char.IsSurrogatePair(squeezed, i) ? 2 : 1) starts.Add(i);
        starts.Add(squeezed.Length);
        int length = starts.Count - 1;
        var counts = new Dictionary<string, int>[CharOrder];
        for (int n = 1; n <= CharOrder; n++)
        {
            var map = counts[n - 1] = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= length; i++)
            {
                string ngram = squeezed[starts[i]..starts[i + n]];
                map[ngram] = map.GetValueOrDefault(ngram) + 1;
            }
        }
        return counts;
    }
}
