using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Generation;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;
using Sharpformer.Cli.Tasks;
using Spectre.Console;

namespace Sharpformer.Cli.Commands;

/// <summary>`train`: nanoGPT's train.py.</summary>
static class TrainCommand
{
    public static Command Create()
    {
        var settings = new TrainingOptions();
        var command = new Command("train", "Train a GPT (from scratch, resumed, or from a checkpoint) with AdamW, warm-up + cosine schedule and clipping");
        settings.AddTo(command);
        var sampleAfter = new Option<int>("--sample-tokens") { Description = $"Characters/tokens to sample when training ends (0: none; at most {SamplingOptions.MaxNewTokensLimit:N0})", DefaultValueFactory = _ => 300 };
        command.Options.Add(sampleAfter);
        var task = new Option<string?>("--task") { Description = "lm, mlm, classify, translate or images: the task the data must hold; without --preset or --config, that task's preset (" +
            string.Join(", ", TaskPresets.Select(p => $"{p.Key}: {p.Value}")) + ")" };
        task.AcceptOnlyFromAmong("lm", "mlm", "classify", "translate", "images");
        command.Options.Add(task);
        command.SetAction(r => Cli.Run(() =>
        {
            Settings.InRange(r.GetValue(sampleAfter), 0, SamplingOptions.MaxNewTokensLimit, "sample-tokens");
            string? taskName = r.GetValue(task);
            return Run(settings.Resolve(r, taskName is not null && TaskPresets.TryGetValue(taskName, out var preset) ? Presets.Get(preset) : null), r.GetValue(sampleAfter), taskName);
        }));
        return command;
    }

    /// <summary>The preset a task trains with when the command line names no preset or config file.</summary>
    static readonly Dictionary<string, string> TaskPresets = new()
    {
        ["mlm"] = "bert-shakespeare-mlm", ["classify"] = "bert-classify", ["translate"] = "translate-de", ["images"] = "vit-fashion-quick",
    };

    static string TaskOf(TrainingData data) => data switch
    {
        ClassificationData => "classify",
        MlmData => "mlm",
        TranslationData => "translate",
        ImageData => "images",
        _ => "lm",
    };

