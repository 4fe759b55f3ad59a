using System.CommandLine;
using System.Text.Json;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Cli;

/// <summary>A run as the command line describes it: the model config, the run settings, and which options were given explicitly.</summary>
sealed record ResolvedRun(ModelConfig Model, RunSettings Run, IReadOnlyList<TrainingOptions.Given> Given)
{
    /// <summary>The explicitly given run options applied on top of other settings (the checkpoint's, on resume).</summary>
    public RunSettings OverrideRun(RunSettings saved, List<string> log)
    {
        var result = saved;
        foreach (var g in Given)
            if (g.ApplyRun is { } apply)
            {
                var next = apply(result);
                if (next != result && g.Name is not ("--init-from" or "--out-dir")) log.Add(g.Name); // these say where, not how
                result = next;
            }
        return result with { OutDir = Run.OutDir, InitFrom = Run.InitFrom };
    }

    /// <summary>
    /// The config of a model read from a checkpoint, with the explicitly given model options: a shape option that
    /// contradicts it is an error naming both values; dropout may change (fine-tuning often does).
    /// </summary>
    public ModelConfig OverrideModel(ModelConfig saved, string source, List<string> log)
    {
        var result = saved;
        foreach (var g in Given)
        {
            if (g.Model is not { } option) continue;
            if (saved is not GptConfig gpt) throw new ArgumentException($"{g.Name} applies to GPT models, but {source} holds a {saved.Kind} model.");
            if (option.IsShape && !Equals(option.Get(gpt), option.Get((GptConfig)Model)))
                throw new ArgumentException($"{g.Name} {option.Get((GptConfig)Model)} contradicts {source}, whose {option.JsonName} is {option.Get(gpt)}; leave the option out to keep the checkpoint's.");
            if (!option.IsShape)
            {
                var next = option.Copy((GptConfig)Model, (GptConfig)result);
                if (next != result) log.Add(g.Name);
                result = next;
            }
        }
        return result;
    }
}

/// <summary>
/// --preset / --config plus one option per setting (nanoGPT's names in kebab-case): run settings, and the
/// GPT model's shape. Options given on the command line override the preset or config file.
/// </summary>
sealed class TrainingOptions
{
    public readonly Option<string?> Preset = new("--preset") { Description = $"Named config: {string.Join(", ", Presets.All.Keys)}" };
    public readonly Option<string?> Config = new("--config") { Description = "JSON config file (kebab-case keys, as the options; \"model\" may hold a whole model config)" };
    readonly List<(Option Option, Func<ParseResult, Given> Read)> options = new();

    /// <summary>A model option: how to read and write it on a GPT config, and whether it fixes the weights' shapes.</summary>
    public sealed record ModelOption(string JsonName, bool IsShape, Func<GptConfig, object> Get, Func<GptConfig, GptConfig, GptConfig> Copy, Func<GptConfig, JsonElement, GptConfig> FromJson);

    /// <summary>An option given on the command line.</summary>
    public sealed record Given(string Name, Func<RunSettings, RunSettings>? ApplyRun, ModelOption? Model, Func<GptConfig, GptConfig>? ApplyModel);

    readonly Dictionary<string, ModelOption> modelOptions = new();

