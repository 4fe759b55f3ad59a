using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Cli;

/// <summary>Loads a model from a Sharpformer checkpoint (any kind) or a Hugging Face GPT-2, BERT or ViT folder, with its text tokenizer.</summary>
static class ModelLoader
{
    public static (Model Model, TokenizerSpec Tokenizer) Load(string path, Func<ModelConfig, ModelConfig>? adjust = null)
    {
        var (model, tokenizers) = LoadWithTokenizers(path, adjust);
        return tokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec)
            ? (model, spec)
            : throw new ArgumentException($"'{path}' holds a {model.Config.Kind} model without a text tokenizer.");
    }

    /// <summary>A model of any kind with the tokenizers its checkpoint keeps, by role.</summary>
    public static (Model Model, IReadOnlyDictionary<string, TokenizerSpec> Tokenizers) LoadWithTokenizers(string path, Func<ModelConfig, ModelConfig>? adjust = null)
    {
        if (HuggingFaceConfig.IsHuggingFaceFolder(path))
        {
            var (imported, tokenizers) = HuggingFaceFolder.Import(path);
            return (Adjusted(imported, adjust), tokenizers);
        }
        var (model, config) = Checkpoint.Load(path);
        return (Adjusted(model, adjust), config.Tokenizers);
    }

    /// <summary>A GPT for text generation (sample, eval): another kind of checkpoint is one clear error.</summary>
    public static (Gpt Model, TokenizerSpec Tokenizer) LoadGpt(string path, string verb)
    {
        var (model, tokenizers) = LoadWithTokenizers(path);
        if (model is not Gpt gpt) throw new ArgumentException($"`{verb}` needs a GPT checkpoint, but '{path}' holds a {model.Config.Kind} model.");
        return tokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec) ? (gpt, spec) : throw new ArgumentException($"'{path}' holds a GPT without a text tokenizer.");
    }

    /// <summary>A model whose tokenizer must encode the given data as it was prepared.</summary>
    public static Model LoadForData(string path, TokenizerSpec data, string dataFolder, Func<ModelConfig, ModelConfig>? adjust = null)
    {
        var (model, tokenizer) = Load(path, adjust);
        tokenizer.EnsureSameAs(data, $"The model at '{path}'", $"the data in '{dataFolder}'");
        return model;
    }

    /// <summary>The same weights under a changed config (dropout), or the model itself when nothing changed.</summary>
    static Model Adjusted(Model model, Func<ModelConfig, ModelConfig>? adjust)
    {
        if (adjust is null) return model;
        var config = adjust(model.Config);
        if (config == model.Config) return model;
        var rebuilt = config.Create();
        foreach (var p in rebuilt.Parameters) model.FindParameter(p.Name)!.Value.Span.CopyTo(p.Value.Span);
        return rebuilt;
    }
}
