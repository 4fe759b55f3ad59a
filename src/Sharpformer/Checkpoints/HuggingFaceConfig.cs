using System.Text.Json;

namespace Sharpformer.Checkpoints;

/// <summary>
/// A Hugging Face config.json: which model it describes (<see cref="ModelType"/>: "gpt2", "bert", "vit", …, from
/// model_type, else the architectures list) and its fields read by name, each checked for its JSON type, so a wrong
/// type, null or a non-object file is one clear <see cref="InvalidDataException"/> naming the file and the field.
/// </summary>
public sealed class HuggingFaceConfig : IDisposable
{
    public const string FileName = "config.json";

    /// <summary>The model types this engine imports and exports.</summary>
    public static readonly string[] Supported = ["gpt2", "bert", "vit"];

    readonly JsonDocument document;

    HuggingFaceConfig(string path, JsonDocument document)
    {
        Path = path;
        this.document = document;
        if (Root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path} must hold a JSON object, not {Describe(Root)}.");
    }

    public string Path { get; }
    JsonElement Root => document.RootElement;

    /// <summary>Reads a folder's config.json (text first, so bytes that are not UTF-8 cannot fail later inside GetString).</summary>
    public static HuggingFaceConfig Read(string folder)
    {
        string path = System.IO.Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' has no {FileName}.", path);
        try { return new HuggingFaceConfig(path, JsonDocument.Parse(File.ReadAllText(path))); }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not valid JSON: {e.Message}"); }
    }

    /// <summary>
    /// True when a folder holds a Hugging Face model rather than a Sharpformer checkpoint: its config.json is an
    /// object without our "format-version" and with model_type, architectures or (old GPT-2 files) n_positions.
    /// </summary>
    public static bool IsHuggingFaceFolder(string folder)
    {
        string path = System.IO.Path.Combine(folder, FileName);
        if (!File.Exists(path)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement;
            return r.ValueKind == JsonValueKind.Object && !r.TryGetProperty("format-version", out _)
                && (r.TryGetProperty("model_type", out _) || r.TryGetProperty("architectures", out _) || r.TryGetProperty("n_positions", out _));
        }
        catch (JsonException) { return false; }
    }

    /// <summary>
    /// model_type, or else what the first architecture names (BertForMaskedLM → bert, GPT2LMHeadModel → gpt2,
    /// ViTForImageClassification → vit), or gpt2 for the oldest GPT-2 files that have only n_positions.
    /// </summary>
    public string ModelType
    {
        get
        {
            if (Field("model_type") is { } type) return Text(type, "model_type");
            var first = Architectures.FirstOrDefault();
            if (first is not null)
                foreach (var (prefix, kind) in new[] { ("Bert", "bert"), ("GPT2", "gpt2"), ("ViT", "vit") })
                    if (first.StartsWith(prefix, StringComparison.Ordinal)) return kind;
            if (Field("n_positions") is not null) return "gpt2";
            throw new InvalidDataException($"{Path} names no model_type{(first is null ? "" : $" and its architecture '{first}' is not one this engine knows")}.");
        }
    }

    /// <summary>The "architectures" list (empty when absent).</summary>
    public IReadOnlyList<string> Architectures =>
        Field("architectures") is { ValueKind: JsonValueKind.Array } a ? [.. a.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => Text(e, "architectures"))] : [];

    /// <summary>Throws unless <see cref="ModelType"/> is one this engine imports, naming those it does.</summary>
    public void EnsureSupported()
    {
        string type = ModelType;
        if (!Supported.Contains(type))
            throw new InvalidDataException($"{Path}: model_type '{type}' is not supported; Sharpformer imports {string.Join(", ", Supported)}.");
    }

    /// <summary>A field's value, or null when it is absent or JSON null.</summary>
    public JsonElement? Field(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>A 32-bit integer field (or its older <paramref name="alternative"/> name); <paramref name="fallback"/> when absent, else an error.</summary>
    public int Int(string name, int? fallback = null, string? alternative = null)
    {
        var v = Field(name) ?? (alternative is null ? null : Field(alternative));
        if (v is { ValueKind: JsonValueKind.Number } n && n.TryGetInt32(out int i)) return i;
        if (v is null && fallback is { } f) return f;
        throw new InvalidDataException(v is null
            ? $"{Path} has no '{name}'{(alternative is null ? "" : $" (nor '{alternative}')")}."
            : $"{Path}: '{name}' must be a 32-bit integer, not {Describe(v.Value)}.");
    }

    /// <summary>A finite float field, or <paramref name="fallback"/> when absent.</summary>
    public float Number(string name, float fallback)
    {
        if (Field(name) is not { } v) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite((float)d)) return (float)d;
        throw new InvalidDataException($"{Path}: '{name}' must be a finite number, not {Describe(v)}.");
    }

    /// <summary>A string field, or <paramref name="fallback"/> when absent.</summary>
    public string String(string name, string fallback) => Field(name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.String } s => Text(s, name),
        var s => throw new InvalidDataException($"{Path}: '{name}' must be a string, not {Describe(s.Value)}."),
    };

    /// <summary>A true/false field, or <paramref name="fallback"/> when absent.</summary>
    public bool Bool(string name, bool fallback) => Field(name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        var b => throw new InvalidDataException($"{Path}: '{name}' must be true or false, not {Describe(b.Value)}."),
    };

    /// <summary>id2label as a dictionary ("0" → "ham"); null when absent.</summary>
    public Dictionary<string, string>? Labels()
    {
        if (Field("id2label") is not { } labels) return null;
        if (labels.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{Path}: 'id2label' must be an object, not {Describe(labels)}.");
        return labels.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? Text(p.Value, "id2label") : p.Name);
    }

    /// <summary>A JSON string's text; an escaped lone surrogate is invalid data, not a crash.</summary>
    string Text(JsonElement e, string name)
    {
        try { return e.GetString()!; }
        catch (InvalidOperationException) { throw new InvalidDataException($"{Path}: '{name}' holds {e.GetRawText()}, which is not valid text."); }
    }

    /// <summary>A JSON value's kind (and a short excerpt) for error messages.</summary>
    static string Describe(JsonElement e)
    {
        string text = e.GetRawText();
        return $"{e.ValueKind.ToString().ToLowerInvariant()} {(text.Length > 40 ? text[..40] + "…" : text)}";
    }

    public void Dispose() => document.Dispose();
}
