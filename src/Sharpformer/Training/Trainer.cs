using System.Diagnostics;
using System.Numerics.Tensors;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>What the trainer reports every log-interval.</summary>
public readonly record struct StepReport(int Iteration, float Loss, float LearningRate, float GradNorm, double Milliseconds,
    double ExamplesPerSecond, double TokensPerSecond);

/// <summary>What the trainer reports at every evaluation; a classifier's accuracies too (fractions of the examples evaluated), null for other models.</summary>
public readonly record struct EvalReport(int Iteration, float TrainLoss, float ValLoss, bool IsBest, float? TrainAccuracy = null, float? ValAccuracy = null);

/// <summary>A model's mean loss over some batches and, for a classifier, the fraction of their examples it labels correctly.</summary>
public readonly record struct Evaluation(float Loss, float? Accuracy);

/// <summary>Training produced a non-finite loss or gradient: the run stops before anything is saved.</summary>
public sealed class DivergenceException(string message) : Exception(message);

/// <summary>Everything besides the weights and moments needed to continue a run exactly.</summary>
public sealed record TrainerProgress(int Iteration, float BestValLoss, ulong[] RngState, ulong DropoutSeed, int OptimizerStep);

/// <summary>
/// The training loop of nanoGPT's train.py, for any model: at each iteration set the scheduled learning rate,
/// evaluate every eval-interval (and save when val loss improves, or always if asked), accumulate gradients
/// over micro-batches, clip, step AdamW. Batches come from a source that draws from the trainer's seeded
/// generator, whose state is part of the checkpoint, and evaluation uses its own generator seeded per
/// iteration, so a resumed run continues bit for bit.
/// </summary>
public sealed class Trainer
{
    readonly Model model;
    readonly RunSettings run;
    readonly IBatchSource train, val;
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

