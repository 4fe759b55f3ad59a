using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Cli;

/// <summary>Loads a model from a Sharpformer checkpoint or a Hugging Face GPT-2 folder, checking the tokenizer matches.</summary>
static class ModelLoader
{
    public static (Gpt Model, TokenizerSpec Tokenizer) Load(string path)
    {
        if (HuggingFaceGpt2.IsHuggingFaceFolder(path))
            return (HuggingFaceGpt2.Import(path), Gpt2Tokenizer.Instance.Spec);
        var (model, config) = Checkpoint.Load(path);
        return (model, config.Tokenizer);
    }

    public static Gpt LoadForFineTuning(string path, TokenizerSpec data)
    {
        var (model, tokenizer) = Load(path);
        if (tokenizer.Kind != data.Kind || tokenizer.VocabSize != data.VocabSize || tokenizer.Chars != data.Chars)
            throw new ArgumentException($"The model at '{path}' uses the {tokenizer.Kind} tokenizer ({tokenizer.VocabSize} tokens) but the data was prepared with {data.Kind} ({data.VocabSize}); prepare the data with --tokenizer {tokenizer.Kind}.");
        return model;
    }
}
