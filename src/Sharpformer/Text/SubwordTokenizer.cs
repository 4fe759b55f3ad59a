using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>
/// A byte-level BPE vocabulary learned by <see cref="BpeTrainer"/> (GPT-2's and BART's scheme): text is cut by
/// GPT-2's pre-tokenizing pattern, each piece's UTF-8 bytes become 256 printable stand-in characters (a space is
/// 'Ġ'), and merges join them. Every byte is in the vocabulary, so any text encodes without an unknown token and
/// decodes back exactly. Encoding and decoding are Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>; the files
/// are its <c>vocab.json</c> + <c>merges.txt</c>, which must be loaded with byte-level on and this pre-tokenizer
/// (<see cref="Load"/> does).
/// </summary>
public sealed partial class SubwordTokenizer : ITokenizer
{
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    /// <summary>The special tokens, with fairseq's ids: &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2, &lt;unk&gt; 3.</summary>
    public static readonly IReadOnlyList<string> SpecialTokens = ["<s>", "<pad>", "</s>", "<unk>"];
    public const int BosId = 0, PadId = 1, EosId = 2, UnkId = 3;
    /// <summary>The id of byte 0; bytes take ids <see cref="FirstByteId"/> to <see cref="FirstByteId"/> + 255.</summary>
    public const int FirstByteId = 4;

    readonly BpeTokenizer tokenizer;

    readonly BpeVocabulary? vocabulary;

    SubwordTokenizer(BpeTokenizer tokenizer, BpeVocabulary? vocabulary = null) => (this.tokenizer, this.vocabulary) = (tokenizer, vocabulary);

    /// <summary>The tokenizer of a vocabulary held in memory (a checkpoint's "bpe" spec), without files.</summary>
    public static SubwordTokenizer FromVocabulary(BpeVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        for (int id = 0; id < SpecialTokens.Count; id++)
            if (vocabulary.Tokens.Count <= id || vocabulary.Tokens[id] != SpecialTokens[id])
                throw new InvalidDataException($"A BPE vocabulary must give {SpecialTokens[id]} the id {id}.");
        var options = new BpeOptions(vocabulary.Tokens.Select((t, id) => new KeyValuePair<string, int>(t, id)))
        {
            Merges = vocabulary.Merges.Select(m => $"{m.Left} {m.Right}"),
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(PreTokenizePattern(), null),
        };
        return new SubwordTokenizer(BpeTokenizer.Create(options), vocabulary);
    }

    /// <summary>The vocabulary inline ("bpe": tokens and merges), for checkpoints; only a tokenizer made by <see cref="FromVocabulary"/> has it.</summary>
    public TokenizerSpec Spec => vocabulary is null
        ? throw new InvalidOperationException("This BPE tokenizer was loaded from files; load it with BpeVocabulary.Load + FromVocabulary to describe it.")
        : new TokenizerSpec { Kind = "bpe", VocabSize = vocabulary.Tokens.Count, Tokens = vocabulary.Tokens, Merges = vocabulary.Merges.Select(m => $"{m.Left} {m.Right}").ToArray() };

    /// <summary>The library tokenizer doing the work.</summary>
    public BpeTokenizer Inner => tokenizer;
    public int VocabSize => tokenizer.Vocabulary.Count;

    /// <summary>Loads <c>vocab.json</c> and <c>merges.txt</c> from a folder written by <see cref="BpeVocabulary.Save"/>.</summary>
    public static SubwordTokenizer Load(string folder)
    {
        string vocab = Path.Combine(folder, VocabFile), merges = Path.Combine(folder, MergesFile);
        foreach (var file in new[] { vocab, merges })
            if (!File.Exists(file)) throw new FileNotFoundException($"A BPE vocabulary needs {VocabFile} and {MergesFile}; {file} does not exist.", file);
        // Special tokens are not given to the library: text that happens to contain "<s>" stays text; the model
        // adds the ids itself.
        var tokenizer = BpeTokenizer.Create(new BpeOptions(vocab, merges) { ByteLevel = true, PreTokenizer = new RegexPreTokenizer(PreTokenizePattern(), null) });
        for (int id = 0; id < SpecialTokens.Count; id++)
            if (!tokenizer.Vocabulary.TryGetValue(SpecialTokens[id], out int found) || found != id)
                throw new InvalidDataException($"{vocab} must give {SpecialTokens[id]} the id {id}.");
        return new SubwordTokenizer(tokenizer);
    }

    /// <summary>The text's token ids, without &lt;s&gt; or &lt;/s&gt;.</summary>
    public int[] Encode(string text) => tokenizer.EncodeToIds(text).ToArray();

    /// <summary>The text of the ids; special tokens (padding, sentence boundaries) are left out.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var kept = new List<int>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new ArgumentException($"Token {id} is outside the vocabulary of {VocabSize}.");
            if (id >= SpecialTokens.Count) kept.Add(id);
        }
        return tokenizer.Decode(kept) ?? "";
    }

    /// <summary>GPT-2's pre-tokenizing pattern: contractions, letters, digits, other symbols, each with one leading space.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    internal static partial Regex PreTokenizePattern();

    /// <summary>
    /// GPT-2's byte → character table: printable Latin-1 bytes stand for themselves, the other 68 take the
    /// characters from U+0100 on, in byte order. The library's byte-level mode uses the same table.
    /// </summary>
    internal static readonly char[] ByteToChar = BuildByteTable();

    static char[] BuildByteTable()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            table[b] = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE ? (char)b : (char)next++;
        return table;
    }
}
