using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Text;

namespace Sharpformer.Data;

/// <summary>What a prepared text-classification folder's meta.json says: the task, the label names, the tokenizer and the sizes.</summary>
public sealed record TextClassificationMeta
{
    public const string Task = "classify";

    [JsonPropertyName("task")] public string TaskName { get; set; } = Task;
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    /// <summary>Label names by class index (sorted ordinally, as <see cref="TextClassificationData"/> keeps them).</summary>
    [JsonPropertyName("labels")] public string[] Labels { get; set; } = [];
    [JsonPropertyName("tokenizer")] public string Tokenizer { get; set; } = WordPieceTokenizer.Kind;
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; }
    /// <summary>The longest example in ids, [CLS] and [SEP] included; longer texts were cut to it.</summary>
    [JsonPropertyName("block_size")] public int BlockSize { get; set; }
    /// <summary>Whether examples are text pairs ([CLS] a [SEP] b [SEP], segment ids 0 then 1).</summary>
    [JsonPropertyName("text_pair")] public bool TextPair { get; set; }
    [JsonPropertyName("splits")] public Dictionary<string, int> Splits { get; set; } = [];
    /// <summary>Examples per split whose word pieces did not fit the block size and were cut (longest first).</summary>
    [JsonPropertyName("truncated")] public Dictionary<string, int> Truncated { get; set; } = [];
    [JsonPropertyName("skipped_empty")] public int SkippedEmpty { get; set; }
}

/// <summary>One prepared example: model input (ids, segment ids), class index, and the text it came from.</summary>
public sealed record EncodedTextExample(int[] Ids, int[] Segments, int Label, string Text, string? Pair);

/// <summary>One line of a split file: the label by name, the text(s), and the ids the tokenizer made of them.</summary>
public sealed record TextClassificationLine
{
    [JsonPropertyName("label")] public string Label { get; set; } = "";
    [JsonPropertyName("text")] public string Text { get; set; } = "";
    [JsonPropertyName("pair")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Pair { get; set; }
    [JsonPropertyName("ids")] public int[] Ids { get; set; } = [];
    [JsonPropertyName("segments")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int[]? Segments { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(TextClassificationMeta))]
public partial class TextClassificationJsonContext : JsonSerializerContext;

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(TextClassificationLine))]
public partial class TextClassificationLineJsonContext : JsonSerializerContext;

/// <summary>
/// A prepared text-classification folder: meta.json (<see cref="TextClassificationMeta"/>), the WordPiece tokenizer
/// (vocab.txt, tokenizer_config.json) its ids come from, and per split (train, val, test) SPLIT.jsonl, one example per
/// line with its label name, text and ids ([CLS] text [SEP], cut to the block size). The texts stay beside the ids so
/// a baseline can be fitted on the same split and a reader can see what the model saw.
/// </summary>
public static class TextClassificationFolder
{
    public const string MetaFile = "meta.json";
    public static readonly string[] SplitNames = ["train", "val", "test"];

    /// <summary>The files <see cref="Write"/> puts in a folder (and with --overwrite replaces).</summary>
    public static readonly string[] Files = [MetaFile, WordPieceTokenizer.VocabFileName, WordPieceTokenizer.ConfigFileName, "train.jsonl", "val.jsonl", "test.jsonl"];

    /// <summary>True when <paramref name="folder"/>'s meta.json names the classify task.</summary>
    public static bool IsClassificationFolder(string folder) => Dataset.TaskOf(folder) == TextClassificationMeta.Task;

