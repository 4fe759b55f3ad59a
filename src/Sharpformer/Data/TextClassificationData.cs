using System.Text;
using System.Text.Json;

namespace Sharpformer.Data;

/// <summary>One labelled text (with its optional second text) as a class index into the label names.</summary>
public sealed record TextExample(string Text, string? Pair, int Label);

/// <summary>A row as read from a file, before labels become indices: its 1-based line in the file.</summary>
public sealed record TextRow(string Text, string? Pair, string Label, string? Split, int Line);

/// <summary>Which columns hold what, and how to split when the file does not say.</summary>
public sealed record TextClassificationOptions
{
    public string TextColumn { get; init; } = "text";
    public string LabelColumn { get; init; } = "label";
    public string? TextPairColumn { get; init; }
    /// <summary>A column whose values (train, val/valid/validation/dev, test) place each row; else a stratified split.</summary>
    public string? SplitColumn { get; init; }
    public double ValFraction { get; init; } = 0.1;
    public double TestFraction { get; init; } = 0.1;
    /// <summary>Rows whose text is empty or blank are an error unless this is set; then they are skipped and counted.</summary>
    public bool SkipEmptyTexts { get; init; }
}

/// <summary>
/// A text-classification dataset read from CSV (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes),
/// TSV (tab-separated, no quoting) or JSONL (one object per line), with the label names sorted (ordinal) and kept.
/// Without a split column the split is stratified and deterministic: within each class, rows are ordered by a 64-bit
/// FNV-1a hash of their text (then by line) and the first round(n·val) go to val, the next round(n·test) to test, the
/// rest to train. A row's place depends only on its own text and its class's size, not on the file's order. Each
/// split keeps the file's order.
/// </summary>
public sealed class TextClassificationData
{
    public required IReadOnlyList<string> LabelNames { get; init; }
    public required IReadOnlyList<TextExample> Train { get; init; }
    public required IReadOnlyList<TextExample> Val { get; init; }
    public required IReadOnlyList<TextExample> Test { get; init; }
    /// <summary>Rows skipped for an empty text (only with <see cref="TextClassificationOptions.SkipEmptyTexts"/>).</summary>
    public int SkippedEmptyTexts { get; init; }