    public TrainingOptions(bool includeRunSettings = true)
    {
        AddRun<int>("--batch-size", "Sequences per micro-batch", (c, v) => c with { BatchSize = v });
        AddRun<int>("--block-size", "Context length in tokens (a new GPT's block size too)", (c, v) => c with { BlockSize = v });
        AddModel<int>("--n-layer", "n_layer", "Transformer blocks", c => c.NLayer, (c, v) => c with { NLayer = v });
        AddModel<int>("--n-head", "n_head", "Attention heads", c => c.NHead, (c, v) => c with { NHead = v });
        AddModel<int>("--n-embd", "n_embd", "Embedding width", c => c.NEmbd, (c, v) => c with { NEmbd = v });
        AddModel<float>("--dropout", "dropout", "Dropout probability", c => c.Dropout, (c, v) => c with { Dropout = v }, isShape: false);
        AddModel<bool>("--bias", "bias", "Biases in Linear and LayerNorm layers", c => c.Bias, (c, v) => c with { Bias = v });
        AddModel<Activation>("--activation", "activation", "MLP activation: GeluTanh, GeluErf or Relu", c => c.Activation, (c, v) => c with { Activation = v });
        AddRun<bool>("--augment", "Image data: augment training images as the data folder says (crop, flip); false trains on them as they are", (c, v) => c with { Augment = v });
        AddRun<int>("--crop-padding", "Image data: random-crop padding in pixels instead of the data folder's (0: flips only)", (c, v) => c with { CropPadding = v });
        AddRun<int>("--max-tokens", "Sentence pairs: batch pairs of similar length up to this many padded tokens per side instead of batch-size pairs (0: off)", (c, v) => c with { MaxTokens = v });
        AddRun<int>("--gradient-accumulation-steps", "Micro-batches per optimizer step", (c, v) => c with { GradientAccumulationSteps = v });
        AddRun<int>("--seed", "Random seed", (c, v) => c with { Seed = v });
        AddRun<int>("--threads", "Kernel threads (default: processor count)", (c, v) => c with { Threads = v });
        AddRun<bool>("--activation-checkpointing", "Recompute each block's activations in backward instead of keeping them (less memory, ~30% more compute)", (c, v) => c with { ActivationCheckpointing = v });
        AddRun<float>("--learning-rate", "Peak learning rate", (c, v) => c with { LearningRate = v });
        AddRun<float>("--weight-decay", "AdamW weight decay (on 2-D weights only, less those the model exempts: a ViT's cls_token and position_embeddings)", (c, v) => c with { WeightDecay = v });
        AddRun<float>("--beta1", "AdamW beta1", (c, v) => c with { Beta1 = v });
        AddRun<float>("--beta2", "AdamW beta2", (c, v) => c with { Beta2 = v });
        AddRun<float>("--grad-clip", "Global gradient-norm clip (0 disables)", (c, v) => c with { GradClip = v });
        AddRun<string>("--data", "Prepared data folder (train.bin, val.bin, meta.json)", (c, v) => c with { Data = v });
        if (!includeRunSettings) return;
        AddRun<int>("--max-iters", "Iterations to train", (c, v) => c with { MaxIters = v });
        AddRun<int>("--warmup-iters", "Linear warm-up iterations", (c, v) => c with { WarmupIters = v });
        AddRun<int>("--lr-decay-iters", "Iteration where cosine decay reaches min-lr", (c, v) => c with { LrDecayIters = v });
        AddRun<float>("--min-lr", "Final learning rate", (c, v) => c with { MinLr = v });
        AddRun<string>("--lr-schedule", "After warm-up: cosine (to min-lr at lr-decay-iters) or inverse-sqrt (the 2017 paper's)", (c, v) => c with { LrSchedule = v });
        AddRun<bool>("--decay-lr", "Warm-up and cosine-decay the learning rate", (c, v) => c with { DecayLr = v });
        AddRun<int>("--eval-interval", "Iterations between evaluations", (c, v) => c with { EvalInterval = v });
        AddRun<int>("--eval-iters", "Batches per evaluation", (c, v) => c with { EvalIters = v });
        AddRun<bool>("--eval-only", "Evaluate once and stop", (c, v) => c with { EvalOnly = v });
        AddRun<int>("--log-interval", "Iterations between log lines", (c, v) => c with { LogInterval = v });
        AddRun<bool>("--always-save-checkpoint", "Save at every evaluation, not only when val loss improves", (c, v) => c with { AlwaysSaveCheckpoint = v });
        AddRun<string>("--init-from", "scratch, resume (from out-dir), or a checkpoint / Hugging Face GPT-2 folder", (c, v) => c with { InitFrom = v });
        AddRun<string>("--out-dir", "Where checkpoints, metrics.jsonl and loss.png go", (c, v) => c with { OutDir = v });
    }

    void AddRun<T>(string name, string description, Func<RunSettings, T, RunSettings> set)
    {
        var option = new Option<T>(name) { Description = description };
        options.Add((option, r => new Given(name, c => set(c, r.GetValue(option)!), null, null)));
    }

    void AddModel<T>(string name, string jsonName, string description, Func<GptConfig, T> get, Func<GptConfig, T, GptConfig> set, bool isShape = true)
    {
        var option = new Option<T>(name) { Description = description };
        var model = new ModelOption(jsonName, isShape, c => get(c)!, (from, to) => set(to, get(from)), (c, e) => set(c, FromJson<T>(e, name)));
        modelOptions[name[2..]] = model;
        options.Add((option, r => new Given(name, null, model, c => set(c, r.GetValue(option)!))));
    }

