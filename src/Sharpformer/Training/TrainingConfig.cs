using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Kernels;
using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>
/// Every setting of a training run, named and defaulted as nanoGPT's train.py (kebab-case in JSON and on the
/// command line). Model shape settings live here too, as in nanoGPT, so one config file describes a run.
/// </summary>
public sealed record TrainingConfig
{
    // I/O
    public string OutDir { get; init; } = "out";
    public string Data { get; init; } = "data/openwebtext";
    public int EvalInterval { get; init; } = 2000;
    public int LogInterval { get; init; } = 1;
    public int EvalIters { get; init; } = 200;
    public bool EvalOnly { get; init; }
    public bool AlwaysSaveCheckpoint { get; init; } = true;
    /// <summary>"scratch", "resume" (from out-dir), or a path to a Sharpformer checkpoint or Hugging Face GPT-2 folder.</summary>
    public string InitFrom { get; init; } = "scratch";

    // Data
    public int GradientAccumulationSteps { get; init; } = 40;
    public int BatchSize { get; init; } = 12;
    public int BlockSize { get; init; } = 1024;

    // Model
    public int NLayer { get; init; } = 12;
    public int NHead { get; init; } = 12;
    public int NEmbd { get; init; } = 768;
    public float Dropout { get; init; }
    public bool Bias { get; init; }
    public Activation Activation { get; init; } = Activation.GeluErf;

    // AdamW and schedule
    public float LearningRate { get; init; } = 6e-4f;
    public int MaxIters { get; init; } = 600_000;
    public float WeightDecay { get; init; } = 0.1f;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.95f;
    public float GradClip { get; init; } = 1.0f;
    public bool DecayLr { get; init; } = true;
    public int WarmupIters { get; init; } = 2000;
    public int LrDecayIters { get; init; } = 600_000;
    public float MinLr { get; init; } = 6e-5f;

    // System
    public int Seed { get; init; } = 1337;
    /// <summary>Kernel threads; 0 means the processor count.</summary>
    public int Threads { get; init; }
    /// <summary>Keep only each block's input in the forward pass and recompute the rest in backward: much less memory, one more forward pass.</summary>
    public bool ActivationCheckpointing { get; init; }

    [JsonIgnore] public int TokensPerIteration => GradientAccumulationSteps * BatchSize * BlockSize;

    /// <summary>The model this run trains, for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    public GptConfig ToModelConfig(int vocabSize) => new()
    {
        VocabSize = vocabSize,
        BlockSize = BlockSize,
        NLayer = NLayer,
        NHead = NHead,
        NEmbd = NEmbd,
        Dropout = Dropout,
        Bias = Bias,
        Activation = Activation,
    };

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        static void Positive(double value, string name)
        {
            if (!(value > 0)) throw new ArgumentException($"{name} must be positive, got {value}.");
        }
        static void NonNegative(double value, string name)
        {
            if (!(value >= 0)) throw new ArgumentException($"{name} must not be negative, got {value}.");
        }
        Positive(BatchSize, "batch-size");
        Positive(BlockSize, "block-size");
        Positive(GradientAccumulationSteps, "gradient-accumulation-steps");
        NonNegative(MaxIters, "max-iters");
        Positive(EvalInterval, "eval-interval");
        Positive(EvalIters, "eval-iters");
        Positive(LogInterval, "log-interval");
        NonNegative(LearningRate, "learning-rate");
        NonNegative(MinLr, "min-lr");
        NonNegative(WarmupIters, "warmup-iters");
        NonNegative(LrDecayIters, "lr-decay-iters");
        NonNegative(WeightDecay, "weight-decay");
        NonNegative(GradClip, "grad-clip");
        NonNegative(Threads, "threads");
        if (Beta1 is < 0 or >= 1) throw new ArgumentException($"beta1 must be in [0, 1), got {Beta1}.");
        if (Beta2 is < 0 or >= 1) throw new ArgumentException($"beta2 must be in [0, 1), got {Beta2}.");
        ToModelConfig(vocabSize: 1).Validate();
    }

    public string ToJson() => JsonSerializer.Serialize(this, TrainingJsonContext.Default.TrainingConfig);

    /// <summary>Reads a JSON config file; unknown keys are an error, so a typo never silently does nothing.</summary>
    public static TrainingConfig FromJson(string json, string source = "config")
    {
        try
        {
            return JsonSerializer.Deserialize(json, TrainingJsonContext.Default.TrainingConfig)
                ?? throw new ArgumentException($"{source} is empty.");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source} is not a valid training config: {e.Message}");
        }
    }

    /// <summary>Fills <see cref="Threads"/> = 0 with the processor count.</summary>
    [JsonIgnore] public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TrainingConfig))]
public partial class TrainingJsonContext : JsonSerializerContext;
