using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public sealed class TranslationPairsTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("sf-locale-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    void WriteCatalog(string language, string file, params (string, string)[] entries)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, language, "LC_MESSAGES")).FullName;
        File.WriteAllBytes(Path.Combine(dir, file), MoWriter.Build(entries));
    }

    [Theory]
    [InlineData("Open a file", "Open a file")]
    [InlineData("  _Open  ", "Open")]
    [InlineData("Ö_ffnen", "Öffnen")]
    [InlineData("&Save as", "Save as")]
    [InlineData("Drag & drop", "Drag & drop")]
    [InlineData("100% done", "100% done")]
    [InlineData("Unable to open %s", null)]
    [InlineData("%1$s of %2$s", null)]
    [InlineData("Progress: %d%%", null)]
    [InlineData("%(name)s left", null)]
    [InlineData("Hello {name}", null)]
    [InlineData("Item {0}", null)]
    [InlineData("<b>Bold</b> text", null)]
    [InlineData("Fish &amp; chips", null)]
    [InlineData("two\nlines", null)]
    [InlineData("tab\there", null)]
    [InlineData("C:\\path", null)]
    [InlineData("LC_ALL_NAME", null)]
    [InlineData("", null)]
    [InlineData("   ", null)]
    public void CleanKeepsSentencesAndDropsCodeLikeMessages(string message, string? expected) =>
        Assert.Equal(expected, TranslationPairs.Clean(message));

    [Fact]
    public void CleanLimitsWordsToThirty()
    {
        Assert.NotNull(TranslationPairs.Clean(string.Join(" ", Enumerable.Repeat("w", 30))));
        Assert.Null(TranslationPairs.Clean(string.Join(" ", Enumerable.Repeat("w", 31))));
    }

    [Fact]
    public void ExtractionFiltersDeduplicatesInFileOrderAndCounts()
    {
        WriteCatalog("de", "b.mo", ("Open", "Öffnen (b)"), ("Close", "Schließen"), ("OK", "OK"), ("Unable to open %s", "Kann %s nicht öffnen"));
        WriteCatalog("de", "a.mo", ("Open", "Öffnen"), ("_Quit", "_Beenden"), ("One file\0%d files", "Eine Datei\0%d Dateien"));
        WriteCatalog("de_CH", "a.mo", ("Close", "Schliessen"));
        File.WriteAllBytes(Path.Combine(root, "de", "LC_MESSAGES", "c.mo"), [1, 2, 3]);

        var result = TranslationPairs.FromGettext("de", root);
        Assert.Equal(
            [new SentencePair("Open", "Öffnen"), new SentencePair("Quit", "Beenden"), new SentencePair("Close", "Schließen")],
            result.Pairs);
        Assert.Equal((2, 7, 2, 1, 1), (result.CataloguesRead, result.Messages, result.Rejected, result.Identical, result.Duplicates));
        Assert.Contains("c.mo", Assert.Single(result.CataloguesSkipped));
    }

    [Fact]
    public void MissingLanguageListsTheOnesFound()
    {
        WriteCatalog("fr", "a.mo", ("Open", "Ouvrir"));
        WriteCatalog("de", "a.mo", ("Open", "Öffnen"));
        Directory.CreateDirectory(Path.Combine(root, "xx", "LC_MESSAGES")); // no catalogues: not listed
        var e = Assert.Throws<FileNotFoundException>(() => TranslationPairs.FromGettext("it", root));
        Assert.Contains("'it'", e.Message);
        Assert.EndsWith("de fr.", e.Message);
        Assert.Equal(["de", "fr"], TranslationPairs.AvailableLanguages(root));
    }

    [Fact]
    public void FnvMatchesPublishedVectors()
    {
        Assert.Equal(0xcbf29ce484222325UL, TranslationPairs.Fnv1a64(""u8));
        Assert.Equal(0xaf63dc4c8601ec8cUL, TranslationPairs.Fnv1a64("a"u8));
        Assert.Equal(0x85944171f73967e8UL, TranslationPairs.Fnv1a64("foobar"u8));
    }

    [Fact]
    public void SplitIsByHashOfSourceAndRoughlyNinetyFiveFive()
    {
        var pairs = Enumerable.Range(0, 20_000).Select(i => new SentencePair($"sentence {i}", $"Satz {i}")).ToList();
        var split = TranslationPairs.Split(pairs);
        Assert.Equal(pairs.Count, split.Train.Count + split.Validation.Count + split.Test.Count);
        Assert.InRange(split.Train.Count, 17_700, 18_300);
        Assert.InRange(split.Validation.Count, 850, 1_150);
        Assert.InRange(split.Test.Count, 850, 1_150);
        // A sentence's part depends on its source alone, not on the other pairs or their order.
        var reversed = TranslationPairs.Split(Enumerable.Reverse(pairs));
        Assert.Equal(split.Test.Select(p => p.Source).Order(), reversed.Test.Select(p => p.Source).Order());
        Assert.Equal(SplitPart.Test, TranslationPairs.PartOf("a")); // 0xaf63dc4c8601ec8c % 100 == 96
    }

    [Fact]
    public void AlignedFilesMustMatchLineForLine()
    {
        string src = Path.Combine(root, "train.en"), tgt = Path.Combine(root, "train.de");
        File.WriteAllLines(src, ["Hello", "Good morning"]);
        File.WriteAllLines(tgt, ["Hallo", "Guten Morgen"]);
        Assert.Equal([new SentencePair("Hello", "Hallo"), new SentencePair("Good morning", "Guten Morgen")], TranslationPairs.ReadAligned(src, tgt));

        File.WriteAllLines(tgt, ["Hallo", "Guten Morgen", "Extra"]);
        var e = Assert.Throws<InvalidDataException>(() => TranslationPairs.ReadAligned(src, tgt));
        Assert.Contains("has 2 lines", e.Message);
        Assert.Contains("has 3", e.Message);

        File.WriteAllLines(tgt, ["Hallo", " "]);
        Assert.Contains("train.de line 2 is empty", Assert.Throws<InvalidDataException>(() => TranslationPairs.ReadAligned(src, tgt)).Message);
    }

    [Fact]
    public void TsvNeedsExactlyTwoFields()
    {
        var path = Path.Combine(root, "pairs.tsv");
        File.WriteAllLines(path, ["Hello\tHallo", "Thanks\tDanke"]);
        Assert.Equal([new SentencePair("Hello", "Hallo"), new SentencePair("Thanks", "Danke")], TranslationPairs.ReadTsv(path));
        File.WriteAllLines(path, ["Hello\tHallo", "Thanks Danke"]);
        Assert.Contains("line 2", Assert.Throws<InvalidDataException>(() => TranslationPairs.ReadTsv(path)).Message);
    }
}
