using System.Globalization;
using System.Text.RegularExpressions;

namespace Sharpformer.Generation;

/// <summary>A corpus BLEU score (0–100) with the statistics it came from, as sacreBLEU reports it.</summary>
public sealed record BleuScore(double Score, long[] Correct, long[] Total, double[] Precisions, double BrevityPenalty,
    long HypothesisLength, long ReferenceLength)
{
    /// <summary>sacreBLEU's line: "BLEU = 22.49 55.6/28.6/16.7/10.0 (BP = 1.000 ratio = 1.000 hyp_len = 9 ref_len = 9)".</summary>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        double ratio = ReferenceLength > 0 ? (double)HypothesisLength / ReferenceLength : 0;
        return string.Create(inv, $"BLEU = {Score:F2} {string.Join('/', Precisions.Select(p => p.ToString("F1", inv)))} " +
            $"(BP = {BrevityPenalty:F3} ratio = {ratio:F3} hyp_len = {HypothesisLength} ref_len = {ReferenceLength})");
    }
}

/// <summary>
/// Corpus BLEU exactly as sacreBLEU 2.x computes its default (<c>BLEU()</c>: tokenize 13a, case-sensitive,
/// 4-grams, smooth_method 'exp', effective_order off). Each hypothesis and reference is right-stripped and
/// 13a-tokenized, then split on whitespace. Over the corpus: correct_n = Σ clipped n-gram matches (clipped by
/// the largest count in any one reference), total_n = Σ hypothesis n-grams, c = Σ hypothesis lengths, r = Σ
/// closest reference lengths (ties to the shorter). Then BLEU = 0 if no n-gram of any order matches; otherwise
/// p_n = 100·correct_n/total_n, except that the k-th order with correct_n = 0 gets p_n = 100/(2^k·total_n)
/// ('exp', mteval-v13a's smoothing), and orders from the first with total_n = 0 on get p_n = 0 (log taken as
/// −9999999999, so BLEU ≈ 0); BP = 1 if c ≥ r, exp(1 − r/c) if 0 &lt; c &lt; r, 0 if c = 0;
/// BLEU = BP·exp(Σ_n log p_n / 4).
/// </summary>
public static partial class Bleu
{
    public const int MaxOrder = 4;

