using System.Buffers;
using System.Text;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>Turns text into token ids and back.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    /// <summary>What meta.json and checkpoints store to rebuild this tokenizer.</summary>
    TokenizerSpec Spec { get; }
    int[] Encode(string text);
    string Decode(ReadOnlySpan<int> ids);
}

/// <summary>A serialisable description of a tokenizer: "char" with its vocabulary, or "gpt2".</summary>
public sealed record TokenizerSpec
{
    [JsonPropertyName("tokenizer")] public string Kind { get; init; } = "char";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    /// <summary>For "char": the vocabulary, in id order.</summary>
    [JsonPropertyName("chars")] public string? Chars { get; init; }
    /// <summary>For "bpe" (<see cref="SubwordTokenizer"/>): the tokens in id order.</summary>
    [JsonPropertyName("tokens")] public IReadOnlyList<string>? Tokens { get; init; }
    /// <summary>For "bpe": the merges in rank order, "left right" each.</summary>
    [JsonPropertyName("merges")] public IReadOnlyList<string>? Merges { get; init; }

    public ITokenizer Create() => Kind switch
    {
        "char" => new CharTokenizer(Chars ?? throw new InvalidDataException("A char tokenizer spec must list its chars.")),
        "gpt2" => Gpt2Tokenizer.Instance,
        "bpe" => SubwordTokenizer.FromVocabulary(BpeVocabulary.FromSpec(this)),
        _ => throw new InvalidDataException($"Unknown tokenizer '{Kind}' (known: char, gpt2, bpe)."),
    };
}

/// <summary>
/// Character-level tokenizer as nanoGPT's shakespeare_char: the vocabulary is the sorted set of distinct
/// characters of the corpus, ids are positions in it. A character is a Unicode code point (<see cref="Rune"/>,
/// as a Python str counts them), so an emoji outside the Basic Multilingual Plane is one token, not two
/// UTF-16 halves; text that is not valid UTF-16 (a lone surrogate) is refused rather than turned into U+FFFD.
/// The saved vocabulary is the code points concatenated, so a BMP vocabulary saves exactly as before.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    readonly string chars;
    readonly Rune[] runes;
    readonly Dictionary<Rune, int> ids;

    public CharTokenizer(string vocabulary)
    {
        if (vocabulary.Length == 0) throw new ArgumentException("A character vocabulary cannot be empty.");
        chars = vocabulary;
        runes = [.. CodePoints(vocabulary, "The character vocabulary")];
        ids = new Dictionary<Rune, int>(runes.Length);
        for (int i = 0; i < runes.Length; i++)
            if (!ids.TryAdd(runes[i], i)) throw new ArgumentException($"The character vocabulary lists '{Printable(runes[i])}' twice.");
    }

    /// <summary>The vocabulary of a corpus: its distinct code points, sorted.</summary>
    public static CharTokenizer FromCorpus(string text) =>
        new(string.Concat(new SortedSet<Rune>(CodePoints(text, "The text")).Select(r => r.ToString())));

    public int VocabSize => runes.Length;
    public string Vocabulary => chars;
    public TokenizerSpec Spec => new() { Kind = "char", VocabSize = runes.Length, Chars = chars };

    public int[] Encode(string text)
    {
        var result = new int[text.Length];
        int n = 0, position = 0;
        foreach (var rune in CodePoints(text, "The text"))
        {
            if (!ids.TryGetValue(rune, out result[n++]))
                throw new ArgumentException($"The character '{Printable(rune)}' (U+{rune.Value:X4}) at position {position} is not in the model's vocabulary of {runes.Length} characters; use only characters of the training text.");
            position++;
        }
        return n == result.Length ? result : result[..n];
    }

    public string Decode(ReadOnlySpan<int> tokens)
    {
        var text = new StringBuilder(tokens.Length);
        foreach (int token in tokens)
        {
            if ((uint)token >= (uint)runes.Length) throw new ArgumentException($"Token {token} is outside the vocabulary of {runes.Length} characters.");
            text.Append(runes[token].ToString());
        }
        return text.ToString();
    }

    /// <summary>The code points of a string; a lone surrogate (invalid UTF-16, e.g. from binary data) is an error, not U+FFFD.</summary>
    static IEnumerable<Rune> CodePoints(string text, string what)
    {
        for (int i = 0, position = 0; i < text.Length; position++)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int used) != OperationStatus.Done)
                throw new ArgumentException($"{what} is not valid Unicode: it holds a lone surrogate U+{(int)text[i]:X4} at character {position} (binary data, or text cut in the middle of a character).");
            yield return rune;
            i += used;
        }
    }

    static string Printable(Rune r) => r.Value switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ => r.ToString() };
}

