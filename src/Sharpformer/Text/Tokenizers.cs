using System.Text.Json.Serialization;
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

    public ITokenizer Create() => Kind switch
    {
        "char" => new CharTokenizer(Chars ?? throw new InvalidDataException("A char tokenizer spec must list its chars.")),
        "gpt2" => Gpt2Tokenizer.Instance,
        _ => throw new InvalidDataException($"Unknown tokenizer '{Kind}' (known: char, gpt2)."),
    };
}

/// <summary>
/// Character-level tokenizer as nanoGPT's shakespeare_char: the vocabulary is the sorted set of distinct
/// characters of the corpus, ids are positions in it.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    readonly string chars;
    readonly Dictionary<char, int> ids;

    public CharTokenizer(string vocabulary)
    {
        if (vocabulary.Length == 0) throw new ArgumentException("A character vocabulary cannot be empty.");
        chars = vocabulary;
        ids = new Dictionary<char, int>(vocabulary.Length);
        for (int i = 0; i < vocabulary.Length; i++)
            if (!ids.TryAdd(vocabulary[i], i)) throw new ArgumentException($"The character vocabulary lists '{Printable(vocabulary[i])}' twice.");
    }

    /// <summary>The vocabulary of a corpus: its distinct characters, sorted by code point.</summary>
    public static CharTokenizer FromCorpus(string text)
    {
        var set = new SortedSet<char>(text, Comparer<char>.Create((a, b) => a.CompareTo(b)));
        return new CharTokenizer(string.Concat(set));
    }

    public int VocabSize => chars.Length;
    public string Vocabulary => chars;
    public TokenizerSpec Spec => new() { Kind = "char", VocabSize = chars.Length, Chars = chars };

    public int[] Encode(string text)
    {
        var result = new int[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (!ids.TryGetValue(text[i], out result[i]))
                throw new ArgumentException($"The character '{Printable(text[i])}' (U+{(int)text[i]:X4}) at position {i} is not in the model's vocabulary of {chars.Length} characters; use only characters of the training text.");
        }
        return result;
    }

    public string Decode(ReadOnlySpan<int> tokens)
    {
        var buffer = new char[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)chars.Length) throw new ArgumentException($"Token {tokens[i]} is outside the vocabulary of {chars.Length} characters.");
            buffer[i] = chars[tokens[i]];
        }
        return new string(buffer);
    }

    static string Printable(char c) => c switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ => c.ToString() };
}

/// <summary>GPT-2's byte-pair encoding (50,257 tokens) from Microsoft.ML.Tokenizers; the vocabulary ships in its data package.</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    public const int GptVocabSize = 50257;
    public const int EndOfText = 50256;
    static readonly Lazy<Gpt2Tokenizer> instance = new(() => new Gpt2Tokenizer());
    readonly TiktokenTokenizer tokenizer = TiktokenTokenizer.CreateForModel("gpt2");

    Gpt2Tokenizer() { }

    public static Gpt2Tokenizer Instance => instance.Value;
    public int VocabSize => GptVocabSize;
    public TokenizerSpec Spec => new() { Kind = "gpt2", VocabSize = GptVocabSize };

    public int[] Encode(string text) => tokenizer.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true).ToArray();

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
