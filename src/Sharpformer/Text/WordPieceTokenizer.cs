using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>
/// How a WordPiece vocabulary normalises text, stored beside vocab.txt as Hugging Face's tokenizer_config.json
/// (same names), so a folder holding both loads here and in <c>BertTokenizer.from_pretrained</c>.
/// </summary>
public sealed record WordPieceSettings
{
    [JsonPropertyName("tokenizer_class")] public string TokenizerClass { get; set; } = "BertTokenizer";
    [JsonPropertyName("do_lower_case")] public bool LowerCase { get; set; } = true;
    /// <summary>Null follows <see cref="LowerCase"/>, as in Hugging Face (uncased BERT strips accents).</summary>
    [JsonPropertyName("strip_accents")] public bool? StripAccents { get; set; }
    [JsonPropertyName("tokenize_chinese_chars")] public bool SplitCjk { get; set; } = true;
    [JsonPropertyName("unk_token")] public string Unk { get; set; } = WordPieceVocabulary.Unk;
    [JsonPropertyName("sep_token")] public string Sep { get; set; } = WordPieceVocabulary.Sep;
    [JsonPropertyName("pad_token")] public string Pad { get; set; } = WordPieceVocabulary.Pad;
    [JsonPropertyName("cls_token")] public string Cls { get; set; } = WordPieceVocabulary.Cls;
    [JsonPropertyName("mask_token")] public string Mask { get; set; } = WordPieceVocabulary.Mask;

    public static WordPieceSettings From(WordPieceTrainerOptions options) =>
        new() { LowerCase = options.LowerCase, StripAccents = options.StripAccents, SplitCjk = options.SplitCjk };
}

/// <summary>A model input built from one text or a pair: ids, segment (token type) ids, and tokens cut off.</summary>
public sealed record BertEncoding(int[] Ids, int[] SegmentIds, int TruncatedTokens);

/// <summary>
/// BERT's WordPiece tokenizer: Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> over a vocab.txt, behind
/// <see cref="ITokenizer"/>. A checkpoint keeps the tokenizer as Hugging Face does: vocab.txt and tokenizer_config.json
/// in the checkpoint folder (<see cref="Save"/>, <see cref="Load"/>); its <see cref="TokenizerSpec"/> only says
/// "wordpiece" and the vocabulary size.
/// </summary>
public sealed class WordPieceTokenizer : ITokenizer
{
    public const string Kind = "wordpiece";
    public const string VocabFileName = "vocab.txt";
    public const string ConfigFileName = "tokenizer_config.json";

    readonly BertTokenizer tokenizer;
    readonly string[] tokens;

    public WordPieceTokenizer(string vocabPath, WordPieceSettings settings)
    {
        tokens = WordPieceVocabulary.Validate(vocabPath, [settings.Pad, settings.Unk, settings.Cls, settings.Sep, settings.Mask]);
        Settings = settings;
        var options = WordPieceVocabulary.Options(settings.LowerCase, settings.StripAccents ?? settings.LowerCase, settings.SplitCjk);
        options.UnknownToken = settings.Unk; options.PaddingToken = settings.Pad; options.ClassificationToken = settings.Cls;
        options.SeparatorToken = settings.Sep; options.MaskingToken = settings.Mask;
        tokenizer = BertTokenizer.Create(vocabPath, options);
    }

    /// <summary>Loads vocab.txt and, when present, tokenizer_config.json (absent: uncased BERT) from a folder.</summary>
    public static WordPieceTokenizer Load(string folder) => Load(folder, Path.Combine(folder, VocabFileName));

    /// <summary>
    /// A vocabulary file (any name) with the tokenizer_config.json beside it when there is one, or a folder holding
    /// vocab.txt: how a user points at a checkpoint's or a Hugging Face model's vocabulary.
    /// </summary>
    public static WordPieceTokenizer LoadVocabulary(string path) =>
        Directory.Exists(path) ? Load(path) : Load(Path.GetDirectoryName(Path.GetFullPath(path))!, path);

    static WordPieceTokenizer Load(string folder, string vocabPath)
    {
        string configPath = Path.Combine(folder, ConfigFileName);
        var settings = new WordPieceSettings();
        if (File.Exists(configPath))
        {
            try { settings = JsonSerializer.Deserialize(File.ReadAllText(configPath), WordPieceJsonContext.Default.WordPieceSettings) ?? settings; }
            catch (JsonException e) { throw new InvalidDataException($"'{configPath}' is not a valid tokenizer config: {e.Message}"); }
        }
        return new WordPieceTokenizer(vocabPath, settings);
    }

