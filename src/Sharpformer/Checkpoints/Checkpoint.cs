using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Checkpoints;

/// <summary>config.json of a checkpoint folder.</summary>
public sealed record CheckpointConfig
{
    public int FormatVersion { get; init; } = Checkpoint.FormatVersion;
    public required GptConfig Model { get; init; }
    public required TokenizerSpec Tokenizer { get; init; }
    public TrainingConfig? Training { get; init; }
}

/// <summary>
/// A checkpoint folder: model.safetensors (Hugging Face GPT-2 names, [out, in] weights), config.json, and
/// for resuming trainer.safetensors (AdamW moments) with trainer.json (iteration, best val loss, RNG state).
/// Saving writes a sibling temporary folder, flushes it, then swaps it into place by renames, so a crash
/// at any moment leaves a loadable checkpoint: the old one, or (between the two renames) the old one
/// under its ".old" name, which <see cref="Resolve"/> finds.
/// </summary>
public static class Checkpoint
{
    public const int FormatVersion = 1;
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
                var aside = Directory.GetDirectories(parent, Path.GetFileName(Path.GetFullPath(candidate)) + ".old-*")
                    .FirstOrDefault(d => File.Exists(Path.Combine(d, ConfigFile)));
                if (aside is not null) return aside;
            }
        }
        throw new DirectoryNotFoundException($"No checkpoint at '{path}' (expected {ConfigFile} and {ModelFile} there or in '{Path.Combine(path, FolderName)}').");
    }

    /// <summary>Writes the model (and, with a trainer, everything needed to resume) into <paramref name="folder"/> atomically.</summary>
    public static void Save(string folder, Gpt model, TokenizerSpec tokenizer, TrainingConfig? training = null, Trainer? trainer = null)
    {
        AtomicFolder.Write(folder, temp =>
        {
            WriteModel(Path.Combine(temp, ModelFile), model);
            var config = new CheckpointConfig { Model = model.Config, Tokenizer = tokenizer, Training = training };
            WriteText(Path.Combine(temp, ConfigFile), JsonSerializer.Serialize(config, CheckpointJsonContext.Default.CheckpointConfig));
            if (trainer is null) return;
            var writer = new SafetensorsWriter();
            foreach (var (name, shape, m, v) in trainer.Optimizer.Moments())
            {
                writer.Add("m." + name, shape, m);
                writer.Add("v." + name, shape, v);
            }
            writer.Save(Path.Combine(temp, TrainerFile));
            WriteText(Path.Combine(temp, TrainerStateFile), JsonSerializer.Serialize(trainer.Progress, CheckpointJsonContext.Default.TrainerProgress));
        });
    }

    /// <summary>Writes the weights in the checkpoint layout (HF names, [out, in]).</summary>
    public static void WriteModel(string path, Gpt model)
    {
        var writer = new SafetensorsWriter().AddMetadata("format", "pt");
        foreach (var p in model.Parameters) writer.Add(p.Name, p.Shape, () => p.Value.Span);
        writer.Save(path);
    }

    public static CheckpointConfig ReadConfig(string folder)
    {
        string path = Path.Combine(folder, ConfigFile);
        CheckpointConfig config;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.TryGetProperty("format-version", out var v) && v.TryGetInt32(out int version) && version > FormatVersion)
                throw new InvalidDataException($"{path} was written by a newer Sharpformer (format version {version}; this one reads up to {FormatVersion}): update Sharpformer.");
            config = doc.RootElement.Deserialize(CheckpointJsonContext.Default.CheckpointConfig) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid checkpoint config: {e.Message}");
        }
        try { config.Model.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        return config;
    }

    /// <summary>Loads a checkpoint's model, checking every tensor's name, shape and dtype.</summary>
    public static (Gpt Model, CheckpointConfig Config) Load(string path)
    {
        string folder = Resolve(path);
        var config = ReadConfig(folder);
        var model = new Gpt(config.Model);
        LoadWeights(Path.Combine(folder, ModelFile), model);
        return (model, config);
    }

    /// <summary>Copies every parameter from a safetensors file in the checkpoint layout; any missing, extra or misshapen tensor is an error.</summary>
    public static void LoadWeights(string file, Gpt model)
    {
        using var st = SafetensorsFile.Open(file);
        string name = Path.GetFileName(file);
        foreach (var p in model.Parameters)
        {
            if (!st.Contains(p.Name)) throw new InvalidDataException($"{name} has no tensor '{p.Name}' that the model config requires.");
            var info = st[p.Name];
            if (!info.Shape.SequenceEqual(p.Shape))
                throw new InvalidDataException($"{name}: tensor '{p.Name}' has shape {info.ShapeText} but the model config requires [{string.Join(", ", p.Shape)}].");
            if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                throw new InvalidDataException($"{name}: tensor '{p.Name}' has dtype {info.DType}; weights must be F32, F16 or BF16.");
            st.ReadFloats(p.Name, p.Value.Span);
        }
        var extra = st.Tensors.Select(t => t.Name).Except(model.Parameters.Select(p => p.Name)).FirstOrDefault();
        if (extra is not null) throw new InvalidDataException($"{name} holds a tensor '{extra}' that the model config does not have.");
    }

    /// <summary>Restores the optimizer moments and progress saved with a checkpoint.</summary>
    public static void RestoreTrainer(string path, Trainer trainer)
    {
        string folder = Resolve(path);
        string stateFile = Path.Combine(folder, TrainerStateFile), momentsFile = Path.Combine(folder, TrainerFile);
        if (!File.Exists(stateFile) || !File.Exists(momentsFile))
            throw new FileNotFoundException($"Checkpoint '{folder}' holds no trainer state to resume from (it was saved for sampling only).");
        TrainerProgress progress;
        try { progress = JsonSerializer.Deserialize(File.ReadAllText(stateFile), CheckpointJsonContext.Default.TrainerProgress) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{stateFile} is corrupt: {e.Message}"); }
        using var st = SafetensorsFile.Open(momentsFile);
        trainer.Optimizer.LoadMoments(name => st.Contains("m." + name) && st.Contains("v." + name) ? (st.ReadFloats("m." + name), st.ReadFloats("v." + name)) : null);
        trainer.Restore(progress);
    }

    /// <summary>The saved training progress, or null for a weights-only checkpoint.</summary>
    public static TrainerProgress? ReadProgress(string folder)
    {
        string stateFile = Path.Combine(folder, TrainerStateFile);
        if (!File.Exists(stateFile)) return null;
        try { return JsonSerializer.Deserialize(File.ReadAllText(stateFile), CheckpointJsonContext.Default.TrainerProgress); }
        catch (JsonException e) { throw new InvalidDataException($"{stateFile} is corrupt: {e.Message}"); }
    }

    internal static void WriteText(string path, string text)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(System.Text.Encoding.UTF8.GetBytes(text));
        f.Flush(flushToDisk: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower,
    UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(CheckpointConfig))]
[JsonSerializable(typeof(TrainerProgress))]
public partial class CheckpointJsonContext : JsonSerializerContext;
