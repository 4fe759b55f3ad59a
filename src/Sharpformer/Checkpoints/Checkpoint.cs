using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Checkpoints;

/// <summary>config.json of a checkpoint folder: any model's config (with its kind), the tokenizers it needs by role, and the run settings it was trained with.</summary>
public sealed record CheckpointConfig
{
    /// <summary>The role of a model's only tokenizer (a translator's two are "source" and "target").</summary>
    public const string TextRole = "text";

    public int FormatVersion { get; init; } = Checkpoint.FormatVersion;
    public required ModelConfig Model { get; init; }
    public IReadOnlyDictionary<string, TokenizerSpec> Tokenizers { get; init; } = new Dictionary<string, TokenizerSpec>();
    public RunSettings? Training { get; init; }

    /// <summary>The tokenizer of a model that has one ("text" role); an error for a model that has none.</summary>
    [JsonIgnore]
    public TokenizerSpec Tokenizer => Tokenizers.TryGetValue(TextRole, out var spec)
        ? spec
        : throw new InvalidDataException($"This {Model.Kind} checkpoint has no text tokenizer (it has: {(Tokenizers.Count == 0 ? "none" : string.Join(", ", Tokenizers.Keys))}).");
}

/// <summary>
/// A checkpoint folder, for any model: model.safetensors (parameters by name), config.json
/// (<see cref="CheckpointConfig"/>), and for resuming trainer.safetensors (AdamW moments) with trainer.json
/// (iteration, best val loss, generator states). Saving writes a sibling temporary folder, flushes it, then
/// swaps it into place by renames, so a crash at any moment leaves a loadable checkpoint: the old one, or
/// (between the two renames) the old one under its ".old" name, which <see cref="Resolve"/> finds.
/// </summary>
public static class Checkpoint
{
    /// <summary>2: model configs carry a "kind", tokenizers are named by role, run settings hold no model shape. Version 1 (GPT only) still loads.</summary>
    public const int FormatVersion = 2;
    public const string ModelFile = "model.safetensors", ConfigFile = "config.json";
    public const string TrainerFile = "trainer.safetensors", TrainerStateFile = "trainer.json";
    /// <summary>Where `train` keeps its checkpoint inside out-dir.</summary>
    public const string FolderName = "checkpoint";

    /// <summary>Accepts a checkpoint folder or an out-dir holding one; falls back to a checkpoint left aside by an interrupted save.</summary>
    public static string Resolve(string path)
    {
        foreach (var candidate in new[] { path, Path.Combine(path, FolderName) })
        {
            if (File.Exists(Path.Combine(candidate, ConfigFile))) return candidate;
            var parent = Path.GetDirectoryName(Path.GetFullPath(candidate));
            if (parent is not null && Directory.Exists(parent))
            {
                // The newest of the checkpoints left aside, by the iteration each recorded (then by name, so the
                // choice never depends on the order the directory lists them in).
                var aside = Directory.GetDirectories(parent, Path.GetFileName(Path.GetFullPath(candidate)) + ".old-*")
                    .Where(d => File.Exists(Path.Combine(d, ConfigFile)))
                    .OrderByDescending(d => SafeIteration(d)).ThenBy(d => d, StringComparer.Ordinal)
                    .FirstOrDefault();
                if (aside is not null) return aside;
            }
        }
        throw new DirectoryNotFoundException($"No checkpoint at '{path}' (expected {ConfigFile} and {ModelFile} there or in '{Path.Combine(path, FolderName)}').");
    }

    internal static int SafeIteration(string folder)
    {
        try { return ReadProgress(folder)?.Iteration ?? -1; }
        catch (InvalidDataException) { return -1; }
    }

