using System.CommandLine;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Cli;

/// <summary>
/// --preset / --config plus one option per training setting (nanoGPT's names in kebab-case); options given
/// on the command line override the preset or config file.
/// </summary>
sealed class TrainingOptions
{
    public readonly Option<string?> Preset = new("--preset") { Description = $"Named config: {string.Join(", ", Presets.All.Keys)}" };
    public readonly Option<string?> Config = new("--config") { Description = "JSON config file (kebab-case keys, as the options)" };
    readonly List<Action<ParseResult, Ref>> apply = new();
    readonly List<Option> options = new();

    sealed class Ref(TrainingConfig c) { public TrainingConfig C = c; }

    public TrainingOptions(bool includeRunSettings = true)
    {
        Add<int>("--batch-size", "Sequences per micro-batch", (c, v) => c with { BatchSize = v });
        Add<int>("--block-size", "Context length in tokens", (c, v) => c with { BlockSize = v });
        Add<int>("--n-layer", "Transformer blocks", (c, v) => c with { NLayer = v });
        Add<int>("--n-head", "Attention heads", (c, v) => c with { NHead = v });
        Add<int>("--n-embd", "Embedding width", (c, v) => c with { NEmbd = v });
        Add<float>("--dropout", "Dropout probability", (c, v) => c with { Dropout = v });
        Add<bool>("--bias", "Biases in Linear and LayerNorm layers", (c, v) => c with { Bias = v });
        Add<Activation>("--activation", "MLP activation: GeluTanh, GeluErf or Relu", (c, v) => c with { Activation = v });
        Add<int>("--gradient-accumulation-steps", "Micro-batches per optimizer step", (c, v) => c with { GradientAccumulationSteps = v });
        Add<int>("--seed", "Random seed", (c, v) => c with { Seed = v });
        Add<int>("--threads", "Kernel threads (default: processor count)", (c, v) => c with { Threads = v });
        Add<bool>("--activation-checkpointing", "Recompute each block's activations in backward instead of keeping them (less memory, ~30% more compute)", (c, v) => c with { ActivationCheckpointing = v });
        Add<float>("--learning-rate", "Peak learning rate", (c, v) => c with { LearningRate = v });
        Add<float>("--weight-decay", "AdamW weight decay (on 2-D weights only)", (c, v) => c with { WeightDecay = v });
        Add<float>("--beta1", "AdamW beta1", (c, v) => c with { Beta1 = v });
        Add<float>("--beta2", "AdamW beta2", (c, v) => c with { Beta2 = v });
        Add<float>("--grad-clip", "Global gradient-norm clip (0 disables)", (c, v) => c with { GradClip = v });
        Add<string>("--data", "Prepared data folder (train.bin, val.bin, meta.json)", (c, v) => c with { Data = v });
        if (!includeRunSettings) return;
        Add<int>("--max-iters", "Iterations to train", (c, v) => c with { MaxIters = v });
        Add<int>("--warmup-iters", "Linear warm-up iterations", (c, v) => c with { WarmupIters = v });
        Add<int>("--lr-decay-iters", "Iteration where cosine decay reaches min-lr", (c, v) => c with { LrDecayIters = v });
        Add<float>("--min-lr", "Final learning rate", (c, v) => c with { MinLr = v });
        Add<bool>("--decay-lr", "Warm-up and cosine-decay the learning rate", (c, v) => c with { DecayLr = v });
        Add<int>("--eval-interval", "Iterations between evaluations", (c, v) => c with { EvalInterval = v });
        Add<int>("--eval-iters", "Batches per evaluation", (c, v) => c with { EvalIters = v });
        Add<bool>("--eval-only", "Evaluate once and stop", (c, v) => c with { EvalOnly = v });
        Add<int>("--log-interval", "Iterations between log lines", (c, v) => c with { LogInterval = v });
        Add<bool>("--always-save-checkpoint", "Save at every evaluation, not only when val loss improves", (c, v) => c with { AlwaysSaveCheckpoint = v });
        Add<string>("--init-from", "scratch, resume (from out-dir), or a checkpoint / Hugging Face GPT-2 folder", (c, v) => c with { InitFrom = v });
        Add<string>("--out-dir", "Where checkpoints, metrics.jsonl and loss.png go", (c, v) => c with { OutDir = v });
    }

    void Add<T>(string name, string description, Func<TrainingConfig, T, TrainingConfig> set)
    {
        var option = new Option<T>(name) { Description = description };
        options.Add(option);
        apply.Add((r, c) =>
        {
            if (r.GetResult(option) is { Implicit: false }) c.C = set(c.C, r.GetValue(option)!);
        });
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Preset);
        command.Options.Add(Config);
        foreach (var o in options) command.Options.Add(o);
    }

    /// <summary>The config: default, preset or file, then each option given on the command line; validated.</summary>
    public TrainingConfig Resolve(ParseResult r, TrainingConfig? fallback = null)
    {
        string? preset = r.GetValue(Preset), file = r.GetValue(Config);
        var config = fallback ?? new TrainingConfig();
        if (preset is not null) config = Presets.Get(preset);
        if (file is not null)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"Config file '{file}' does not exist.");
            config = MergeFile(config, File.ReadAllText(file), file);
        }
        var holder = new Ref(config);
        foreach (var a in apply) a(r, holder);
        holder.C.Validate();
        return holder.C;
    }

    /// <summary>A config file overrides only the keys it names, on top of the preset (or defaults).</summary>
    static TrainingConfig MergeFile(TrainingConfig baseConfig, string json, string source)
    {
        using var overrides = System.Text.Json.JsonDocument.Parse(json);
        using var merged = System.Text.Json.JsonDocument.Parse(baseConfig.ToJson());
        var result = new Dictionary<string, System.Text.Json.JsonElement>();
        foreach (var p in merged.RootElement.EnumerateObject()) result[p.Name] = p.Value.Clone();
        foreach (var p in overrides.RootElement.EnumerateObject())
        {
            if (!result.ContainsKey(p.Name)) throw new ArgumentException($"{source}: unknown setting '{p.Name}'.");
            result[p.Name] = p.Value.Clone();
        }
        var buffer = new System.IO.MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (k, v) in result) { w.WritePropertyName(k); v.WriteTo(w); }
            w.WriteEndObject();
        }
        return TrainingConfig.FromJson(System.Text.Encoding.UTF8.GetString(buffer.ToArray()), source);
    }
}