    /// <summary>Learns a vocabulary from <paramref name="corpus"/> (<see cref="WordPieceTrainer"/>), writes it with its settings into <paramref name="folder"/>, and loads it.</summary>
    public static WordPieceTokenizer Learn(string corpus, WordPieceTrainerOptions options, string folder)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(folder);
        WordPieceTrainer.TrainToFile(corpus, Path.Combine(folder, VocabFileName), options);
        new WordPieceTokenizer(Path.Combine(folder, VocabFileName), WordPieceSettings.From(options)).Save(folder);
        return Load(folder);
    }

    /// <summary>Writes vocab.txt and tokenizer_config.json into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        WordPieceVocabulary.Write(Path.Combine(folder, VocabFileName), tokens);
        File.WriteAllText(Path.Combine(folder, ConfigFileName), JsonSerializer.Serialize(Settings, WordPieceJsonContext.Default.WordPieceSettings));
    }

    public WordPieceSettings Settings { get; }
    public int VocabSize => tokens.Length;
    public TokenizerSpec Spec => new() { Kind = Kind, VocabSize = tokens.Length };
    public int PadId => tokenizer.PaddingTokenId;
    public int UnkId => tokenizer.UnknownTokenId;
    public int ClsId => tokenizer.ClassificationTokenId;
    public int SepId => tokenizer.SeparatorTokenId;
    public int MaskId => tokenizer.MaskingTokenId;
    public bool IsSpecial(int id) => id == PadId || id == UnkId || id == ClsId || id == SepId || id == MaskId;
    public string Token(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : throw OutOfVocabulary(id);

    /// <summary>The word pieces of <paramref name="text"/>, without [CLS] or [SEP].</summary>
    public int[] Encode(string text) =>
        [.. tokenizer.EncodeToIds(WordPieceVocabulary.TabsAndNewlinesToSpaces(text), addSpecialTokens: false)];

    /// <summary>As BertTokenizer decodes: pieces joined by spaces, ## pieces glued, no space before . , ! ? '.</summary>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        foreach (int id in ids) if ((uint)id >= (uint)tokens.Length) throw OutOfVocabulary(id);
        return tokenizer.Decode(ids.ToArray(), skipSpecialTokens);
    }

    /// <summary>
    /// <c>[CLS] a [SEP]</c>, or <c>[CLS] a [SEP] b [SEP]</c> with segment ids 0 for the first part and 1 for the second,
    /// at most <paramref name="maxLength"/> ids. Longer inputs lose pieces from the end of the longer text first (Hugging
    /// Face's "longest_first"); how many were cut is returned, so callers can count and report it.
    /// </summary>
    public BertEncoding EncodeForModel(string text, string? pair, int maxLength)
    {
        int specials = pair is null ? 2 : 3;
        if (maxLength < specials + (pair is null ? 1 : 2))
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"A maximum length of {maxLength} leaves no room for text besides the {specials} special tokens.");
        var a = Encode(text);
        var b = pair is null ? [] : Encode(pair);
        int lengthA = a.Length, lengthB = b.Length;
        while (lengthA + lengthB + specials > maxLength)
        {
            if (lengthA >= lengthB) lengthA--; else lengthB--;
        }
        int truncated = a.Length + b.Length - lengthA - lengthB;

        var ids = new int[lengthA + lengthB + specials];
        var segments = new int[ids.Length];
        int n = 0;
        ids[n++] = ClsId;
        a.AsSpan(0, lengthA).CopyTo(ids.AsSpan(n)); n += lengthA;
        ids[n++] = SepId;
        if (pair is not null)
        {
            b.AsSpan(0, lengthB).CopyTo(ids.AsSpan(n)); n += lengthB;
            ids[n++] = SepId;
            segments.AsSpan(lengthA + 2).Fill(1);
        }
        return new BertEncoding(ids, segments, truncated);
    }

    ArgumentException OutOfVocabulary(int id) => new($"Token {id} is outside the WordPiece vocabulary of {tokens.Length}.");
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(WordPieceSettings))]
public partial class WordPieceJsonContext : JsonSerializerContext;