    /// <summary>Reads a .csv, .tsv (.tab) or .jsonl (.ndjson) file by its extension.</summary>
    public static TextClassificationData Read(string path, TextClassificationOptions options)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The data file '{path}' does not exist.", path);
        string text = File.ReadAllText(path, Encoding.UTF8);
        var (columns, records) = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => ParseCsv(text, ','),
            ".tsv" or ".tab" => ParseTsv(text),
            ".jsonl" or ".ndjson" => ParseJsonLines(text),
            var other => throw new ArgumentException($"Cannot tell the format of '{path}' from its extension '{other}': use .csv, .tsv or .jsonl."),
        };
        return FromRows(ToRows(columns, records, options, path), options, path);
    }

    /// <summary>Labels, empty-text check and split for rows from any source (a file, or a corpus reader).</summary>
    public static TextClassificationData FromRows(IEnumerable<TextRow> rows, TextClassificationOptions options, string source)
    {
        var kept = new List<TextRow>();
        var emptyLines = new List<int>();
        foreach (var row in rows)
        {
            if (string.IsNullOrWhiteSpace(row.Text)) emptyLines.Add(row.Line);
            else kept.Add(row);
        }
        if (emptyLines.Count > 0 && !options.SkipEmptyTexts)
            throw new InvalidDataException($"{emptyLines.Count} row{(emptyLines.Count > 1 ? "s" : "")} of '{source}' {(emptyLines.Count > 1 ? "have" : "has")} an empty text (line{(emptyLines.Count > 1 ? "s" : "")} {string.Join(", ", emptyLines.Take(5))}{(emptyLines.Count > 5 ? ", …" : "")}); remove them or skip them (--skip-empty).");
        if (kept.Count == 0) throw new InvalidDataException($"'{source}' holds no rows with a text.");

        var labelNames = kept.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (labelNames.Length < 2)
            throw new InvalidDataException($"The label column '{options.LabelColumn}' of '{source}' holds one class ('{labelNames[0]}') in {kept.Count} rows; classification needs at least two.");
        var labelIds = labelNames.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        TextExample Example(TextRow r) => new(r.Text, r.Pair, labelIds[r.Label]);

        var train = new List<TextRow>();
        var val = new List<TextRow>();
        var test = new List<TextRow>();
        if (options.SplitColumn is not null)
        {
            foreach (var row in kept)
            {
                (row.Split?.Trim().ToLowerInvariant() switch
                {
                    "train" => train,
                    "val" or "valid" or "validation" or "dev" => val,
                    "test" => test,
                    _ => throw new InvalidDataException($"Line {row.Line} of '{source}' has '{row.Split}' in the split column '{options.SplitColumn}'; use train, val (valid, validation, dev) or test."),
                }).Add(row);
            }
            if (train.Count == 0) throw new InvalidDataException($"The split column '{options.SplitColumn}' of '{source}' puts no row in train.");
        }
        else
        {
            if (options.ValFraction < 0 || options.TestFraction < 0 || options.ValFraction + options.TestFraction >= 1)
                throw new ArgumentException($"Validation and test fractions {options.ValFraction} and {options.TestFraction} must be non-negative and leave rows for training.");
            foreach (var group in kept.GroupBy(r => r.Label))
            {
                var ordered = group.OrderBy(r => Fnv1a(r.Text, r.Pair)).ThenBy(r => r.Line).ToArray();
                int nVal = (int)Math.Round(ordered.Length * options.ValFraction, MidpointRounding.AwayFromZero);
                int nTest = (int)Math.Round(ordered.Length * options.TestFraction, MidpointRounding.AwayFromZero);
                val.AddRange(ordered[..nVal]);
                test.AddRange(ordered[nVal..(nVal + nTest)]);
                train.AddRange(ordered[(nVal + nTest)..]);
            }
        }
        List<TextExample> InFileOrder(List<TextRow> split) => [.. split.OrderBy(r => r.Line).Select(Example)];
        return new TextClassificationData
        {
            LabelNames = labelNames, Train = InFileOrder(train), Val = InFileOrder(val), Test = InFileOrder(test),
            SkippedEmptyTexts = emptyLines.Count,
        };
    }

    static IEnumerable<TextRow> ToRows(string[] columns, List<(int Line, string?[] Values)> records, TextClassificationOptions options, string source)
    {
        int Column(string name, string option)
        {
            int i = Array.IndexOf(columns, name);
            return i >= 0 ? i : throw new ArgumentException($"'{source}' has no column '{name}' ({option}); its columns are: {string.Join(", ", columns.Select(c => $"'{c}'"))}.");
        }
        int text = Column(options.TextColumn, "--text-column");
        int label = Column(options.LabelColumn, "--label-column");
        int pair = options.TextPairColumn is null ? -1 : Column(options.TextPairColumn, "--text-pair-column");
        int split = options.SplitColumn is null ? -1 : Column(options.SplitColumn, "--split-column");
        foreach (var (line, values) in records)
        {
            string? labelValue = values[label];
            if (string.IsNullOrWhiteSpace(labelValue)) throw new InvalidDataException($"Line {line} of '{source}' has no label in column '{options.LabelColumn}'.");
            yield return new TextRow(values[text] ?? "", pair < 0 ? null : values[pair] ?? "", labelValue.Trim(), split < 0 ? null : values[split], line);
        }
    }

    /// <summary>RFC 4180: the first record is the header; fields may be quoted, with "" for a quote and line breaks inside.</summary>
    internal static (string[] Columns, List<(int Line, string?[] Values)> Records) ParseCsv(string text, char delimiter)
    {
        var records = new List<(int Line, string?[] Values)>();
        var fields = new List<string?>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool atFieldStart = true, anyContent = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (atFieldStart && c == '"')
            {
                int openLine = line;
                atFieldStart = false; anyContent = true; i++;
                while (true)
                {
                    if (i >= text.Length) throw new InvalidDataException($"The quoted field opened on line {openLine} is never closed.");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    if (text[i] == '\n') line++;
                    field.Append(text[i++]);
                }
                if (i < text.Length && text[i] != delimiter && text[i] != '\n' && text[i] != '\r')
                    throw new InvalidDataException($"Line {line}: '{text[i]}' follows a closing quote; a quoted field must end at a '{delimiter}' or the line's end.");
                continue;
            }
            if (c == delimiter) { EndField(); atFieldStart = true; anyContent = true; i++; continue; }
            if (c == '\r' || c == '\n')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                i++;
                EndRecord();
                line++;
                recordLine = line;
                continue;
            }
            field.Append(c); atFieldStart = false; anyContent = true; i++;
        }
        EndRecord();
        if (records.Count == 0) throw new InvalidDataException("The file is empty: it has no header line.");
        var columns = records[0].Values.Select(v => (v ?? "").Trim()).ToArray();
        records.RemoveAt(0);
        foreach (var (recLine, values) in records)
            if (values.Length != columns.Length)
                throw new InvalidDataException($"Line {recLine} has {values.Length} field{(values.Length == 1 ? "" : "s")}, the header has {columns.Length}.");
        return (columns, records);

        void EndField() { fields.Add(field.ToString()); field.Clear(); }
        void EndRecord()
        {
            if (anyContent) { EndField(); records.Add((recordLine, [.. fields])); }
            fields.Clear(); field.Clear(); atFieldStart = true; anyContent = false;
        }
    }

    /// <summary>Tab-separated values: one record per line, no quoting (a tab or line break cannot occur in a field).</summary>
    internal static (string[] Columns, List<(int Line, string?[] Values)> Records) ParseTsv(string text)
    {
        var lines = text.Split('\n');
        int header = Array.FindIndex(lines, l => l.TrimEnd('\r').Length > 0);
        if (header < 0) throw new InvalidDataException("The file is empty: it has no header line.");
        var columns = lines[header].TrimEnd('\r').Split('\t').Select(c => c.Trim()).ToArray();
        var records = new List<(int Line, string?[] Values)>();
        for (int n = header + 1; n < lines.Length; n++)
        {
            string l = lines[n].TrimEnd('\r');
            if (l.Length == 0) continue;
            var values = l.Split('\t');
            if (values.Length != columns.Length) throw new InvalidDataException($"Line {n + 1} has {values.Length} field{(values.Length == 1 ? "" : "s")}, the header has {columns.Length}.");
            records.Add((n + 1, values));
        }
        return (columns, records);
    }

    /// <summary>One JSON object per line; the columns are every key seen, in order of first appearance.</summary>
    internal static (string[] Columns, List<(int Line, string?[] Values)> Records) ParseJsonLines(string text)
    {
        var columns = new List<string>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var objects = new List<(int Line, Dictionary<int, string?> Values)>();
        var lines = text.Split('\n');
        for (int n = 0; n < lines.Length; n++)
        {
            if (lines[n].Trim().Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(lines[n]); }
            catch (JsonException e) { throw new InvalidDataException($"Line {n + 1} is not valid JSON: {e.Message}"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"Line {n + 1} is JSON but not an object.");
                var values = new Dictionary<int, string?>();
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    if (!index.TryGetValue(property.Name, out int column)) { column = columns.Count; index[property.Name] = column; columns.Add(property.Name); }
                    values[column] = property.Value.ValueKind switch
                    {
                        JsonValueKind.String => property.Value.GetString(),
                        JsonValueKind.Null => null,
                        _ => property.Value.GetRawText(),
                    };
                }
                objects.Add((n + 1, values));
            }
        }
        var records = objects.Select(o => (o.Line, Enumerable.Range(0, columns.Count).Select(c => o.Values.GetValueOrDefault(c)).ToArray())).ToList();
        return ([.. columns], records);
    }

    static ulong Fnv1a(string text, string? pair)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text) hash = (hash ^ c) * 1099511628211UL;
        hash = (hash ^ 0xFFFF) * 1099511628211UL; // separates ("ab", "c") from ("a", "bc")
        foreach (char c in pair ?? "") hash = (hash ^ c) * 1099511628211UL;
        return hash;
    }
}
