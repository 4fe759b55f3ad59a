using Sharpformer.Data;
using Sharpformer.Text;

namespace Sharpformer.Tests.Data;

/// <summary>Tiny Shakespeare (a committed copy of char-rnn's input.txt) prepared as nanoGPT does, both tokenizers.</summary>
public sealed class TinyShakespeareTests : IDisposable
{
    static readonly string Text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "tinyshakespeare.txt"));
    readonly string dir = Directory.CreateTempSubdirectory("sf-ts-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void CharPreparationMatchesNanoGpt()
    {
        Assert.Equal(1_115_394, Text.Length);
        var (train, val, vocab) = Dataset.Prepare(Text, null, dir);
        Assert.Equal((1_003_854L, 111_540L, 65), (train, val, vocab));
        using var data = Dataset.Open(dir);
        Assert.Equal("char", data.Tokenizer.Kind);
        Assert.Equal("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", data.Tokenizer.Chars);
        var tokenizer = data.Tokenizer.Create();
        var first = new int[40];
        data.Train.Read(0, first);
        Assert.Equal("First Citizen:\nBefore we proceed any fur", tokenizer.Decode(first));
        Assert.Equal(2 * 1_003_854L, new FileInfo(Path.Combine(dir, "train.bin")).Length); // uint16 tokens
    }

    [Fact]
    public void Gpt2RoundTripOfTheWholeCorpusIsExact()
    {
        var t = Gpt2Tokenizer.Instance;
        var ids = t.Encode(Text);
        Assert.Equal(Text, t.Decode(ids));
        Assert.InRange(ids.Length, 300_000, 360_000); // nanoGPT's shakespeare: 301,966 + 36,059 tokens for its split
        Assert.Equal([5962, 22307, 25], ids[..3]); // "First", " Citizen", ":"
    }
}