    static T FromJson<T>(JsonElement e, string name)
    {
        object value = typeof(T) == typeof(int) ? e.GetInt32()
            : typeof(T) == typeof(float) ? e.GetSingle()
            : typeof(T) == typeof(bool) ? e.GetBoolean()
            : typeof(T) == typeof(Activation) ? Enum.Parse<Activation>(e.GetString() ?? "", ignoreCase: true)
            : throw new InvalidOperationException($"{name}: no JSON reader for {typeof(T).Name}");
        return (T)value;
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Preset);
        command.Options.Add(Config);
        foreach (var (o, _) in options) command.Options.Add(o);
    }

    /// <summary>The run: default, preset or file, then each option given on the command line; validated.</summary>
    public ResolvedRun Resolve(ParseResult r, Preset? fallback = null)
    {
        string? presetName = r.GetValue(Preset), file = r.GetValue(Config);
        var preset = presetName is not null ? Presets.Get(presetName) : fallback ?? Presets.Default;
        ModelConfig model = preset.Model;
        var run = preset.Run;
        if (file is not null)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"Config file '{file}' does not exist.");
            (model, run) = MergeFile(model, run, File.ReadAllText(file), file);
        }
        var given = options.Where(o => r.GetResult(o.Option) is { Implicit: false }).Select(o => o.Read(r)).ToList();
        foreach (var g in given)
        {
            if (g.ApplyRun is { } applyRun) run = applyRun(run);
            if (g.ApplyModel is { } applyModel)
                model = model is GptConfig gpt ? applyModel(gpt) : throw new ArgumentException($"{g.Name} applies to GPT models; this run trains a {model.Kind} model.");
        }
        // A new GPT's context is the run's block size, as in nanoGPT.
        if (model is GptConfig newGpt) model = newGpt with { BlockSize = run.BlockSize };
        run.Validate();
        // Each model option's own range is checked now, before any file is read; the whole shape is checked where
        // the model is built (on resume the checkpoint's shape applies, and a contradicting option is named there).
        if (model is GptConfig shape && given.Any(g => g.Model is not null))
        {
            Settings.InRange(shape.NLayer, 1, Settings.MaxLayers, "n-layer");
            Settings.InRange(shape.NHead, 1, Settings.MaxWidth, "n-head");
            Settings.InRange(shape.NEmbd, 1, Settings.MaxWidth, "n-embd");
            Settings.Probability(shape.Dropout, "dropout");
        } // the model is validated where it is built: on resume or init-from, the checkpoint's shape applies
        return new ResolvedRun(model, run, given);
    }

    /// <summary>A config file overrides only the keys it names: run settings, GPT options by their option names, or "model" for a whole model config.</summary>
    (ModelConfig, RunSettings) MergeFile(ModelConfig model, RunSettings run, string json, string source)
    {
        using var overrides = JsonDocument.Parse(json);
        if (overrides.RootElement.ValueKind != JsonValueKind.Object) throw new ArgumentException($"{source} must hold a JSON object.");
        using var merged = JsonDocument.Parse(run.ToJson());
        var result = new Dictionary<string, JsonElement>();
        foreach (var p in merged.RootElement.EnumerateObject()) result[p.Name] = p.Value.Clone();
        foreach (var p in overrides.RootElement.EnumerateObject())
        {
            if (p.Name == "model")
                model = p.Value.Deserialize(Models.ModelJsonContext.Default.ModelConfig) ?? throw new ArgumentException($"{source}: \"model\" is empty.");
            else if (modelOptions.TryGetValue(p.Name, out var option))
                model = model is GptConfig gpt ? option.FromJson(gpt, p.Value) : throw new ArgumentException($"{source}: {p.Name} applies to GPT models; this run trains a {model.Kind} model.");
            else if (result.ContainsKey(p.Name)) result[p.Name] = p.Value.Clone();
            else throw new ArgumentException($"{source}: unknown setting '{p.Name}'.");
        }
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (k, v) in result) { w.WritePropertyName(k); v.WriteTo(w); }
            w.WriteEndObject();
        }
        return (model, RunSettings.FromJson(System.Text.Encoding.UTF8.GetString(buffer.ToArray()), source));
    }
}
