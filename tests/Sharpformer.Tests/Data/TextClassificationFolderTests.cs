using Sharpformer.Data;
using Sharpformer.Text;

namespace Sharpformer.Tests.Data;

/// <summary>A prepared classification folder: written from CSV, TSV and JSONL, read back, the same bytes each time, truncation counted.</summary>
public sealed class TextClassificationFolderTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-tcf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string Write(string name, string content)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>20 "pos" and 10 "neg" rows: an uneven split shows stratification.</summary>
    static IEnumerable<(string Text, string Label)> Rows() =>
        Enumerable.Range(0, 30).Select(i => i % 3 == 0 ? ($"a dull slow film number {i}", "neg") : ($"a bright lively film number {i} with music", "pos"));

    WordPieceTokenizer Tokenizer() =>
        WordPieceTokenizer.Learn(string.Join('\n', Rows().Select(r => r.Text)), new WordPieceTrainerOptions { VocabSize = 60 }, Path.Combine(dir, "vocab"));

    [Fact]
    public void CsvBecomesAFolderWhoseSplitsReadBackStratifiedAndIdentical()
    {
        string csv = Write("r.csv", "text,label\n" + string.Concat(Rows().Select(r => $"{r.Text},{r.Label}\n")));
        var tokenizer = Tokenizer();
        var data = TextClassificationData.Read(csv, new());
        var meta = TextClassificationFolder.Write(Path.Combine(dir, "a"), data, tokenizer, 64, "r.csv");
        TextClassificationFolder.Write(Path.Combine(dir, "b"), TextClassificationData.Read(csv, new()), tokenizer, 64, "r.csv");

        Assert.True(TextClassificationFolder.IsClassificationFolder(Path.Combine(dir, "a")));
        Assert.Equal(["neg", "pos"], meta.Labels);
        // Stratified: 10% of each class to val and to test (1 neg and 2 pos each), the rest to train.
        Assert.Equal(new Dictionary<string, int> { ["train"] = 24, ["val"] = 3, ["test"] = 3 }, meta.Splits);
        foreach (var split in TextClassificationFolder.SplitNames)
        {
            var examples = TextClassificationFolder.ReadSplit(Path.Combine(dir, "a"), TextClassificationFolder.ReadMeta(Path.Combine(dir, "a")), split);
            if (split != "train") Assert.Equal([0, 1, 1], examples.Select(e => e.Label).Order());
            foreach (var e in examples)
            {
                Assert.Equal(tokenizer.EncodeForModel(e.Text, null, 64).Ids, e.Ids); // [CLS] text [SEP]
                Assert.All(e.Segments, s => Assert.Equal(0, s));
            }
        }
        foreach (var file in TextClassificationFolder.Files) // deterministic: the same bytes from the same input
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "a", file)), File.ReadAllBytes(Path.Combine(dir, "b", file)));
        Assert.Equal(0, meta.Truncated.Values.Sum());
    }

    [Fact]
    public void TsvPairsGetSegmentIdsAndJsonLinesKeepTheirLabelsAndLongTextsAreCountedAsTruncated()
    {
        var tokenizer = Tokenizer();
        string tsv = Write("p.tsv", "first\tsecond\tlabel\tsplit\n" + string.Concat(Rows().Select((r, i) => $"{r.Text}\tfilm\t{r.Label}\t{(i < 2 ? "val" : "train")}\n")));
        var pairs = TextClassificationFolder.Write(Path.Combine(dir, "p"),
            TextClassificationData.Read(tsv, new() { TextColumn = "first", TextPairColumn = "second", SplitColumn = "split" }), tokenizer, 64, "p.tsv");
        Assert.True(pairs.TextPair);
        Assert.Equal(new Dictionary<string, int> { ["train"] = 28, ["val"] = 2, ["test"] = 0 }, pairs.Splits);
        var first = TextClassificationFolder.ReadSplit(Path.Combine(dir, "p"), pairs, "val")[0];
        Assert.Equal("film", first.Pair);
        int sep = Array.IndexOf(first.Ids, tokenizer.SepId);
        Assert.Equal(Enumerable.Repeat(0, sep + 1).Concat(Enumerable.Repeat(1, first.Ids.Length - sep - 1)), first.Segments);

        string jsonl = Write("j.jsonl", string.Concat(Rows().Select(r => $"{{\"body\": \"{r.Text}\", \"stars\": \"{(r.Label == "pos" ? 5 : 1)}\"}}\n")));
        var meta = TextClassificationFolder.Write(Path.Combine(dir, "j"),
            TextClassificationData.Read(jsonl, new() { TextColumn = "body", LabelColumn = "stars" }), tokenizer, 6, "j.jsonl");
        Assert.Equal(["1", "5"], meta.Labels);
        var train = TextClassificationFolder.ReadSplit(Path.Combine(dir, "j"), meta, "train");
        Assert.Equal(meta.Splits["train"], train.Count);
        Assert.All(train, e => Assert.Equal(6, e.Ids.Length)); // every text is longer than 6 pieces: cut, [SEP] kept
        Assert.All(train, e => Assert.Equal(tokenizer.SepId, e.Ids[^1]));
        Assert.Equal(30, meta.Truncated.Values.Sum());
    }

    [Fact]
    public void ABadSplitLineIsNamedWithItsFileAndLine()
    {
        var tokenizer = Tokenizer();
        string folder = Path.Combine(dir, "x");
        var meta = TextClassificationFolder.Write(folder, TextClassificationData.Read(Write("r.csv", "text,label\n" + string.Concat(Rows().Select(r => $"{r.Text},{r.Label}\n"))), new()), tokenizer, 64, "r.csv");
        File.AppendAllText(Path.Combine(folder, "val.jsonl"), "{\"label\": \"neg\", \"text\": \"x\", \"ids\": [2, 9999, 3]}\n");
        var e = Assert.Throws<InvalidDataException>(() => TextClassificationFolder.ReadSplit(folder, meta, "val"));
        Assert.Contains("val.jsonl line 4 holds id 9999, outside the vocabulary of", e.Message);
        File.WriteAllText(Path.Combine(folder, "test.jsonl"), "{\"label\": \"maybe\", \"text\": \"x\", \"ids\": [2, 3]}\n");
        e = Assert.Throws<InvalidDataException>(() => TextClassificationFolder.ReadSplit(folder, meta, "test"));
        Assert.Contains("has label 'maybe', which meta.json does not list", e.Message);
    }
}
