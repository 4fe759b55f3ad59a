using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Sharpformer.Text;

namespace Sharpformer.Tests.Text;

public sealed class WordPieceTrainerTests : IDisposable
{
    static readonly string Shakespeare = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "tinyshakespeare.txt"));
    static readonly Lazy<List<string>> ShakespeareVocab = new(() => WordPieceTrainer.Train(Shakespeare, new() { VocabSize = 3000 }));
    readonly string dir = Directory.CreateTempSubdirectory("sf-wp-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    BertTokenizer Load(IEnumerable<string> vocab, bool lowerCase = true)
    {
        string path = Path.Combine(dir, $"vocab{Guid.NewGuid():N}.txt");
        WordPieceVocabulary.Write(path, vocab);
        return BertTokenizer.Create(path, WordPieceVocabulary.Options(lowerCase, lowerCase, splitCjk: true));
    }

    [Fact]
    public void LearnsTheMergesOfAHandWorkedCorpus()
    {
        // Pairs: ##u ##g 4, h ##u 3, then after "##ug": h ##ug 3, then ##u ##n 2; the rest occur once.
        var vocab = WordPieceTrainer.Train("hug Hug hug pug pun bun", new() { VocabSize = 100 });
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "h", "p", "##g", "##n", "##u", "##ug", "hug", "##un"], vocab);
    }

    [Fact]
    public void ShakespeareVocabularyHasTheRequestedSizeAndLayout()
    {
        var vocab = ShakespeareVocab.Value;
        Assert.Equal(3000, vocab.Count);
        Assert.Equal(WordPieceVocabulary.SpecialTokens, vocab[..5]);
        Assert.Equal(vocab.Count, vocab.Distinct(StringComparer.Ordinal).Count());
        Assert.Contains("the", vocab);
        Assert.Contains("king", vocab);
        Assert.DoesNotContain(vocab[5..], t => t.Any(char.IsUpper));
        string path = Path.Combine(dir, "vocab.txt");
        WordPieceVocabulary.Write(path, vocab);
        Assert.Equal(vocab, WordPieceVocabulary.Validate(path));
    }

    [Fact]
    public void EveryTrainingWordTokenizesWithoutUnknown()
    {
        var tokenizer = Load(ShakespeareVocab.Value);
        var words = WordPieceTrainer.CountWords(Shakespeare, new());
        Assert.InRange(words.Count, 11_000, 12_000);
        foreach (var word in words.Keys)
        {
            var ids = tokenizer.EncodeToIds(word, addSpecialTokens: false);
            Assert.DoesNotContain(1, ids); // [UNK]
            Assert.Equal(word, tokenizer.Decode(ids));
        }
        // A word of unseen characters is unknown; a new word of seen characters is not.
        Assert.Equal([1], tokenizer.EncodeToIds("ж", addSpecialTokens: false));
        Assert.DoesNotContain(1, tokenizer.EncodeToIds("zyzzyvax", addSpecialTokens: false));
    }

    [Fact]
    public void DecodeOfEncodeIsTheLowerCasedWordsJoinedBySpaces()
    {
        // Round trip, precisely: decode(encode(line)) == the line lower-cased and cut into \w+ runs and single punctuation
        // marks (other symbols dropped), joined by one space except before . , ! ? ' (BertTokenizer's decode glues ##
        // pieces to the previous piece, and those five marks to the previous word).
        var tokenizer = Load(ShakespeareVocab.Value);
        var lines = Shakespeare.Split('\n').Where(l => l.Length > 0).Take(2000).ToArray();
        int pieces = 0;
        foreach (var line in lines)
        {
            var ids = tokenizer.EncodeToIds(line, addSpecialTokens: false);
            pieces += ids.Count;
            var words = Regex.Matches(line.ToLowerInvariant(), @"\w+|\p{P}").Select(m => m.Value).ToArray();
            string expected = string.Concat(words.Select((w, i) => i > 0 && !".,!?'".Contains(w[0]) ? " " + w : w));
            Assert.Equal(expected, tokenizer.Decode(ids));
        }
        Assert.Equal("before we proceed any further, hear me speak.", tokenizer.Decode(tokenizer.EncodeToIds(lines[1], addSpecialTokens: false)));
        Assert.Equal("no, i' ll not meddle.", tokenizer.Decode(tokenizer.EncodeToIds("No, I'll not meddle.", addSpecialTokens: false)));
        Assert.InRange(pieces, 1000, 40_000);
    }

    [Fact]
    public void LineBreaksAndTabsSeparateWords()
    {
        // Microsoft.ML.Tokenizers 2.0.1 alone joins "worthily\nas" into one word (dotnet/machinelearning#7724).
        var words = WordPieceTrainer.CountWords("worthily\nas\tthey\r\nwere", new());
        Assert.Equal(["as", "they", "were", "worthily"], words.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void OutputDependsOnlyOnTheCorpusWords()
    {
        var lines = Shakespeare.Split('\n')[..4000];
        var options = new WordPieceTrainerOptions { VocabSize = 800 };
        var a = WordPieceTrainer.Train(string.Join('\n', lines), options);
        var b = WordPieceTrainer.Train(string.Join('\n', lines), options);
        var reversed = WordPieceTrainer.Train(string.Join('\n', lines.Reverse()), options);
        Assert.Equal(a, b);
        Assert.Equal(a, reversed);
    }

    [Fact]
    public void VocabularySizeIsHonouredAndTooSmallASizeIsRefused()
    {
        string text = string.Join('\n', Shakespeare.Split('\n')[..2000]);
        foreach (int size in new[] { 100, 500, 1000 })
            Assert.Equal(size, WordPieceTrainer.Train(text, new() { VocabSize = size }).Count);
        var e = Assert.Throws<ArgumentException>(() => WordPieceTrainer.Train(text, new() { VocabSize = 20 }));
        Assert.Contains("at least", e.Message);
        // A corpus too small to fill the size stops when no pair repeats.
        Assert.Equal(14, WordPieceTrainer.Train("hug hug hug pug pun bun", new() { VocabSize = 1000 }).Count);
    }

    [Fact]
    public void AccentsAndCaseFollowTheOptions()
    {
        // Accent stripping is NFD then dropping non-spacing marks; with InvariantGlobalization (this repository's
        // setting) .NET does not decompose non-ASCII text, so "é" stays whole. Trainer and tokenizer agree either way.
        bool decomposes = "é".Normalize(System.Text.NormalizationForm.FormD).Length == 2;
        var uncased = WordPieceTrainer.Train("Café café CAFÉ", new() { VocabSize = 100 });
        Assert.Contains(decomposes ? "cafe" : "café", uncased);
        Assert.DoesNotContain(uncased[5..], t => t.Contains('É') || t.Contains('C'));
        var uncasedTokenizer = Load(uncased);
        Assert.Equal(decomposes ? "cafe cafe cafe" : "café café café", uncasedTokenizer.Decode(uncasedTokenizer.EncodeToIds("Café café CAFÉ", addSpecialTokens: false)));
        var cased = WordPieceTrainer.Train("Café café café CAFÉ", new() { VocabSize = 100, LowerCase = false, StripAccents = false });
        Assert.Contains("café", cased);
        Assert.Contains("C", cased);
        var tokenizer = Load(cased, lowerCase: false);
        Assert.Equal("Café café CAFÉ", tokenizer.Decode(tokenizer.EncodeToIds("Café café CAFÉ", addSpecialTokens: false)));
    }

    [Fact]
    public void ValidateNamesTheMissingSpecialToken()
    {
        string path = Path.Combine(dir, "vocab.txt");
        WordPieceVocabulary.Write(path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"]);
        var e = Assert.Throws<InvalidDataException>(() => WordPieceVocabulary.Validate(path));
        Assert.Contains("[MASK]", e.Message);
        Assert.DoesNotContain("[CLS],", e.Message);
        WordPieceVocabulary.Write(path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"]);
        Assert.Contains("'a' twice", Assert.Throws<InvalidDataException>(() => WordPieceVocabulary.Validate(path)).Message);
    }
}
