using System.CommandLine;
using Sharpformer.Kernels;
using Sharpformer.Checkpoints;
using Spectre.Console;

namespace Sharpformer.Cli.Commands;

/// <summary>`info`: what a checkpoint holds.</summary>
static class InfoCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder or out-dir holding one", Required = true };
        var command = new Command("info", "Show a checkpoint's config, parameter count and training state") { checkpoint };
        command.SetAction(r => Cli.Run(() =>
        {
            string folder = Checkpoint.Resolve(r.GetValue(checkpoint)!);
            var (model, config) = Checkpoint.Load(folder);
            var m = config.Model;
            var table = new Table().AddColumn("setting").AddColumn("value");
            table.AddRow("checkpoint", Markup.Escape(folder));
            table.AddRow("format version", config.FormatVersion.ToString());
            table.AddRow("layers / heads / embd", $"{m.NLayer} / {m.NHead} / {m.NEmbd}");
            table.AddRow("block size", m.BlockSize.ToString());
            table.AddRow("vocabulary", $"{m.VocabSize} ({config.Tokenizer.Kind} tokenizer, {config.Tokenizer.VocabSize} tokens)");
            table.AddRow("bias / activation / dropout", $"{m.Bias} / {m.Activation} / {m.Dropout}");
            table.AddRow("parameters", $"{model.ParameterCount:N0} (excluding position embeddings), {model.CountParameters(nonEmbedding: false):N0} in all");
            var progress = Checkpoint.ReadProgress(folder);
            table.AddRow("training state", progress is null ? "none (weights only)" : $"iteration {progress.Iteration}, best val loss {progress.BestValLoss:F4}, {progress.OptimizerStep} optimizer steps");
            if (config.Training is { } t)
                table.AddRow("trained with", Markup.Escape($"batch {t.BatchSize} x {t.BlockSize}, lr {t.LearningRate} -> {t.MinLr}, max-iters {t.MaxIters}, data {t.Data}"));
            AnsiConsole.Write(table);
            return Cli.Ok;
        }));
        return command;
    }
}