    /// <summary>
    /// Tokenizes every split of <paramref name="data"/> with <paramref name="tokenizer"/> into examples of at most
    /// <paramref name="blockSize"/> ids and writes the folder (tokenizer included). Returns the meta written, whose
    /// <see cref="TextClassificationMeta.Truncated"/> counts the examples that were cut.
    /// </summary>
    public static TextClassificationMeta Write(string folder, TextClassificationData data, WordPieceTokenizer tokenizer, int blockSize, string source)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (data.Val.Count == 0)
            throw new ArgumentException($"{source} leaves no example for validation; give each class at least 5 rows (10% of a class goes to val) or a split column.");
        var splits = new Dictionary<string, IReadOnlyList<TextExample>> { ["train"] = data.Train, ["val"] = data.Val, ["test"] = data.Test };
        var meta = new TextClassificationMeta
        {
            Source = source, Labels = [.. data.LabelNames], VocabSize = tokenizer.VocabSize, BlockSize = blockSize,
            TextPair = data.Train.Concat(data.Val).Concat(data.Test).Any(e => e.Pair is not null), SkippedEmpty = data.SkippedEmptyTexts,
        };
        Directory.CreateDirectory(folder);
        tokenizer.Save(folder);
        foreach (var (name, examples) in splits)
        {
            var text = new StringBuilder();
            int truncated = 0;
            foreach (var e in examples)
            {
                var encoding = tokenizer.EncodeForModel(e.Text, e.Pair, blockSize);
                if (encoding.TruncatedTokens > 0) truncated++;
                var line = new TextClassificationLine
                {
                    Label = data.LabelNames[e.Label], Text = e.Text, Pair = e.Pair, Ids = encoding.Ids,
                    Segments = meta.TextPair ? encoding.SegmentIds : null,
                };
                text.Append(JsonSerializer.Serialize(line, TextClassificationLineJsonContext.Default.TextClassificationLine)).Append('\n');
            }
            File.WriteAllText(Path.Combine(folder, name + ".jsonl"), text.ToString(), new UTF8Encoding(false));
            meta.Splits[name] = examples.Count;
            meta.Truncated[name] = truncated;
        }
        File.WriteAllText(Path.Combine(folder, MetaFile), JsonSerializer.Serialize(meta, TextClassificationJsonContext.Default.TextClassificationMeta));
        return meta;
    }

    public static TextClassificationMeta ReadMeta(string folder)
    {
        string path = Path.Combine(folder, MetaFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder} has no {MetaFile}: prepare it with `sharpformer prepare classify`.", path);
        TextClassificationMeta meta;
        try { meta = JsonSerializer.Deserialize(File.ReadAllText(path), TextClassificationJsonContext.Default.TextClassificationMeta) ?? throw new InvalidDataException($"{path} is empty."); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not a valid classification meta.json: {e.Message}"); }
        if (meta.TaskName != TextClassificationMeta.Task) throw new InvalidDataException($"{path} describes task '{meta.TaskName}', not '{TextClassificationMeta.Task}'.");
        if (meta.Labels.Length < 2 || meta.Labels.Distinct(StringComparer.Ordinal).Count() != meta.Labels.Length)
            throw new InvalidDataException($"{path} must name at least two distinct labels.");
        if (meta.Tokenizer != WordPieceTokenizer.Kind) throw new InvalidDataException($"{path}: tokenizer '{meta.Tokenizer}' is not '{WordPieceTokenizer.Kind}'.");
        if (meta.BlockSize < 3 || meta.VocabSize < 1) throw new InvalidDataException($"{path}: block_size {meta.BlockSize} or vocab_size {meta.VocabSize} is out of range.");
        return meta;
    }

    /// <summary>One split of a prepared folder, every line checked against the meta (labels, vocabulary, block size).</summary>
    public static List<EncodedTextExample> ReadSplit(string folder, TextClassificationMeta meta, string split)
    {
        ArgumentNullException.ThrowIfNull(meta);
        string path = Path.Combine(folder, split + ".jsonl");
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder} has no {split} split ({split}.jsonl).", path);
        var labels = meta.Labels.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        var examples = new List<EncodedTextExample>();
        int lineNumber = 0;
        foreach (var raw in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (raw.Length == 0) continue;
            string where = $"{path} line {lineNumber}";
            TextClassificationLine line;
            try { line = JsonSerializer.Deserialize(raw, TextClassificationLineJsonContext.Default.TextClassificationLine) ?? throw new InvalidDataException($"{where} is null."); }
            catch (JsonException e) { throw new InvalidDataException($"{where} is not a valid example: {e.Message}"); }
            if (!labels.TryGetValue(line.Label, out int label)) throw new InvalidDataException($"{where} has label '{line.Label}', which meta.json does not list.");
            if (line.Ids.Length < 2 || line.Ids.Length > meta.BlockSize) throw new InvalidDataException($"{where} holds {line.Ids.Length} ids; the block size is {meta.BlockSize}.");
            foreach (int id in line.Ids)
                if ((uint)id >= (uint)meta.VocabSize) throw new InvalidDataException($"{where} holds id {id}, outside the vocabulary of {meta.VocabSize}.");
            var segments = line.Segments ?? new int[line.Ids.Length];
            if (segments.Length != line.Ids.Length || segments.Any(s => s is not (0 or 1)))
                throw new InvalidDataException($"{where}: segment ids must be 0 or 1, one per id.");
            examples.Add(new EncodedTextExample(line.Ids, segments, label, line.Text, line.Pair));
        }
        return examples;
    }
}