    /// <summary>Writes a model with its one text tokenizer (and, with a trainer, everything needed to resume) into <paramref name="folder"/> atomically.</summary>
    public static void Save(string folder, Model model, TokenizerSpec tokenizer, RunSettings? training = null, Trainer? trainer = null) =>
        Save(folder, model, new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = tokenizer }, training, trainer);

    /// <summary>Writes a model with its tokenizers by role (and, with a trainer, everything needed to resume) into <paramref name="folder"/> atomically.</summary>
    public static void Save(string folder, Model model, IReadOnlyDictionary<string, TokenizerSpec> tokenizers, RunSettings? training = null, Trainer? trainer = null)
    {
        AtomicFolder.Write(folder, temp =>
        {
            WriteModel(Path.Combine(temp, ModelFile), model);
            var config = new CheckpointConfig { Model = model.Config, Tokenizers = tokenizers, Training = training };
            WriteText(Path.Combine(temp, ConfigFile), JsonSerializer.Serialize(config, CheckpointJsonContext.Default.CheckpointConfig));
            if (trainer is null) return;
            var writer = new SafetensorsWriter().WithChecksum();
            foreach (var (name, shape, m, v) in trainer.Optimizer.Moments())
            {
                writer.Add("m." + name, shape, m);
                writer.Add("v." + name, shape, v);
            }
            writer.Save(Path.Combine(temp, TrainerFile));
            WriteText(Path.Combine(temp, TrainerStateFile), JsonSerializer.Serialize(trainer.Progress, CheckpointJsonContext.Default.TrainerProgress));
        });
    }

    /// <summary>Writes every parameter under its name, with a checksum of the data that loading verifies.</summary>
    public static void WriteModel(string path, Model model)
    {
        var writer = new SafetensorsWriter().AddMetadata("format", "pt").WithChecksum();
        foreach (var p in model.Parameters) writer.Add(p.Name, p.Shape, () => p.Value.Span);
        writer.Save(path);
    }

    /// <summary>Reads and validates a checkpoint's config.json, upgrading a version-1 (GPT-only) one.</summary>
    public static CheckpointConfig ReadConfig(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        CheckpointConfig config;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("the file is not a JSON object");
            int version = root["format-version"] is JsonValue v && v.TryGetValue(out int n) ? n : throw new JsonException("no integer format-version");
            if (version > FormatVersion)
                throw new InvalidDataException($"{path} was written by a newer Sharpformer (format version {version}; this one reads up to {FormatVersion}): update Sharpformer.");
            if (version < 1) throw new JsonException($"format-version {version} is not a version Sharpformer ever wrote");
            if (version == 1) UpgradeFromVersion1(root);
            config = root.Deserialize(CheckpointJsonContext.Default.CheckpointConfig) ?? throw new JsonException("empty");
            if (config.Model is null) throw new JsonException("no model config");
            if (config.Tokenizers is null) throw new JsonException("tokenizers is null");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException or FormatException)
        {
            throw new InvalidDataException($"{path} is not a valid checkpoint config: {e.Message}");
        }
        try
        {
            config.Model.Validate();
            config.Training?.Validate();
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        foreach (var (role, spec) in config.Tokenizers) spec.Validate($"{path}, tokenizer '{role}'");
        return config;
    }

    /// <summary>Version 1 held a GPT config without a kind, one "tokenizer", and run settings mixed with the model's shape.</summary>
    static void UpgradeFromVersion1(JsonObject root)
    {
        if (root["model"] is JsonObject model && !model.ContainsKey("kind"))
        {
            // The discriminator must be the first property for the polymorphic reader.
            var copy = new JsonObject { ["kind"] = "gpt" };
            foreach (var (key, value) in model.ToList()) { model.Remove(key); copy[key] = value; }
            root["model"] = copy;
        }
        if (root["tokenizer"] is JsonNode tokenizer)
        {
            root.Remove("tokenizer");
            root["tokenizers"] = new JsonObject { [CheckpointConfig.TextRole] = tokenizer };
        }
        if (root["training"] is JsonObject training)
            foreach (var key in new[] { "n-layer", "n-head", "n-embd", "dropout", "bias", "activation" }) training.Remove(key);
    }

    /// <summary>Loads a checkpoint's model (any kind), checking the weights file against the config before allocating, and every tensor's name, shape and dtype.</summary>
    public static (Model Model, CheckpointConfig Config) Load(string path)
    {
        string folder = Resolve(path);
        var config = ReadConfig(folder);
        string weights = Path.Combine(folder, ModelFile);
        if (!File.Exists(weights)) throw new FileNotFoundException($"Checkpoint '{folder}' has no {ModelFile}.", weights);
        using var st = SafetensorsFile.Open(weights);
        long inFile = st.Tensors.Sum(t => t.ElementCount), expected = config.Model.ParameterElements();
        if (inFile != expected)
            throw new InvalidDataException($"{weights} holds {inFile:N0} weights but the {config.Model.Kind} config in {ConfigFile} needs {expected:N0}.");
        var model = config.Model.Create();
        LoadWeights(st, model);
        return (model, config);
    }

    /// <summary>Copies every parameter from a safetensors file by name; any missing, extra or misshapen tensor is an error.</summary>
    public static void LoadWeights(string file, Model model)
    {
        using var st = SafetensorsFile.Open(file);
        LoadWeights(st, model);
    }

    static void LoadWeights(SafetensorsFile st, Model model)
    {
        st.VerifyChecksum(); // flipped bytes are an error, not silently wrong weights (files without a checksum load as before)
        string name = Path.GetFileName(st.Path);
        foreach (var p in model.Parameters)
        {
            if (!st.Contains(p.Name)) throw new InvalidDataException($"{name} has no tensor '{p.Name}' that the model config requires.");
            var info = st[p.Name];
            if (!info.Shape.SequenceEqual(p.Shape))
                throw new InvalidDataException($"{name}: tensor '{p.Name}' has shape {info.ShapeText} but the model config requires [{string.Join(", ", p.Shape)}].");
            if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                throw new InvalidDataException($"{name}: tensor '{p.Name}' has dtype {info.DType}; weights must be F32, F16 or BF16.");
            st.ReadFloats(p.Name, p.Value.Span);
            if (!AllFinite(p.Value.Span))
                throw new InvalidDataException($"{name}: tensor '{p.Name}' holds NaN or infinite values; the run that saved it had diverged. Use an earlier checkpoint.");
        }
        var extra = st.Tensors.Select(t => t.Name).Except(model.Parameters.Select(p => p.Name)).FirstOrDefault();
        if (extra is not null) throw new InvalidDataException($"{name} holds a tensor '{extra}' that the model config does not have.");
    }

    /// <summary>Restores the optimizer moments and progress saved with a checkpoint.</summary>
    public static void RestoreTrainer(string path, Trainer trainer)
    {
        string folder = Resolve(path);
        string momentsFile = Path.Combine(folder, TrainerFile);
        var progress = ReadProgress(folder);
        if (progress is null || !File.Exists(momentsFile))
            throw new FileNotFoundException($"Checkpoint '{folder}' holds no trainer state to resume from (it was saved for sampling only).");
        using var st = SafetensorsFile.Open(momentsFile);
        st.VerifyChecksum();
        trainer.Optimizer.LoadMoments(name => st.Contains("m." + name) && st.Contains("v." + name) ? (st.ReadFloats("m." + name), st.ReadFloats("v." + name)) : null);
        trainer.Restore(progress);
    }

    /// <summary>The saved training progress, or null for a weights-only checkpoint.</summary>
    public static TrainerProgress? ReadProgress(string folder)
    {
        string stateFile = Path.Combine(folder, TrainerStateFile);
        if (!File.Exists(stateFile)) return null;
        try
        {
            var progress = JsonSerializer.Deserialize(File.ReadAllText(stateFile), CheckpointJsonContext.Default.TrainerProgress) ?? throw new JsonException("empty");
            if (progress.RngState is not { Length: 4 } || progress.RngState.All(w => w == 0)) throw new JsonException("the batch generator state must be four words, not all zero");
            if (progress.Iteration is < 0 or > RunSettings.MaxIterations) throw new JsonException($"iteration {progress.Iteration} is out of range");
            return progress;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            throw new InvalidDataException($"{stateFile} is corrupt: {e.Message}");
        }
    }

    static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }

    internal static void WriteText(string path, string text)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(System.Text.Encoding.UTF8.GetBytes(text));
        f.Flush(flushToDisk: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower,
    UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(CheckpointConfig))]
[JsonSerializable(typeof(TrainerProgress))]
public partial class CheckpointJsonContext : JsonSerializerContext;
