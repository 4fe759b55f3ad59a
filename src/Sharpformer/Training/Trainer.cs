using System.Diagnostics;
using System.Numerics.Tensors;
using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>A sequence of token ids the trainer draws windows from (a memory-mapped token file, or memory).</summary>
public interface ITokenSource
{
    long Count { get; }
    /// <summary>Copies tokens [start, start + destination.Length) into destination.</summary>
    void Read(long start, Span<int> destination);
}

/// <summary>Tokens held in memory.</summary>
public sealed class ArrayTokenSource(int[] tokens) : ITokenSource
{
    public long Count => tokens.Length;
    public void Read(long start, Span<int> destination) => tokens.AsSpan((int)start, destination.Length).CopyTo(destination);
}

/// <summary>What the trainer reports every log-interval.</summary>
public readonly record struct StepReport(int Iteration, float Loss, float LearningRate, float GradNorm, double Milliseconds, double TokensPerSecond);

/// <summary>What the trainer reports at every evaluation.</summary>
public readonly record struct EvalReport(int Iteration, float TrainLoss, float ValLoss, bool IsBest);

/// <summary>Everything besides the weights and moments needed to continue a run exactly.</summary>
public sealed record TrainerProgress(int Iteration, float BestValLoss, ulong[] RngState, ulong DropoutSeed, int OptimizerStep);

/// <summary>
/// The training loop of nanoGPT's train.py: at each iteration set the scheduled learning rate, evaluate
/// every eval-interval (and save when val loss improves, or always if asked), accumulate gradients over
/// micro-batches, clip, step AdamW. Batches are drawn with a seeded generator whose state is part of the
/// checkpoint, and evaluation uses its own generator seeded per iteration, so a resumed run continues
/// bit for bit.
/// </summary>
public sealed class Trainer
{
    readonly Gpt model;
    readonly TrainingConfig config;
    readonly ITokenSource train, val;
    readonly int[] x, y;
    Rng rng;

    public AdamW Optimizer { get; }
    public int Iteration { get; private set; }
    public float BestValLoss { get; private set; } = float.PositiveInfinity;

    /// <summary>Called every log-interval.</summary>
    public Action<StepReport>? OnStep { get; set; }
    /// <summary>Called at every evaluation.</summary>
    public Action<EvalReport>? OnEval { get; set; }
    /// <summary>Saves a checkpoint of the trainer as it stands (the CLI writes a checkpoint folder).</summary>
    public Action<Trainer>? SaveCheckpoint { get; set; }

    public Trainer(Gpt model, TrainingConfig config, ITokenSource train, ITokenSource val)
    {
        config.Validate();
        if (config.BlockSize > model.Config.BlockSize)
            throw new ArgumentException($"block-size {config.BlockSize} exceeds the model's block size {model.Config.BlockSize}.");
        foreach (var (source, split) in new[] { (train, "train"), (val, "val") })
            if (source.Count < config.BlockSize + 1)
                throw new ArgumentException($"The {split} split holds {source.Count} tokens, fewer than block-size + 1 = {config.BlockSize + 1}: use a smaller --block-size or more text.");
        this.model = model;
        this.config = config;
        this.train = train;
        this.val = val;
        x = new int[config.BatchSize * config.BlockSize];
        y = new int[x.Length];
        rng = new Rng((ulong)config.Seed);
        model.DropoutSeed = (ulong)config.Seed;
        model.ActivationCheckpointing = config.ActivationCheckpointing;
        Optimizer = new AdamW(model.Parameters, config.Beta1, config.Beta2, config.WeightDecay);
    }

    public Gpt Model => model;
    public TrainingConfig Config => config;

    public TrainerProgress Progress => new(Iteration, BestValLoss, rng.State, model.DropoutSeed, Optimizer.Step);

    /// <summary>Continues from a saved state (weights and moments are restored by the caller).</summary>
    public void Restore(TrainerProgress p)
    {
        Iteration = p.Iteration;
        BestValLoss = p.BestValLoss;
        rng = Rng.FromState(p.RngState);
        model.DropoutSeed = p.DropoutSeed;
        Optimizer.Step = p.OptimizerStep;
    }

