using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Checkpoints;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`convert`: Hugging Face GPT-2, BERT or ViT folder ⇄ Sharpformer checkpoint.</summary>
static class ConvertCommand
{
    public static Command Create()
    {
        var fromHf = new Option<string?>("--from-hf") { Description = "Hugging Face folder to import (config.json + model.safetensors; GPT-2, BERT with its vocab.txt, or ViT)" };
        var toHf = new Option<string?>("--to-hf") { Description = "Sharpformer checkpoint (GPT, BERT or ViT) to export in the Hugging Face layout" };
        var output = new Option<string>("--out") { Description = "Folder to write", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Write into a folder that is not empty, replacing only the files convert writes (never the source)" };
        var command = new Command("convert", "Import or export checkpoints in the Hugging Face GPT-2, BERT or ViT layout") { fromHf, toHf, output, overwrite };
        command.SetAction(r => Cli.Run(() =>
        {
            string? from = r.GetValue(fromHf), to = r.GetValue(toHf);
            string outDir = r.GetValue(output)!;
            if ((from is null) == (to is null)) throw new ArgumentException("Give exactly one of --from-hf DIR or --to-hf CHECKPOINT.");
            if (from is not null)
            {
                if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Hugging Face folder '{from}' does not exist.");
                string type = HuggingFaceFolder.ModelType(from);
                OutputFolder.EnsureWritable(outDir, HuggingFaceFolder.CheckpointFiles(type), r.GetValue(overwrite), from);
                // Imported weights beside another run's optimizer state would resume as neither run.
                if (File.Exists(Path.Combine(outDir, Checkpoint.TrainerStateFile)) || File.Exists(Path.Combine(outDir, Checkpoint.TrainerFile)))
                    throw new IOException($"'{outDir}' holds a training checkpoint's trainer state; importing there would pair it with other weights. Choose another folder.");
                var (model, tokenizers) = HuggingFaceFolder.Import(from);
                OutputFolder.Write(outDir, folder => HuggingFaceFolder.SaveCheckpoint(from, model, tokenizers, folder));
                Console.WriteLine($"imported {from} ({Describe(model)}, {model.CountAllParameters():N0} parameters) into {outDir}" +
                    (model is Bert && tokenizers.Count == 0 ? $" (note: it has no {WordPieceTokenizer.VocabFileName}, so the checkpoint has no tokenizer)" : ""));
            }
            else
            {
                var (loaded, config) = Checkpoint.Load(to!);
                string checkpoint = Checkpoint.Resolve(to!);
                OutputFolder.EnsureWritable(outDir, HuggingFaceFolder.ExportFiles(loaded.Config), r.GetValue(overwrite), to!, checkpoint);
                OutputFolder.Write(outDir, folder => HuggingFaceFolder.Export(loaded, checkpoint, folder));
                string note = loaded is Gpt && config.Tokenizer.Kind != "gpt2" ? $" (note: it uses a {config.Tokenizer.Kind} tokenizer, not GPT-2's)"
                    : loaded is Bert && !File.Exists(Path.Combine(checkpoint, WordPieceTokenizer.VocabFileName)) ? $" (note: the checkpoint has no {WordPieceTokenizer.VocabFileName} to take along)" : "";
                Console.WriteLine($"exported {to} ({Describe(loaded)}) in the Hugging Face layout to {outDir}{note}");
            }
            return Cli.Ok;
        }));
        return command;
    }

    static string Describe(Model model) => model switch
    {
        Gpt => "GPT-2",
        Bert { Config.IsClassifier: true } b => $"BERT classifier, {b.Config.NumLabels} labels",
        Bert => "BERT masked LM",
        Vit => "ViT",
        _ => model.Config.Kind,
    };
}
