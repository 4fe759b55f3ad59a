using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Text;

namespace Sharpformer.Tests.Text;

/// <summary>The character tokenizer counts Unicode code points, as a Python str does, and refuses what is not text.</summary>
public sealed class CharTokenizerTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-char-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void EachEmojiIsOneTokenAndTextRoundTripsExactly()
    {
        const string text = "I 😀 love 🎉 music 𝄞 and 😀 again 🎉!\n";
        var t = CharTokenizer.FromCorpus(text);
        var distinct = text.EnumerateRunes().Distinct().Count();
        Assert.Equal(distinct, t.VocabSize);
        var ids = t.Encode(text);
        Assert.Equal(text.EnumerateRunes().Count(), ids.Length);
        Assert.Equal(text, t.Decode(ids));
        Assert.Equal("😀", t.Decode([t.Encode("😀").Single()]));
        Assert.Equal("𝄞", t.Decode(t.Encode("𝄞")));

        // Through meta.json and back, as prepare and train see it.
        string json = JsonSerializer.Serialize(t.Spec, TextJsonContext.Default.TokenizerSpec);
        Assert.DoesNotContain("\\uFFFD", json, StringComparison.OrdinalIgnoreCase);
        var spec = JsonSerializer.Deserialize(json, TextJsonContext.Default.TokenizerSpec)!;
        Assert.Equal(distinct, spec.VocabSize);
        var reloaded = spec.Create();
        Assert.Equal(ids, reloaded.Encode(text));
        Assert.Equal(text, reloaded.Decode(ids));
    }

    [Fact]
    public void VocabularyIsSortedByCodePointAsNanoGpt()
    {
        // UTF-16 order would put the emoji's high surrogate (0xD83D) before U+FF01; Python's sorted(set(text)) does not.
        var t = CharTokenizer.FromCorpus("😀\uFF01a");
        Assert.Equal("a\uFF01😀", t.Vocabulary);
        Assert.Equal([2, 1, 0], t.Encode("😀\uFF01a"));
    }

    [Fact]
    public void BmpVocabularySavesExactlyAsBefore()
    {
        // Existing meta.json files and checkpoints hold the distinct UTF-16 characters, sorted, concatenated.
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "tinyshakespeare.txt")) + "éß—\u00A0";
        string before = new(text.Distinct().Order().ToArray());
        var t = CharTokenizer.FromCorpus(text);
        Assert.Equal(before, t.Vocabulary);
        var old = new TokenizerSpec { Kind = "char", VocabSize = before.Length, Chars = before };
        Assert.Equal(JsonSerializer.Serialize(old, TextJsonContext.Default.TokenizerSpec), JsonSerializer.Serialize(t.Spec, TextJsonContext.Default.TokenizerSpec));
        Assert.Equal(t.Encode(text), old.Create().Encode(text));
    }

    [Fact]
    public void LoneSurrogatesAreRefusedNotReplaced()
    {
        // A high surrogate without its pair, a low surrogate alone, text cut after a first half.
        // (Not theory data: xunit's serialisation of test cases would itself replace them with U+FFFD.)
        foreach (string text in new[] { "ab\uD83Dc", "ab\uDE00c", "abc\uD83D" })
        {
            Assert.Contains("lone surrogate", Assert.Throws<ArgumentException>(() => CharTokenizer.FromCorpus(text)).Message);
            var t = CharTokenizer.FromCorpus("abc");
            Assert.Contains("lone surrogate", Assert.Throws<ArgumentException>(() => t.Encode(text)).Message);
            Assert.Throws<ArgumentException>(() => new CharTokenizer(text));
        }
    }

    [Fact]
    public void UnknownCharacterIsNamedWithItsCodePoint()
    {
        var t = CharTokenizer.FromCorpus("ab😀");
        var e = Assert.Throws<ArgumentException>(() => t.Encode("a😀🎉"));
        Assert.Contains("U+1F389", e.Message);
        Assert.Contains("position 2", e.Message);
    }

    [Fact]
    public void PrepareNeverSplitsACharacterBetweenTrainAndVal()
    {
        // 11 UTF-16 units: the 90% cut (9) would fall between the emoji's two halves.
        string text = "aaaaaaaa😀b";
        var (train, val, vocab) = Dataset.Prepare(text, null, dir);
        Assert.Equal((9L, 1L, 3), (train, val, vocab));
    }

    [Fact]
    public void TextFileRefusesBinaryAndNonUtf8Input()
    {
        string path = Path.Combine(dir, "in.txt");
        File.WriteAllBytes(path, [0x61, 0xFF, 0xFE, 0x62]);
        Assert.Contains("not UTF-8", Assert.Throws<InvalidDataException>(() => TextFile.Read(path)).Message);
        File.WriteAllBytes(path, [0x61, 0x00, 0x62]);
        Assert.Contains("binary", Assert.Throws<InvalidDataException>(() => TextFile.Read(path)).Message);
        File.WriteAllText(path, "x 😀 y\n");
        Assert.Equal("x 😀 y\n", TextFile.Read(path));
        Assert.Throws<FileNotFoundException>(() => TextFile.Read(Path.Combine(dir, "missing.txt")));
    }
}
