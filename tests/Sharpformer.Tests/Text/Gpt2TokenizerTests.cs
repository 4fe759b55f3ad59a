using Sharpformer.Text;

namespace Sharpformer.Tests.Text;

/// <summary>GPT-2 encoding is tiktoken's encode_ordinary (nanoGPT's prepare.py): user text never yields the special token.</summary>
public sealed class Gpt2TokenizerTests
{
    static readonly Gpt2Tokenizer T = Gpt2Tokenizer.Instance;

    [Fact]
    public void LiteralEndOfTextStaysOrdinaryText()
    {
        // tiktoken: get_encoding("gpt2").encode_ordinary("<|endoftext|>") == [27, 91, 437, 1659, 5239, 91, 29]
        Assert.Equal([27, 91, 437, 1659, 5239, 91, 29], T.Encode("<|endoftext|>"));
        foreach (var text in new[] { "x<|endoftext|>.", "end.\n\n<|endoftext|>\n\nNext doc <|endoftext|><|endoftext|>", " <|endoftext|> 42's" })
        {
            var ids = T.Encode(text);
            Assert.DoesNotContain(Gpt2Tokenizer.EndOfText, ids);
            Assert.Equal(text, T.Decode(ids));
        }
        Assert.Equal([87, Gpt2Tokenizer.EndOfText, 13], T.EncodeAllowingEndOfText("x<|endoftext|>."));
        Assert.Equal("<|endoftext|>", T.Decode([Gpt2Tokenizer.EndOfText]));
    }

    [Fact]
    public void OrdinaryEncodingSplitsExactlyAsTheLibrary()
    {
        // The piece-by-piece path must equal the library's own loop wherever the literal is absent.
        var shakespeare = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "tinyshakespeare.txt"))[..60_000];
        const string tricky = "It's 2026: they'll've   spaces\t\ttabs \n\n  \r\n trailing   \n 12345 ünïcödé 😀🎉 <|end|> |> <|   ";
        foreach (var text in new[] { shakespeare, tricky, tricky.TrimEnd(), " ", "\n\n\n", "a" })
            Assert.Equal(T.EncodeAllowingEndOfText(text), T.EncodeOrdinary(text));
    }
}
