using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public sealed class TextClassificationDataTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-tc-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string Write(string name, string content)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    static string ManyRows(int perClass, char delimiter = ',') =>
        "text" + delimiter + "label\n" + string.Concat(Enumerable.Range(0, perClass).Select(i =>
            $"good film number {i}{delimiter}pos\nbad film number {i}{delimiter}neg\nso-so film {i}{delimiter}{(i % 2 == 0 ? "neg" : "pos")}\n"));

    [Fact]
    public void ReadsRfc4180QuotingWithLineBreaksInsideFields()
    {
        string path = Write("a.csv", "id,label,text\r\n1,spam,\"Buy now, \"\"cheap\"\"\r\npills\"\r\n2,ham,plain text\r\n3,ham,\"\"\"quoted\"\" start\"\r\n\r\n");
        var data = TextClassificationData.Read(path, new() { ValFraction = 0, TestFraction = 0 });
        Assert.Equal(["ham", "spam"], data.LabelNames);
        Assert.Equal(3, data.Train.Count);
        Assert.Equal(new TextExample("Buy now, \"cheap\"\r\npills", null, 1), data.Train[0]);
        Assert.Equal(new TextExample("plain text", null, 0), data.Train[1]);
        Assert.Equal("\"quoted\" start", data.Train[2].Text);
    }

    [Fact]
    public void MalformedCsvIsReportedWithItsLine()
    {
        var e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(Write("open.csv", "text,label\n\"never closed,pos\nx,neg\n"), new()));
        Assert.Contains("opened on line 2", e.Message);
        e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(Write("fields.csv", "text,label\na,pos\nb,neg,extra\n"), new()));
        Assert.Contains("Line 3 has 3 fields", e.Message);
        e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(Write("after.csv", "text,label\n\"a\"b,pos\n"), new()));
        Assert.Contains("follows a closing quote", e.Message);
    }

    [Fact]
    public void ReadsTsvAndJsonLinesWithATextPair()
    {
        var tsv = TextClassificationData.Read(Write("p.tsv", "premise\thypothesis\tlabel\nA man sleeps.\tA man rests.\tentail\nA dog runs.\tA cat sleeps.\tcontra\n"),
            new() { TextColumn = "premise", TextPairColumn = "hypothesis", ValFraction = 0, TestFraction = 0 });
        Assert.Equal(["contra", "entail"], tsv.LabelNames);
        Assert.Equal(new TextExample("A man sleeps.", "A man rests.", 1), tsv.Train[0]);

        var jsonl = TextClassificationData.Read(Write("p.jsonl", "{\"sentence\": \"fine \\\"day\\\"\", \"stars\": 5}\n\n{\"stars\": 1, \"sentence\": \"awful\", \"extra\": [1]}\n"),
            new() { TextColumn = "sentence", LabelColumn = "stars", ValFraction = 0, TestFraction = 0 });
        Assert.Equal(["1", "5"], jsonl.LabelNames);
        Assert.Equal([new TextExample("fine \"day\"", null, 1), new TextExample("awful", null, 0)], jsonl.Train);
    }

    [Fact]
    public void MissingColumnsAreNamedWithTheColumnsFound()
    {
        string path = Write("c.csv", "sentence,label\nhi,a\nho,b\n");
        var e = Assert.Throws<ArgumentException>(() => TextClassificationData.Read(path, new()));
        Assert.Contains("no column 'text' (--text-column)", e.Message);
        Assert.Contains("'sentence', 'label'", e.Message);
        e = Assert.Throws<ArgumentException>(() => TextClassificationData.Read(path, new() { TextColumn = "sentence", TextPairColumn = "other" }));
        Assert.Contains("'other' (--text-pair-column)", e.Message);
        e = Assert.Throws<ArgumentException>(() => TextClassificationData.Read(Write("j.jsonl", "{\"text\": \"x\"}\n"), new()));
        Assert.Contains("no column 'label'", e.Message);
    }

    [Fact]
    public void OneClassIsRefused()
    {
        var e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(Write("one.csv", "text,label\na,spam\nb,spam\n"), new()));
        Assert.Contains("one class ('spam') in 2 rows", e.Message);
    }

    [Fact]
    public void EmptyTextsAreAnErrorOrSkippedAndCounted()
    {
        string path = Write("e.csv", "text,label\nhello,a\n,b\n\"  \",a\nworld,b\nagain,b\n");
        var e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(path, new()));
        Assert.Contains("2 rows", e.Message);
        Assert.Contains("lines 3, 4", e.Message);
        var data = TextClassificationData.Read(path, new() { SkipEmptyTexts = true, ValFraction = 0, TestFraction = 0 });
        Assert.Equal(2, data.SkippedEmptyTexts);
        Assert.Equal(["hello", "world", "again"], data.Train.Select(x => x.Text));
    }

    [Fact]
    public void StratifiedSplitIsDeterministicAndIndependentOfRowOrder()
    {
        string content = ManyRows(100);
        var data = TextClassificationData.Read(Write("m.csv", content), new());
        Assert.Equal((240, 30, 30), (data.Train.Count, data.Val.Count, data.Test.Count));
        foreach (var split in new[] { data.Train, data.Val, data.Test })
            Assert.Equal(split.Count / 2, split.Count(x => x.Label == 0)); // 150 of each class: 120/15/15
        Assert.Empty(data.Train.Select(x => x.Text).Intersect(data.Test.Select(x => x.Text)));

        var lines = content.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string reversed = lines[0] + "\n" + string.Join('\n', lines[1..].Reverse()) + "\n";
        var again = TextClassificationData.Read(Write("r.csv", reversed), new());
        Assert.Equal(data.Test.Select(x => x.Text).Order(), again.Test.Select(x => x.Text).Order());
        Assert.Equal(data.Val.Select(x => x.Text).Order(), again.Val.Select(x => x.Text).Order());
        Assert.Equal(data.Train.Select(x => x.Text), TextClassificationData.Read(Write("m2.csv", content), new()).Train.Select(x => x.Text));
    }

    [Fact]
    public void ASplitColumnPlacesEachRow()
    {
        string path = Write("s.tsv", "text\tlabel\tsplit\na\tx\ttrain\nb\ty\tTRAIN\nc\tx\tdev\nd\ty\ttest\n");
        var data = TextClassificationData.Read(path, new() { SplitColumn = "split" });
        Assert.Equal((2, 1, 1), (data.Train.Count, data.Val.Count, data.Test.Count));
        Assert.Equal("c", data.Val[0].Text);
        var e = Assert.Throws<InvalidDataException>(() => TextClassificationData.Read(Write("bad.tsv", "text\tlabel\tsplit\na\tx\ttrain\nb\ty\tholdout\n"), new() { SplitColumn = "split" }));
        Assert.Contains("'holdout'", e.Message);
        Assert.Contains("Line 3", e.Message);
    }
}
