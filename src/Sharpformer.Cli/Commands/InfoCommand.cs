using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Models;
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
            var table = new Table().AddColumn("setting").AddColumn("value");
            table.AddRow("checkpoint", Markup.Escape(folder));
            table.AddRow("format version", config.FormatVersion.ToString());
            table.AddRow("model", config.Model.Kind);
            if (config.Model is GptConfig m)
            {
                table.AddRow("layers / heads / embd", $"{m.NLayer} / {m.NHead} / {m.NEmbd}");
                table.AddRow("block size", m.BlockSize.ToString());
                table.AddRow("bias / activation / dropout", $"{m.Bias} / {m.Activation} / {m.Dropout}");
            }
            else table.AddRow("config", Markup.Escape(System.Text.Json.JsonSerializer.Serialize(config.Model, Models.ModelJsonContext.Default.ModelConfig)));
            foreach (var (role, spec) in config.Tokenizers)
                table.AddRow(role == CheckpointConfig.TextRole ? "tokenizer" : $"{role} tokenizer", $"{spec.Kind} tokenizer, {spec.VocabSize} tokens");
            table.AddRow("parameters", model is Gpt gpt
                ? $"{gpt.ParameterCount:N0} (excluding position embeddings), {gpt.CountParameters(nonEmbedding: false):N0} in all"
                : $"{model.CountAllParameters():N0}");
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
