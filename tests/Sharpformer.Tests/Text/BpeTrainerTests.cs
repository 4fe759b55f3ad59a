using Sharpformer.Text;

namespace Sharpformer.Tests.Text;

public sealed class BpeTrainerTests : IDisposable
{
    static readonly string[] Shakespeare = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "TestData", "tinyshakespeare.txt"));
    static readonly string[] German =
    [
        "Größere Änderungen übernehmen?", "Die Datei »Übersicht.txt« konnte nicht geöffnet werden.",
        "Schließen Sie alle Fenster, bevor Sie fortfahren.", "Möchten Sie die Änderungen speichern?",
        "Über dieses Programm", "Fehler beim Öffnen der Datei", "Größe: 12,5 MB", "Straße, Maß, Fuß und Grüße",
    ];
    readonly string dir = Directory.CreateTempSubdirectory("sf-bpe-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void LearnsTheMostFrequentPairFirstAndBreaksTiesByText()
    {
        // Words "ab" x1, " ab" x2, " cd" x2: a+b (3) first; then three pairs of 2, taken in ordinal order of the
        // left symbol ("c" < "Ġ") and then the right ("ab" < "cd").
        var vocabulary = BpeTrainer.Train(["ab ab ab cd cd"], vocabSize: 1000);
        Assert.Equal([("a", "b"), ("c", "d"), ("Ġ", "ab"), ("Ġ", "cd")], vocabulary.Merges);
        Assert.Equal(BpeTrainer.MinVocabSize + 4, vocabulary.Tokens.Count); // stops when no pair occurs twice
        Assert.Equal(["<s>", "<pad>", "</s>", "<unk>"], vocabulary.Tokens.Take(4));
        Assert.Equal("ab", vocabulary.Tokens[BpeTrainer.MinVocabSize]);

        vocabulary.Save(dir);
        var tokenizer = SubwordTokenizer.Load(dir);
        Assert.Equal([BpeTrainer.MinVocabSize, BpeTrainer.MinVocabSize + 3, SubwordTokenizer.FirstByteId + 'x'], tokenizer.Encode("ab cdx"));
        Assert.Equal("#version: 0.2\na b\nc d\nĠ ab\nĠ cd\n", File.ReadAllText(Path.Combine(dir, "merges.txt")));
    }

    [Fact]
    public void HonoursTheVocabularySizeAndIsDeterministic()
    {
        var lines = Shakespeare[..4000];
        var first = BpeTrainer.Train(lines, vocabSize: 800);
        var again = BpeTrainer.Train(lines.Reverse(), vocabSize: 800); // only word counts matter, not their order
        Assert.Equal(800, first.Tokens.Count);
        Assert.Equal(first.Tokens, again.Tokens);
        Assert.Equal(first.Merges, again.Merges);
        Assert.Equal(first.Tokens.Count, first.Tokens.Distinct().Count());
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(lines, vocabSize: BpeTrainer.MinVocabSize - 1));
    }

    [Fact]
    public void LibraryTokenizerRoundTripsEveryLineExactly()
    {
        BpeTrainer.Train(Shakespeare[..4000].Concat(German), vocabSize: 1200).Save(dir);
        var tokenizer = SubwordTokenizer.Load(dir);
        Assert.Equal(1200, tokenizer.VocabSize);
        string[] unusual = ["  two  spaces\tand a tab ", "日本語 😀 ½ ©", "literal <s> and </s> stay text", ""];
        long tokens = 0, chars = 0;
        // Every 4th line not trained on, to keep the test fast.
        var unseen = Shakespeare[4000..].Where((_, i) => i % 4 == 0);
        foreach (var line in Shakespeare[..4000].Concat(unseen).Concat(German).Concat(unusual))
        {
            var ids = tokenizer.Encode(line);
            Assert.Equal(line, tokenizer.Decode(ids));
            Assert.DoesNotContain(SubwordTokenizer.UnkId, ids);
            tokens += ids.Length;
            chars += line.Length;
        }
        Assert.InRange((double)chars / tokens, 2.0, 10); // merges are used: far fewer tokens than bytes
        Assert.Equal(" Größe", tokenizer.Decode([SubwordTokenizer.BosId, .. tokenizer.Encode(" Größe"), SubwordTokenizer.EosId, SubwordTokenizer.PadId]));
    }

    [Fact]
    public void LoadNamesMissingFiles()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SubwordTokenizer.Load(dir));
        Assert.Contains("vocab.json", e.Message);
    }
}