    /// <summary>Trains as resolved (also `icl`'s training step); sampleTokens 0 shows nothing when training ends.</summary>
    internal static int Run(ResolvedRun resolved, int sampleTokens, string? task = null)
    {
        var config = resolved.Run;
        bool resume = config.InitFrom == "resume";
        string checkpointDir = Path.Combine(config.OutDir, Checkpoint.FolderName);
        // Before anything is read or written: one process per out-dir, and the leftovers of interrupted saves tidied.
        using var outDirLock = OutDirLock.Acquire(config.OutDir);
        foreach (var line in CheckpointRecovery.Recover(checkpointDir)) Console.WriteLine(line);
        var overridden = new List<string>();
        Model? model = null;
        IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers = null;
        if (resume)
        {
            // The run continues as it was saved: its settings (data, schedule, batch) come from the checkpoint, and
            // only options given on this command line change them.
            string folder = Checkpoint.Resolve(checkpointDir);
            var saved = Checkpoint.ReadConfig(folder);
            config = resolved.OverrideRun(saved.Training ?? config, overridden);
            config.Validate();
            (model, modelTokenizers) = ModelLoader.LoadWithTokenizers(folder, m => resolved.OverrideModel(m, $"the checkpoint in '{folder}'", overridden));
        }
        else if (config.InitFrom != "scratch")
        {
            (model, modelTokenizers) = ModelLoader.LoadWithTokenizers(config.InitFrom, m => resolved.OverrideModel(m, $"'{config.InitFrom}'", overridden));
        }

        Parallelism.ThreadCount = config.EffectiveThreads;
        using var data = TrainingData.Open(config.Data);
        if (task is not null && TaskOf(data) != task)
            throw new ArgumentException($"--task {task}, but the data in '{config.Data}' is {TaskOf(data)} data.");
        if (model is not null && !resume) model = data.FromPretrained(model, config.InitFrom, overridden);
        model ??= data.Adapt(resolved.Model).Create(config.Seed); // the model validates its config as it is built
        data.EnsureFits(model, modelTokenizers, config, resume ? $"The checkpoint in '{checkpointDir}'" : config.InitFrom == "scratch" ? "The new model" : $"The model at '{config.InitFrom}'");

        var trainer = new Trainer(model, config, data.TrainBatches(config), data.ValBatches(config));
        if (resume) Checkpoint.RestoreTrainer(checkpointDir, trainer);
        var metrics = new MetricsLog(config.OutDir);

        Console.WriteLine($"model: {Describe(model)}; {model.ParameterCount / 1e6:F2}M parameters");
        Console.WriteLine($"data: {data.Describe(config)}; {config.EffectiveThreads} threads");
        if (resume)
            Console.WriteLine($"resuming from {checkpointDir} at iteration {trainer.Iteration} with the run settings saved there" +
                (overridden.Count > 0 ? $"; changed on the command line: {string.Join(", ", overridden)}" : ""));
        else if (overridden.Count > 0)
            Console.WriteLine($"changed from the loaded model: {string.Join(", ", overridden)}");

        // Ctrl+C (SIGINT) once: finish this iteration, save, exit 130. Twice: the default action ends the process at
        // once, even inside an evaluation (a save in progress leaves the previous checkpoint, see AtomicFolder).
        using var cancel = new CancellationTokenSource();
        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal =>
        {
            if (cancel.IsCancellationRequested)
            {
                Console.Error.WriteLine("aborted");
                return;
            }
            signal.Cancel = true;
            cancel.Cancel();
            Console.Error.WriteLine("stopping after this iteration to save a checkpoint (Ctrl+C again to abort at once)");
        });
        int startIteration = trainer.Iteration;
        trainer.OnEval = e =>
        {
            metrics.Eval(e.Iteration, e.TrainLoss, e.ValLoss, e.TrainAccuracy, e.ValAccuracy);
            Report($"step {e.Iteration}: train loss {e.TrainLoss:F4}, val loss {e.ValLoss:F4}"
                + (e.ValAccuracy is float va ? $", train accuracy {e.TrainAccuracy:P2}, val accuracy {va:P2}" : ""));
        };
        trainer.SaveCheckpoint = t =>
        {
            Checkpoint.Save(checkpointDir, t.Model, data.Tokenizers, config, t);
            data.CompleteCheckpoint(checkpointDir);
            Report($"saved checkpoint to {checkpointDir}");
        };
        trainer.OnStep = s =>
        {
            metrics.Step(s.Iteration, s.Loss, s.LearningRate, s.GradNorm, s.Milliseconds, s.TokensPerSecond);
            progress?.Invoke(s);
            if (Console.IsOutputRedirected || progress is null)
                Console.WriteLine($"iter {s.Iteration}: loss {s.Loss:F4}, lr {s.LearningRate:0.####e0}, time {s.Milliseconds:F2}ms, {Speed(s)}");
        };
        RunWithProgress(trainer, config, cancel.Token);
        if (cancel.IsCancellationRequested && trainer.Iteration <= config.MaxIters && !config.EvalOnly)
        {
            if (trainer.Iteration == startIteration)
            {
                Console.WriteLine($"interrupted at iteration {trainer.Iteration}, before any training step of this run: nothing to save");
                return Cli.Interrupted;
            }
            Checkpoint.Save(checkpointDir, trainer.Model, data.Tokenizers, config, trainer);
            data.CompleteCheckpoint(checkpointDir);
            Console.WriteLine($"interrupted: saved a resumable checkpoint at iteration {trainer.Iteration} to {checkpointDir}; continue with --init-from resume --out-dir {config.OutDir}");
            return Cli.Interrupted;
        }
        Console.WriteLine($"best val loss {trainer.BestValLoss:F4}; metrics in {Path.Combine(config.OutDir, "metrics.jsonl")}, plot in {Path.Combine(config.OutDir, "loss.png")}");

        if (!cancel.IsCancellationRequested) data.Demonstrate(model, config, sampleTokens);
        return Cli.Ok;
    }

    /// <summary>Tokens per second for token data; examples (images) per second where the inputs are not tokens.</summary>
    static string Speed(StepReport s) => s.TokensPerSecond > 0 ? $"{s.TokensPerSecond:N0} tokens/s" : $"{s.ExamplesPerSecond:N1} examples/s";

    /// <summary>The model's shape in one line.</summary>
    static string Describe(Model model) => model.Config switch
    {
        GptConfig m => $"{m.NLayer} layers, {m.NHead} heads, {m.NEmbd} embd, block {m.BlockSize}, vocab {m.VocabSize}",
        BertConfig b => $"BERT {(b.IsClassifier ? $"classifier over {b.NumLabels} labels" : "masked LM")}: {b.NumHiddenLayers} layers, {b.NumAttentionHeads} heads, {b.HiddenSize} wide, vocab {b.VocabSize}",
        var other => other.Kind,
    };

    static Action<StepReport>? progress;
    static Action<string>? report;

    static void Report(string line)
    {
        if (report is not null) report(line);
        else Console.WriteLine(line);
    }

    /// <summary>A progress bar with ETA on a terminal; plain log lines when output is redirected.</summary>
    static void RunWithProgress(Trainer trainer, RunSettings config, CancellationToken cancel)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            trainer.Run(cancel);
            return;
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: config.MaxIters + 1);
                task.Increment(trainer.Iteration);
                progress = s =>
                {
                    task.Description = $"iter {s.Iteration}  loss {s.Loss:F4}  {s.Milliseconds:F1} ms  {Speed(s)}";
                    task.Value = s.Iteration + 1;
                };
                report = line => AnsiConsole.MarkupLine(Markup.Escape(line));
                try { trainer.Run(cancel); }
                finally { progress = null; report = null; }
                task.Value = task.MaxValue;
            });
    }
}
