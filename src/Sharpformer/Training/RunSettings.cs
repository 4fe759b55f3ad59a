using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>
/// How a run trains, whatever the model: optimizer, schedule, evaluation, checkpointing, batches, threads,
/// named and defaulted as nanoGPT's train.py (kebab-case in JSON and on the command line). The model's shape
/// is its <see cref="ModelConfig"/>; a preset is one of each.
/// </summary>
public sealed record RunSettings
{
    // I/O
    public string OutDir { get; set; } = "out";
    public string Data { get; set; } = "data/openwebtext";
    public int EvalInterval { get; set; } = 2000;
    public int LogInterval { get; set; } = 1;
    public int EvalIters { get; set; } = 200;
    public bool EvalOnly { get; set; }
    public bool AlwaysSaveCheckpoint { get; set; } = true;
    /// <summary>"scratch", "resume" (from out-dir), or a path to a Sharpformer checkpoint or Hugging Face folder.</summary>
    public string InitFrom { get; set; } = "scratch";

    // Batches
    public int GradientAccumulationSteps { get; set; } = 40;
    public int BatchSize { get; set; } = 12;
    /// <summary>Tokens per training sequence (at most the model's context length).</summary>
    public int BlockSize { get; set; } = 1024;
    /// <summary>
    /// Sentence-pair data only: 0 draws batch-size pairs of any length; N &gt; 0 batches pairs of similar length,
    /// as many as fit N padded tokens per side (fairseq's --max-tokens), so little of a batch is padding.
    /// </summary>
    public int MaxTokens { get; set; }
    /// <summary>
    /// Image data only: apply the data folder's augmentation (random crop with padding, flips) to training images.
    /// Off for short runs, where a small model underfits and augmentation only slows it (timm's no-aug recipes).
    /// </summary>
    public bool Augment { get; set; } = true;
    /// <summary>
    /// Image data only: random-crop padding in pixels in place of the data folder's (null keeps the folder's, 0 turns
    /// the crop off and leaves its flips). A ViT must learn shifts that a convolution gets for free, so in a budget of
    /// tens of epochs flips alone train it further than crops and flips (vit-fashion).
    /// </summary>
    public int? CropPadding { get; set; }

    // AdamW and schedule
    public float LearningRate { get; set; } = 6e-4f;
    public int MaxIters { get; set; } = 600_000;
    public float WeightDecay { get; set; } = 0.1f;
    public float Beta1 { get; set; } = 0.9f;
    public float Beta2 { get; set; } = 0.95f;
    public float GradClip { get; set; } = 1.0f;
    public bool DecayLr { get; set; } = true;
    public int WarmupIters { get; set; } = 2000;
    public int LrDecayIters { get; set; } = 600_000;
    public float MinLr { get; set; } = 6e-5f;
    /// <summary>After warm-up: "cosine" to min-lr (nanoGPT) or "inverse-sqrt" (the 2017 paper); see <see cref="LearningRateSchedule"/>.</summary>
    public string LrSchedule { get; set; } = LearningRateSchedule.Cosine;

    // System
    public int Seed { get; set; } = 1337;
    /// <summary>Kernel threads; 0 means the processor count.</summary>
    public int Threads { get; set; }
    /// <summary>Keep only each block's input in the forward pass and recompute the rest in backward: much less memory, one more forward pass.</summary>
    public bool ActivationCheckpointing { get; set; }

    /// <summary>Largest iteration count: the loop runs to max-iters inclusive and counts in an int.</summary>
    public const int MaxIterations = int.MaxValue - 1;
    public const int MaxThreads = 1024;

    [JsonIgnore] public long TokensPerIteration => (long)GradientAccumulationSteps * BatchSize * BlockSize;

    /// <summary>Fills <see cref="Threads"/> = 0 with the processor count.</summary>
    [JsonIgnore] public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first setting that cannot work, and its range.</summary>
    public void Validate()
    {
        Settings.InRange(BatchSize, 1, 1 << 20, "batch-size");
        Settings.InRange(BlockSize, 1, Settings.MaxContext, "block-size");
        Settings.InRange((long)BatchSize * BlockSize, 1, 1 << 26, "batch-size x block-size");
        Settings.InRange(GradientAccumulationSteps, 1, 1 << 20, "gradient-accumulation-steps");
        Settings.InRange(MaxIters, 0, MaxIterations, "max-iters");
        Settings.InRange(EvalInterval, 1, int.MaxValue, "eval-interval");
        Settings.InRange(EvalIters, 1, 1 << 20, "eval-iters");
        Settings.InRange(LogInterval, 1, int.MaxValue, "log-interval");
        Settings.NonNegativeFinite(LearningRate, "learning-rate");
        Settings.NonNegativeFinite(MinLr, "min-lr");
        Settings.InRange(WarmupIters, 0, MaxIterations, "warmup-iters");
        Settings.InRange(LrDecayIters, 0, MaxIterations, "lr-decay-iters");
        if (LrSchedule is not (LearningRateSchedule.Cosine or LearningRateSchedule.InverseSqrt))
            throw new ArgumentException($"lr-schedule must be \"{LearningRateSchedule.Cosine}\" or \"{LearningRateSchedule.InverseSqrt}\", not \"{LrSchedule}\".");
        Settings.InRange(MaxTokens, 0, 1 << 26, "max-tokens");
        if (CropPadding is int padding) Settings.InRange(padding, 0, 1 << 10, "crop-padding");
        Settings.NonNegativeFinite(WeightDecay, "weight-decay");
        Settings.NonNegativeFinite(GradClip, "grad-clip");
        Settings.Probability(Beta1, "beta1");
        Settings.Probability(Beta2, "beta2");
        Settings.InRange(Threads, 0, MaxThreads, "threads");
        if (string.IsNullOrWhiteSpace(OutDir)) throw new ArgumentException("out-dir must name a folder.");
    }

    public string ToJson() => JsonSerializer.Serialize(this, TrainingJsonContext.Default.RunSettings);

    /// <summary>Reads run settings from JSON; unknown keys are an error, so a typo never silently does nothing.</summary>
    public static RunSettings FromJson(string json, string source = "config")
    {
        try
        {
            return JsonSerializer.Deserialize(json, TrainingJsonContext.Default.RunSettings)
                ?? throw new ArgumentException($"{source} is empty.");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source} is not valid run settings: {e.Message}");
        }
    }

    /// <summary>Names of the settings in JSON (kebab-case), for config files and the log of overrides.</summary>
    public static IEnumerable<string> Names => TrainingJsonContext.Default.RunSettings.Properties.Select(p => p.Name);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, UseStringEnumConverter = true)]
[JsonSerializable(typeof(RunSettings))]
public partial class TrainingJsonContext : JsonSerializerContext;