    /// <summary>BLEU of hypotheses against one or more reference streams (each holds one reference per hypothesis).</summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, params IReadOnlyList<string>[] referenceStreams)
    {
        if (referenceStreams.Length == 0) throw new ArgumentException("BLEU needs at least one reference stream.");
        foreach (var stream in referenceStreams)
            if (stream.Count != hypotheses.Count)
                throw new ArgumentException($"There are {hypotheses.Count} hypotheses but a reference stream has {stream.Count} lines.");

        var correct = new long[MaxOrder];
        var total = new long[MaxOrder];
        long hypothesisLength = 0, referenceLength = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hypothesis = Words(hypotheses[s]);
            var referenceCounts = new Dictionary<string, int>[MaxOrder];
            int closest = -1;
            foreach (var stream in referenceStreams)
            {
                var reference = Words(stream[s]);
                var counts = NGrams(reference);
                for (int n = 0; n < MaxOrder; n++)
                {
                    if (referenceCounts[n] is null) { referenceCounts[n] = counts[n]; continue; }
                    foreach (var (ngram, count) in counts[n])
                        referenceCounts[n][ngram] = Math.Max(referenceCounts[n].GetValueOrDefault(ngram), count);
                }
                int length = reference.Length;
                if (closest < 0 || Math.Abs(hypothesis.Length - length) < Math.Abs(hypothesis.Length - closest)
                    || (Math.Abs(hypothesis.Length - length) == Math.Abs(hypothesis.Length - closest) && length < closest))
                    closest = length;
            }
            var hypothesisCounts = NGrams(hypothesis);
            for (int n = 0; n < MaxOrder; n++)
                foreach (var (ngram, count) in hypothesisCounts[n])
                {
                    total[n] += count;
                    correct[n] += Math.Min(count, referenceCounts[n].GetValueOrDefault(ngram));
                }
            hypothesisLength += hypothesis.Length;
            referenceLength += closest;
        }
        return FromStatistics(correct, total, hypothesisLength, referenceLength);
    }

    /// <summary>sacreBLEU's compute_bleu with smooth_method 'exp' from summed statistics.</summary>
    public static BleuScore FromStatistics(long[] correct, long[] total, long hypothesisLength, long referenceLength)
    {
        double brevity = hypothesisLength >= referenceLength ? 1.0
            : hypothesisLength > 0 ? Math.Exp(1 - (double)referenceLength / hypothesisLength) : 0.0;
        var precisions = new double[MaxOrder];
        if (correct.All(c => c == 0)) return new BleuScore(0, correct, total, precisions, brevity, hypothesisLength, referenceLength);
        double smooth = 1;
        for (int n = 0; n < MaxOrder; n++)
        {
            if (total[n] == 0) break;
            if (correct[n] == 0) { smooth *= 2; precisions[n] = 100.0 / (smooth * total[n]); }
            else precisions[n] = 100.0 * correct[n] / total[n];
        }
        double logSum = 0;
        foreach (double p in precisions) logSum += p == 0 ? -9999999999 : Math.Log(p);
        return new BleuScore(brevity * Math.Exp(logSum / MaxOrder), correct, total, precisions, brevity, hypothesisLength, referenceLength);
    }

    /// <summary>
    /// The 13a tokenization (mteval-v13a, sacreBLEU's default): drop "&lt;skipped&gt;", join "-\n", newlines to
    /// spaces, unescape &amp;quot; &amp;amp; &amp;lt; &amp;gt;, then space out punctuation and symbols, periods and commas
    /// unless between digits, and a dash after a digit; words joined by single spaces.
    /// </summary>
    public static string Tokenize13a(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        if (line.Contains('&'))
            line = line.Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        line = " " + line + " ";
        line = Symbols().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return string.Join(' ', SplitWhitespace(line));
    }

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])")]
    private static partial Regex Symbols();
    [GeneratedRegex(@"([^0-9])([\.,])")]
    private static partial Regex PeriodCommaAfterNonDigit();
    [GeneratedRegex(@"([\.,])([^0-9])")]
    private static partial Regex PeriodCommaBeforeNonDigit();
    [GeneratedRegex(@"([0-9])(-)")]
    private static partial Regex DashAfterDigit();

    /// <summary>A sentence as BLEU counts it: right-stripped, 13a-tokenized, split into words.</summary>
    static string[] Words(string sentence) => SplitWhitespace(Tokenize13a(RightStrip(sentence)));

    /// <summary>The n-grams of each order 1–4 (index n − 1) with their counts, keyed by the words joined with spaces.</summary>
    static Dictionary<string, int>[] NGrams(string[] words)
    {
        var counts = new Dictionary<string, int>[MaxOrder];
        for (int n = 1; n <= MaxOrder; n++)
        {
            counts[n - 1] = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= words.Length; i++)
            {
                string ngram = string.Join(' ', words, i, n);
                counts[n - 1][ngram] = counts[n - 1].GetValueOrDefault(ngram) + 1;
            }
        }
        return counts;
    }

    /// <summary>Python's str.isspace, which str.split() and rstrip() use: .NET's white space plus U+001C–U+001F.</summary>
    internal static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    internal static string[] SplitWhitespace(string text)
    {
        var words = new List<string>();
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool space = i == text.Length || IsPythonSpace(text[i]);
            if (space && start >= 0) { words.Add(text[start..i]); start = -1; }
            else if (!space && start < 0) start = i;
        }
        return words.ToArray();
    }

    static string RightStrip(string text)
    {
        int end = text.Length;
        while (end > 0 && IsPythonSpace(text[end - 1])) end--;
        return text[..end];
    }
}