    /// <summary>Runs iterations until max-iters (inclusive, as nanoGPT) or cancellation.</summary>
    public void Run(CancellationToken cancel = default)
    {
        int tokensPerIter = config.TokensPerIteration;
        while (Iteration <= config.MaxIters && !cancel.IsCancellationRequested)
        {
            float lr = LearningRateSchedule.At(Iteration, config);
            if (Iteration % config.EvalInterval == 0)
            {
                var (trainLoss, valLoss) = Evaluate();
                bool best = valLoss < BestValLoss;
                if (best) BestValLoss = valLoss;
                OnEval?.Invoke(new EvalReport(Iteration, trainLoss, valLoss, best));
                if ((best || config.AlwaysSaveCheckpoint) && Iteration > 0) SaveCheckpoint?.Invoke(this);
            }
            if (config.EvalOnly) break;

            long start = Stopwatch.GetTimestamp();
            var (loss, norm) = Step(lr);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (Iteration % config.LogInterval == 0)
                OnStep?.Invoke(new StepReport(Iteration, loss, lr, norm, ms, tokensPerIter / (ms / 1000.0)));
            Iteration++;
        }
    }

    /// <summary>One optimisation step over gradient-accumulation-steps micro-batches; returns the mean loss and the gradient norm before clipping.</summary>
    public (float Loss, float GradNorm) Step(float lr)
    {
        model.Train();
        model.ZeroGrad();
        int accum = config.GradientAccumulationSteps;
        double lossSum = 0;
        for (int micro = 0; micro < accum; micro++)
        {
            DrawBatch(train, ref rng);
            using var graph = Graph.Record();
            var loss = model.Loss(x, y, config.BatchSize, config.BlockSize);
            lossSum += loss.Item;
            loss.Backward();
        }
        var parameters = model.Parameters;
        if (accum > 1)
            foreach (var p in parameters) TensorPrimitives.Multiply(p.Grad.Span, 1f / accum, p.Grad.Span);
        float norm = GradientClipping.ClipGlobalNorm(parameters, config.GradClip);
        Optimizer.Update(lr);
        return ((float)(lossSum / accum), norm);
    }

    /// <summary>Mean loss over eval-iters batches of each split (nanoGPT's estimate_loss), without gradients.</summary>
    public (float Train, float Val) Evaluate()
    {
        model.Eval();
        var evalRng = new Rng((ulong)config.Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(Iteration + 1)));
        float trainLoss = MeanLoss(train, ref evalRng), valLoss = MeanLoss(val, ref evalRng);
        model.Train();
        return (trainLoss, valLoss);
    }

    /// <summary>Mean loss over <paramref name="iterations"/> random batches of a source, drawn with its own seeded generator.</summary>
    public float MeanLoss(ITokenSource source, int iterations, ulong seed)
    {
        model.Eval();
        var r = new Rng(seed);
        double sum = 0;
        for (int i = 0; i < iterations; i++)
        {
            DrawBatch(source, ref r);
            using var graph = Graph.NoGrad();
            sum += model.Loss(x, y, config.BatchSize, config.BlockSize).Item;
        }
        return (float)(sum / iterations);
    }

    float MeanLoss(ITokenSource source, ref Rng r)
    {
        double sum = 0;
        for (int i = 0; i < config.EvalIters; i++)
        {
            DrawBatch(source, ref r);
            using var graph = Graph.NoGrad();
            sum += model.Loss(x, y, config.BatchSize, config.BlockSize).Item;
        }
        return (float)(sum / config.EvalIters);
    }

    /// <summary>B random windows: x = tokens[i, i+T), y = tokens[i+1, i+T+1) (nanoGPT's get_batch).</summary>
    void DrawBatch(ITokenSource source, ref Rng r)
    {
        int T = config.BlockSize;
        Span<int> window = T + 1 <= 4096 ? stackalloc int[T + 1] : new int[T + 1];
        long starts = source.Count - T;
        for (int b = 0; b < config.BatchSize; b++)
        {
            long i = starts <= int.MaxValue ? r.NextInt((int)starts) : (long)(r.NextDouble() * starts);
            source.Read(i, window);
            window[..T].CopyTo(x.AsSpan(b * T, T));
            window[1..].CopyTo(y.AsSpan(b * T, T));
        }
    }
}
