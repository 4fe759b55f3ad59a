using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Checkpoints;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`convert`: Hugging Face GPT-2 or ViTForImageClassification folder ⇄ Sharpformer checkpoint.</summary>
static class ConvertCommand
{
    public static Command Create()
    {
        var fromHf = new Option<string?>("--from-hf") { Description = "Hugging Face GPT-2 folder (config.json + model.safetensors) to import" };
        var toHf = new Option<string?>("--to-hf") { Description = "Sharpformer checkpoint to export in the Hugging Face GPT-2 layout" };
        var output = new Option<string>("--out") { Description = "Folder to write", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Write into a folder that is not empty, replacing only the files convert writes (never the source)" };
        var command = new Command("convert", "Import or export checkpoints in the Hugging Face GPT-2 or ViT layout") { fromHf, toHf, output, overwrite };
        command.SetAction(r => Cli.Run(() =>
        {
            string? from = r.GetValue(fromHf), to = r.GetValue(toHf);
            string outDir = r.GetValue(output)!;
            if ((from is null) == (to is null)) throw new ArgumentException("Give exactly one of --from-hf DIR or --to-hf CHECKPOINT.");
            if (from is not null)
            {
                if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"Hugging Face folder '{from}' does not exist.");
                OutputFolder.EnsureWritable(outDir, [Checkpoint.ModelFile, Checkpoint.ConfigFile], r.GetValue(overwrite), from);
                // Imported weights beside another run's optimizer state would resume as neither run.
                if (File.Exists(Path.Combine(outDir, Checkpoint.TrainerStateFile)) || File.Exists(Path.Combine(outDir, Checkpoint.TrainerFile)))
                    throw new IOException($"'{outDir}' holds a training checkpoint's trainer state; importing there would pair it with other weights. Choose another folder.");
                if (HuggingFaceVit.IsHuggingFaceVit(from))
                {
                    var vit = HuggingFaceVit.Import(from);
                    OutputFolder.Write(outDir, folder => Checkpoint.Save(folder, vit, new Dictionary<string, TokenizerSpec>()));
                    Console.WriteLine($"imported {from} (ViT, {vit.ParameterCount:N0} parameters) into {outDir}");
                    return Cli.Ok;
                }
                var model = HuggingFaceGpt2.Import(from);
                OutputFolder.Write(outDir, folder => Checkpoint.Save(folder, model, Gpt2Tokenizer.Instance.Spec));
                Console.WriteLine($"imported {from} ({model.CountParameters(nonEmbedding: false):N0} parameters) into {outDir}");
            }
            else
            {
                OutputFolder.EnsureWritable(outDir, [HuggingFaceGpt2.ModelFile, HuggingFaceGpt2.ConfigFile], r.GetValue(overwrite), to!, Checkpoint.Resolve(to!));
                var (loaded, config) = Checkpoint.Load(to!);
                if (loaded is Vit vit)
                {
                    OutputFolder.Write(outDir, folder => HuggingFaceVit.Export(vit, folder));
                    Console.WriteLine($"exported {to} in the Hugging Face ViTForImageClassification layout to {outDir}");
                    return Cli.Ok;
                }
                if (loaded is not Gpt model) throw new ArgumentException($"Only GPT checkpoints export to the Hugging Face GPT-2 layout; '{to}' holds a {loaded.Config.Kind} model.");
                OutputFolder.Write(outDir, folder => HuggingFaceGpt2.Export(model, folder));
                Console.WriteLine($"exported {to} in the Hugging Face GPT-2 layout to {outDir}" + (config.Tokenizer.Kind != "gpt2" ? $" (note: it uses a {config.Tokenizer.Kind} tokenizer, not GPT-2's)" : ""));
            }
            return Cli.Ok;
        }));
        return command;
    }
}
