using Sharpformer.Text;

namespace Sharpformer.Tests.Text;

public sealed class WordPieceTokenizerTests : IDisposable
{
    static readonly string[] Corpus =
    [
        "To be, or not to be: that is the question.",
        "Whether 'tis nobler in the mind to suffer the slings and arrows of outrageous fortune,",
        "Or to take arms against a sea of troubles, and by opposing end them.",
    ];
    readonly string dir = Directory.CreateTempSubdirectory("sf-wpt-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    WordPieceTokenizer Trained(WordPieceTrainerOptions? options = null)
    {
        options ??= new() { VocabSize = 200 };
        WordPieceTrainer.TrainToFile(string.Join('\n', Corpus) + "\n" + string.Join('\n', Corpus), Path.Combine(dir, "vocab.txt"), options);
        return new WordPieceTokenizer(Path.Combine(dir, "vocab.txt"), WordPieceSettings.From(options));
    }

    [Fact]
    public void EncodesAndDecodesWithTheTrainersLayout()
    {
        var t = Trained();
        Assert.Equal((0, 1, 2, 3, 4), (t.PadId, t.UnkId, t.ClsId, t.SepId, t.MaskId));
        Assert.Equal("wordpiece", t.Spec.Kind);
        Assert.Equal(t.VocabSize, t.Spec.VocabSize);
        var ids = t.Encode("To be, or not\nto BE.");
        Assert.DoesNotContain(t.UnkId, ids);
        Assert.Equal("to be, or not to be.", t.Decode(ids));
        Assert.Equal("[CLS] to be [MASK] [SEP]", t.Decode([t.ClsId, .. t.Encode("to be"), t.MaskId, t.SepId]));
        Assert.Equal("to be", t.Decode([t.ClsId, .. t.Encode("to be"), t.PadId, t.SepId], skipSpecialTokens: true));
        Assert.Equal([t.UnkId], t.Encode("ж"));
        Assert.Throws<ArgumentException>(() => t.Decode([t.VocabSize]));
    }

    [Fact]
    public void BuildsSinglesAndPairsWithSegments()
    {
        var t = Trained();
        var a = t.Encode("to be");
        var b = t.Encode("the question");
        var single = t.EncodeForModel("to be", null, 64);
        Assert.Equal([t.ClsId, .. a, t.SepId], single.Ids);
        Assert.All(single.SegmentIds, s => Assert.Equal(0, s));
        Assert.Equal(0, single.TruncatedTokens);

        var pair = t.EncodeForModel("to be", "the question", 64);
        Assert.Equal([t.ClsId, .. a, t.SepId, .. b, t.SepId], pair.Ids);
        Assert.Equal([.. Enumerable.Repeat(0, a.Length + 2), .. Enumerable.Repeat(1, b.Length + 1)], pair.SegmentIds);
    }

    [Fact]
    public void TruncatesTheLongerTextFirstAndCountsTheCut()
    {
        var t = Trained();
        var a = t.Encode(Corpus[1]);
        var b = t.Encode("to be");
        Assert.True(a.Length > 10);
        var single = t.EncodeForModel(Corpus[1], null, 8);
        Assert.Equal([t.ClsId, .. a[..6], t.SepId], single.Ids);
        Assert.Equal(a.Length - 6, single.TruncatedTokens);

        // Longest first: the long text shrinks to the short one's length, then both lose pieces in turn.
        var pair = t.EncodeForModel(Corpus[1], "to be", b.Length * 2 + 3);
        Assert.Equal([t.ClsId, .. a[..b.Length], t.SepId, .. b, t.SepId], pair.Ids);
        Assert.Equal(a.Length - b.Length, pair.TruncatedTokens);
        var tight = t.EncodeForModel(Corpus[1], "to be", 5);
        Assert.Equal([t.ClsId, a[0], t.SepId, b[0], t.SepId], tight.Ids);
        Assert.Equal(a.Length + b.Length - 2, tight.TruncatedTokens);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.EncodeForModel("a", "b", 4));
    }

    [Fact]
    public void SavesAndLoadsAFolderAsHuggingFaceDoes()
    {
        var t = Trained(new() { VocabSize = 150, LowerCase = false, StripAccents = false });
        string folder = Path.Combine(dir, "checkpoint");
        t.Save(folder);
        string config = File.ReadAllText(Path.Combine(folder, "tokenizer_config.json"));
        Assert.Contains("\"do_lower_case\": false", config);
        Assert.Contains("\"tokenizer_class\": \"BertTokenizer\"", config);
        var loaded = WordPieceTokenizer.Load(folder);
        Assert.False(loaded.Settings.LowerCase);
        Assert.Equal(t.Encode("To be, or Not"), loaded.Encode("To be, or Not"));
        Assert.Equal("To be, or", loaded.Decode(loaded.Encode("To be, or")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "vocab.txt")), File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
    }

    [Fact]
    public void FindsSpecialTokensWhereverTheVocabularyPutsThem()
    {
        // bert-base-uncased's layout: [PAD] 0, [unused0..98], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103.
        var vocab = new List<string> { "[PAD]" };
        for (int i = 0; i < 99; i++) vocab.Add($"[unused{i}]");
        vocab.AddRange(["[UNK]", "[CLS]", "[SEP]", "[MASK]", "to", "be", "##e", "b"]);
        WordPieceVocabulary.Write(Path.Combine(dir, "vocab.txt"), vocab);
        var t = WordPieceTokenizer.Load(dir);
        Assert.Equal((0, 100, 101, 102, 103), (t.PadId, t.UnkId, t.ClsId, t.SepId, t.MaskId));
        Assert.Equal([104, 105, 100], t.Encode("To be ok"));
    }

    [Fact]
    public void RefusesAVocabularyWithoutTheSpecialTokens()
    {
        WordPieceVocabulary.Write(Path.Combine(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[SEP]", "[MASK]", "to"]);
        var e = Assert.Throws<InvalidDataException>(() => WordPieceTokenizer.Load(dir));
        Assert.Contains("[CLS]", e.Message);
        Assert.Throws<FileNotFoundException>(() => WordPieceTokenizer.Load(Path.Combine(dir, "nowhere")));
    }
}
