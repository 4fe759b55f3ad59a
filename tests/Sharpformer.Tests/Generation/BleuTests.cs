using System.Text.Json;
using Sharpformer.Generation;

namespace Sharpformer.Tests.Generation;

/// <summary>
/// Corpus BLEU and chrF against tools/oracle/make_bleu_references.py: 13a tokens from Python's re, n-gram
/// statistics from NLTK, BLEU from NLTK's corpus_bleu with method3 smoothing where NLTK and sacreBLEU agree by
/// definition (every hypothesis ≥ 4 tokens) and from sacreBLEU's formula on NLTK's statistics everywhere.
/// </summary>
public sealed class BleuTests
{
    static readonly JsonElement Cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "OracleData", "bleu_references.json"))).RootElement;

    public static TheoryData<string> CaseNames()
    {
        var names = new TheoryData<string>();
        foreach (var c in Cases.EnumerateObject()) names.Add(c.Name);
        return names;
    }

    static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesTheOracle(string name)
    {
        var c = Cases.GetProperty(name);
        var hypotheses = Strings(c.GetProperty("hypotheses"));
        var streams = c.GetProperty("references").EnumerateArray().Select(s => (IReadOnlyList<string>)Strings(s)).ToArray();

        foreach (var token in c.GetProperty("tokens").EnumerateObject())
            Assert.Equal(token.Value.GetString(), Bleu.Tokenize13a(token.Name.TrimEnd()));

        var score = Bleu.Corpus(hypotheses, streams);
        Assert.Equal(c.GetProperty("matches").EnumerateArray().Select(e => e.GetInt64()), score.Correct);
        Assert.Equal(c.GetProperty("totals").EnumerateArray().Select(e => e.GetInt64()), score.Total);
        Assert.Equal(c.GetProperty("hyp_len").GetInt64(), score.HypothesisLength);
        Assert.Equal(c.GetProperty("ref_len").GetInt64(), score.ReferenceLength);
        Assert.Equal(c.GetProperty("bleu").GetDouble(), score.Score, 1e-9);
        if (c.GetProperty("nltk_bleu").ValueKind == JsonValueKind.Number)
            Assert.Equal(c.GetProperty("nltk_bleu").GetDouble(), score.Score, 1e-9);

        Assert.Equal(c.GetProperty("chrf").GetDouble(), ChrF.Corpus(hypotheses, streams[0]), 1e-9);
    }

    [Fact]
    public void CoversTheCasesTheIssueNames()
    {
        // Empty hypotheses, short sentences, perfect matches, several sentences, 13a punctuation, NLTK-checked scores.
        string[] required = ["perfect", "with_empty_hypothesis", "all_empty_hypotheses", "short_sentences", "punctuation_13a", "two_references"];
        foreach (var name in required) Assert.True(Cases.TryGetProperty(name, out _), name);
        Assert.True(Cases.EnumerateObject().Count(c => c.Value.GetProperty("nltk_bleu").ValueKind == JsonValueKind.Number) >= 6);
    }

    [Fact]
    public void SmoothingAndBrevityFollowSacreBleu()
    {
        // The first order without matches gets 100/(2·total), the next 100/(4·total).
        var score = Bleu.FromStatistics([4, 2, 0, 0], [5, 4, 3, 2], 5, 5);
        Assert.Equal([80.0, 50.0, 100.0 / 6, 100.0 / 8], score.Precisions);
        Assert.Equal(Math.Exp((Math.Log(80) + Math.Log(50) + Math.Log(100.0 / 6) + Math.Log(12.5)) / 4), score.Score, 1e-12);
        Assert.Equal(Math.Exp(1 - 10.0 / 5), Bleu.FromStatistics([5, 4, 3, 2], [5, 4, 3, 2], 5, 10).BrevityPenalty, 1e-15);
        Assert.Equal("BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 5 ref_len = 5)",
            Bleu.FromStatistics([5, 4, 3, 2], [5, 4, 3, 2], 5, 5).ToString());
    }

    [Fact]
    public void MismatchedCountsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => Bleu.Corpus(["a"], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => ChrF.Corpus(["a"], ["a", "b"]));
    }

    [Fact]
    public void ChrFCountsCodePointsNotUtf16Units()
    {
        // "😀x" has 2 code points (3 UTF-16 units); only one character differs from "😀y".
        double expected = ChrF.Corpus(["ax"], ["ay"]);
        Assert.Equal(expected, ChrF.Corpus(["😀x"], ["😀y"]), 1e-12);
    }
}