    public Trainer(Model model, RunSettings run, IBatchSource train, IBatchSource val)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(val);
        run.Validate();
        this.model = model;
        this.run = run;
        this.train = train;
        this.val = val;
        rng = new Rng((ulong)run.Seed);
        model.DropoutState = (ulong)run.Seed;
        model.ActivationCheckpointing = run.ActivationCheckpointing;
        Optimizer = new AdamW(model.Parameters, run.Beta1, run.Beta2, run.WeightDecay, decays: model.DecaysWeight);
    }

    public Model Model => model;
    public RunSettings Settings => run;

    public TrainerProgress Progress => new(Iteration, BestValLoss, rng.State, model.DropoutState, Optimizer.Step);

    /// <summary>Continues from a saved state (weights and moments are restored by the caller).</summary>
    public void Restore(TrainerProgress p)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.Iteration < 0 || p.Iteration > RunSettings.MaxIterations) throw new InvalidDataException($"The saved iteration {p.Iteration} is out of range.");
        if (p.RngState is null || p.RngState.Length != 4 || p.RngState.All(w => w == 0))
            throw new InvalidDataException("The saved batch generator state is not four words with at least one set (an all-zero xoshiro state repeats forever).");
        Iteration = p.Iteration;
        BestValLoss = p.BestValLoss;
        rng = Rng.FromState(p.RngState);
        model.DropoutState = p.DropoutSeed;
        Optimizer.Step = p.OptimizerStep;
    }

    /// <summary>Runs iterations until max-iters (inclusive, as nanoGPT) or cancellation.</summary>
    public void Run(CancellationToken cancel = default)
    {
        while (Iteration <= run.MaxIters && !cancel.IsCancellationRequested)
        {
            float lr = LearningRateSchedule.At(Iteration, run);
            if (Iteration % run.EvalInterval == 0)
            {
                var (trainEval, valEval) = Evaluate();
                float trainLoss = trainEval.Loss, valLoss = valEval.Loss;
                if (!float.IsFinite(trainLoss) || !float.IsFinite(valLoss))
                    throw Diverged($"evaluation gave train loss {trainLoss}, val loss {valLoss}");
                bool best = valLoss < BestValLoss;
                if (best) BestValLoss = valLoss;
                OnEval?.Invoke(new EvalReport(Iteration, trainLoss, valLoss, best, trainEval.Accuracy, valEval.Accuracy));
                if ((best || run.AlwaysSaveCheckpoint) && Iteration > 0) SaveCheckpoint?.Invoke(this);
            }
            if (run.EvalOnly) break;

            long start = Stopwatch.GetTimestamp();
            var (loss, norm, examples, tokens) = Step(lr);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (!float.IsFinite(loss) || !float.IsFinite(norm)) throw Diverged($"loss {loss}, gradient norm {norm}");
            if (Iteration % run.LogInterval == 0)
                OnStep?.Invoke(new StepReport(Iteration, loss, lr, norm, seconds * 1000, examples / seconds, tokens / seconds));
            Iteration++;
        }
    }

    DivergenceException Diverged(string what) => new(
        $"training diverged at iteration {Iteration} ({what}); nothing was saved after it. The learning rate " +
        $"({LearningRateSchedule.At(Iteration, run)} now, peak {run.LearningRate}) is the usual cause: lower it, or keep grad-clip on.");

    /// <summary>
    /// One optimisation step over gradient-accumulation-steps micro-batches; returns the mean loss, the gradient
    /// norm before clipping, and the examples and input tokens it trained on.
    /// </summary>
    public (float Loss, float GradNorm, long Examples, long Tokens) Step(float lr)
    {
        model.Train();
        model.ZeroGrad();
        int accum = run.GradientAccumulationSteps;
        double lossSum = 0;
        long examples = 0, tokens = 0;
        for (int micro = 0; micro < accum; micro++)
        {
            var batch = train.Next(ref rng);
            examples += batch.Examples;
            tokens += batch.InputTokens;
            using var graph = Graph.Record();
            var loss = model.Loss(batch);
            lossSum += loss.Item;
            loss.Backward();
        }
        var parameters = model.Parameters;
        if (accum > 1)
            foreach (var p in parameters) TensorPrimitives.Multiply(p.Grad.Span, 1f / accum, p.Grad.Span);
        float norm = GradientClipping.ClipGlobalNorm(parameters, run.GradClip);
        Optimizer.Update(lr);
        return ((float)(lossSum / accum), norm, examples, tokens);
    }

    /// <summary>Mean loss (and a classifier's accuracy) over eval-iters batches of each split (nanoGPT's estimate_loss), without gradients.</summary>
    public (Evaluation Train, Evaluation Val) Evaluate()
    {
        var evalRng = new Rng((ulong)run.Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(Iteration + 1)));
        var trainEval = Measure(model, train, run.EvalIters, ref evalRng);
        var valEval = Measure(model, val, run.EvalIters, ref evalRng);
        model.Train();
        return (trainEval, valEval);
    }

    /// <summary>A model's mean loss, in evaluation mode and without gradients, over <paramref name="iterations"/> batches drawn with <paramref name="seed"/>.</summary>
    public static float MeanLoss(Model model, IBatchSource source, int iterations, ulong seed)
    {
        var r = new Rng(seed);
        return Measure(model, source, iterations, ref r).Loss;
    }

    static Evaluation Measure(Model model, IBatchSource source, int iterations, ref Rng r)
    {
        model.Eval();
        double sum = 0;
        long correct = 0, examples = 0;
        bool classifier = true;
        for (int i = 0; i < iterations; i++)
        {
            var batch = source.Next(ref r);
            var (loss, right) = model.Evaluate(batch);
            sum += loss;
            classifier &= right.HasValue;
            correct += right ?? 0;
            examples += batch.Examples;
        }
        return new((float)(sum / iterations), classifier && examples > 0 ? (float)((double)correct / examples) : null);
    }
}
