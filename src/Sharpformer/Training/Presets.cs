using Sharpformer.Kernels;
using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>
/// Named training configs. The Shakespeare ones are nanoGPT's config/train_shakespeare_char.py and its
/// documented CPU override ("baby") exactly; the GPT-2 ones give the four published GPT-2 shapes.
/// </summary>
public static class Presets
{
    static readonly TrainingConfig ShakespeareChar = new()
    {
        OutDir = "out-shakespeare-char",
        Data = "data/shakespeare_char",
        EvalInterval = 250,
        EvalIters = 200,
        LogInterval = 10,
        AlwaysSaveCheckpoint = false,
        GradientAccumulationSteps = 1,
        BatchSize = 64,
        BlockSize = 256,
        NLayer = 6,
        NHead = 6,
        NEmbd = 384,
        Dropout = 0.2f,
        LearningRate = 1e-3f,
        MaxIters = 5000,
        LrDecayIters = 5000,
        MinLr = 1e-4f,
        Beta2 = 0.99f,
        WarmupIters = 100,
    };

    static TrainingConfig Gpt2(int layers, int heads, int embd) => new()
    {
        OutDir = "out-gpt2",
        Data = "data/openwebtext",
        NLayer = layers,
        NHead = heads,
        NEmbd = embd,
        BlockSize = 1024,
        Bias = true,
        Activation = Activation.GeluTanh,
    };

    public static IReadOnlyDictionary<string, TrainingConfig> All { get; } = new Dictionary<string, TrainingConfig>
    {
        ["shakespeare-char"] = ShakespeareChar,
        // nanoGPT README: --device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
        // --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0
        ["shakespeare-char-baby"] = ShakespeareChar with
        {
            OutDir = "out-shakespeare-char-baby",
            EvalIters = 20,
            LogInterval = 1,
            BlockSize = 64,
            BatchSize = 12,
            NLayer = 4,
            NHead = 4,
            NEmbd = 128,
            MaxIters = 2000,
            LrDecayIters = 2000,
            Dropout = 0f,
        },
        // nanoGPT's config/finetune_shakespeare.py (lr 3e-5 constant, 20 iterations, batch 1 x 32 accumulation)
        // scaled to run on a CPU: block 256 and 8 accumulation steps. Pass --init-from with GPT-2 weights.
        ["finetune-shakespeare"] = Gpt2(12, 12, 768) with
        {
            OutDir = "out-shakespeare",
            Data = "data/shakespeare",
            InitFrom = "gpt2",
            EvalInterval = 5,
            EvalIters = 10,
            LogInterval = 1,
            AlwaysSaveCheckpoint = false,
            BatchSize = 1,
            BlockSize = 256,
            GradientAccumulationSteps = 8,
            MaxIters = 20,
            LearningRate = 3e-5f,
            DecayLr = false,
        },
        ["gpt2"] = Gpt2(12, 12, 768),
        ["gpt2-medium"] = Gpt2(24, 16, 1024),
        ["gpt2-large"] = Gpt2(36, 20, 1280),
        ["gpt2-xl"] = Gpt2(48, 25, 1600),
    };

    public static TrainingConfig Get(string name) =>
        All.TryGetValue(name, out var config)
            ? config
            : throw new ArgumentException($"Unknown preset '{name}'. Known presets: {string.Join(", ", All.Keys)}.");
}