/// <summary>
/// GPT-2's byte-pair encoding (50,257 tokens) from Microsoft.ML.Tokenizers; the vocabulary ships in its data package.
/// <see cref="Encode"/> is tiktoken's encode_ordinary, as nanoGPT's prepare.py uses: a literal "&lt;|endoftext|&gt;"
/// in a user's text stays ordinary text (seven tokens), never the special token <see cref="EndOfText"/>.
/// </summary>
public sealed partial class Gpt2Tokenizer : ITokenizer
{
    public const string EndOfTextLiteral = "<|endoftext|>";
    public const int GptVocabSize = 50257;
    public const int EndOfText = 50256;
    static readonly Lazy<Gpt2Tokenizer> instance = new(() => new Gpt2Tokenizer());
    readonly TiktokenTokenizer tokenizer = TiktokenTokenizer.CreateForModel("gpt2");

    Gpt2Tokenizer() { }

    public static Gpt2Tokenizer Instance => instance.Value;
    public int VocabSize => GptVocabSize;
    public TokenizerSpec Spec => new() { Kind = "gpt2", VocabSize = GptVocabSize };

    public int[] Encode(string text) =>
        text.Contains(EndOfTextLiteral, StringComparison.Ordinal) ? EncodeOrdinary(text) : EncodeAllowingEndOfText(text);

    /// <summary>Encodes with "&lt;|endoftext|&gt;" in the text read as the special token (tiktoken's allowed_special, as nanoGPT's sample.py prompts).</summary>
    public int[] EncodeAllowingEndOfText(string text) =>
        tokenizer.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true).ToArray();

    /// <summary>
    /// Splits with GPT-2's own pattern (the one Microsoft.ML.Tokenizers uses, minus its special-token split) and
    /// encodes each piece alone; the pattern cuts "&lt;|endoftext|&gt;" into "&lt;|", "endoftext", "|&gt;", so no piece
    /// is the special token. Slower than the library's own loop, so used only when the literal occurs.
    /// </summary>
    internal int[] EncodeOrdinary(string text)
    {
        var ids = new List<int>(text.Length / 3);
        foreach (var piece in Gpt2Pieces().EnumerateMatches(text))
            ids.AddRange(tokenizer.EncodeToIds(text.AsSpan(piece.Index, piece.Length), considerPreTokenization: false, considerNormalization: false));
        return [.. ids];
    }

    [GeneratedRegex(@"'(?:[sdmt]|ll|ve|re)| ?(?>\p{L}+)| ?(?>\p{N}+)| ?(?>[^\s\p{L}\p{N}]+)|(?>\s+)$|\s+(?!\S)|\s")]
    private static partial Regex Gpt2Pieces();

    public string Decode(ReadOnlySpan<int> ids)
    {
        foreach (var id in ids)
            if ((uint)id >= GptVocabSize) throw new ArgumentException($"Token {id} is outside GPT-2's vocabulary of {GptVocabSize}.");
        return tokenizer.Decode(ids.ToArray()) ?? "";
    }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(TokenizerSpec))]
public partial class TextJsonContext : JsonSerializerContext;
