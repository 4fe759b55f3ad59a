using Sharpformer.Checkpoints;
using Sharpformer.Cli.Commands;
using Sharpformer.Data;
using Sharpformer.Generation;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>nanoGPT's data: train.bin / val.bin tokens with meta.json's tokenizer, trained as next-token prediction by a GPT.</summary>
sealed class LanguageModelData : TrainingData
{
    readonly Dataset data;

    public LanguageModelData(string folder) => data = OpenOrPrepare(folder);

    /// <summary>Opens a data folder; prepares Tiny Shakespeare itself when the preset's default folder is missing.</summary>
    static Dataset OpenOrPrepare(string folder)
    {
        string normalized = folder.Replace('\\', '/').TrimEnd('/');
        if (!Directory.Exists(folder) && normalized is "data/shakespeare_char" or "data/shakespeare")
        {
            Console.WriteLine($"{folder} is missing: preparing Tiny Shakespeare");
            PrepareCommand.Run(input: null, folder, normalized.EndsWith("_char") ? "char" : "gpt2");
        }
        return Dataset.Open(folder);
    }

    public override string Folder => data.Folder;

    public override string Describe(RunSettings run) =>
        $"{data.Folder} ({data.Train.Count:N0} train / {data.Val.Count:N0} val tokens); {run.TokensPerIteration:N0} tokens per iteration";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers =>
        new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = data.Tokenizer };

    /// <summary>The vocabulary is the data's, GPT-2's padded to a multiple of 64 as nanoGPT does.</summary>
    public override ModelConfig Adapt(ModelConfig model) => model is GptConfig gpt ? gpt with { VocabSize = data.Tokenizer.ModelVocabSize() } : model;

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        if (model is not Gpt gpt) throw new ArgumentException($"Token data ({data.Folder}) trains GPT models; {modelSource} is a {model.Config.Kind} model.");
        if (modelTokenizers is not null)
        {
            if (!modelTokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec))
                throw new ArgumentException($"{modelSource} has no text tokenizer.");
            spec.EnsureSameAs(data.Tokenizer, modelSource, $"the data in '{data.Folder}'");
        }
        if (run.BlockSize > gpt.Config.BlockSize)
            throw new ArgumentException($"block-size {run.BlockSize} exceeds the model's block_size {gpt.Config.BlockSize}.");
    }

    public override IBatchSource TrainBatches(RunSettings run) => new LanguageModelBatches(data.Train, run.BatchSize, run.BlockSize, "train");
    public override IBatchSource ValBatches(RunSettings run) => new LanguageModelBatches(data.Val, run.BatchSize, run.BlockSize, "val");

    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Gpt gpt) return;
        Console.WriteLine("sample:");
        Tensors.TensorPool.Trim(); // the training step's pooled buffers are not needed for sampling
        gpt.Eval();
        var tokenizer = data.Tokenizer.Create();
        var start = tokenizer is CharTokenizer ? tokenizer.Encode("\n") : [Gpt2Tokenizer.EndOfText];
        var sampler = new Sampler(gpt, tokenizer.VocabSize);
        var generated = sampler.Generate(start, new SamplingOptions { MaxNewTokens = amount, Seed = (ulong)run.Seed }).ToArray();
        Console.WriteLine(tokenizer.Decode(generated));
    }

    public override void Dispose() => data.Dispose();
}
