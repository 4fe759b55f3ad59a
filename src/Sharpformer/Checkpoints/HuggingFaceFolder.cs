using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Checkpoints;

/// <summary>
/// A Hugging Face model folder of any kind this engine reads: GPT-2 (<see cref="HuggingFaceGpt2"/>), BERT
/// (<see cref="HuggingFaceBert"/>) or ViT (<see cref="HuggingFaceVit"/>), chosen by config.json's model_type (or
/// architectures); any other model type is one error naming those three.
/// </summary>
public static class HuggingFaceFolder
{
    static readonly IReadOnlyDictionary<string, TokenizerSpec> NoTokenizers = new Dictionary<string, TokenizerSpec>();

    /// <summary>The folder's model type ("gpt2", "bert" or "vit"); an <see cref="InvalidDataException"/> for any other.</summary>
    public static string ModelType(string folder)
    {
        using var config = HuggingFaceConfig.Read(folder);
        config.EnsureSupported();
        return config.ModelType;
    }

    /// <summary>The model with the tokenizers a checkpoint of it keeps, by role (GPT-2's BPE; a BERT's vocab.txt when the folder has one).</summary>
    public static (Model Model, IReadOnlyDictionary<string, TokenizerSpec> Tokenizers) Import(string folder) => ModelType(folder) switch
    {
        "gpt2" => (HuggingFaceGpt2.Import(folder), TextRole(Gpt2Tokenizer.Instance.Spec)),
        "bert" => (HuggingFaceBert.Import(folder), VocabularyIn(folder) is { } wordPiece ? TextRole(wordPiece.Spec) : NoTokenizers),
        _ => (HuggingFaceVit.Import(folder), NoTokenizers),
    };

    /// <summary>The files <see cref="Export"/> writes for a model of this kind.</summary>
    public static string[] ExportFiles(ModelConfig config) => config switch
    {
        BertConfig => [HuggingFaceConfig.FileName, Checkpoint.ModelFile, WordPieceTokenizer.VocabFileName, WordPieceTokenizer.ConfigFileName],
        VitConfig => [HuggingFaceConfig.FileName, Checkpoint.ModelFile, "preprocessor_config.json"],
        _ => [HuggingFaceConfig.FileName, Checkpoint.ModelFile],
    };

    /// <summary>
    /// The files a checkpoint imported from a folder of this model type holds: config and weights, and a BERT's
    /// vocab.txt and tokenizer_config.json.
    /// </summary>
    public static string[] CheckpointFiles(string modelType) => modelType == "bert"
        ? [Checkpoint.ConfigFile, Checkpoint.ModelFile, WordPieceTokenizer.VocabFileName, WordPieceTokenizer.ConfigFileName]
        : [Checkpoint.ConfigFile, Checkpoint.ModelFile];

    /// <summary>Writes an imported model as a checkpoint into <paramref name="checkpoint"/>, with a BERT's vocabulary copied from <paramref name="folder"/>.</summary>
    public static void SaveCheckpoint(string folder, Model model, IReadOnlyDictionary<string, TokenizerSpec> tokenizers, string checkpoint)
    {
        Checkpoint.Save(checkpoint, model, tokenizers);
        if (model is Bert) VocabularyIn(folder)?.Save(checkpoint);
    }

    /// <summary>
    /// Writes a checkpoint's model in the Hugging Face layout of its kind; a BERT takes the vocab.txt beside it in
    /// <paramref name="checkpoint"/> along when there is one. Seq2seq and encoder-classifier models have no Hugging Face layout here.
    /// </summary>
    public static void Export(Model model, string checkpoint, string folder)
    {
        switch (model)
        {
            case Gpt gpt: HuggingFaceGpt2.Export(gpt, folder); break;
            case Bert bert: HuggingFaceBert.Export(bert, VocabularyIn(checkpoint), folder); break;
            case Vit vit: HuggingFaceVit.Export(vit, folder); break;
            default: throw new ArgumentException($"A {model.Config.Kind} model has no Hugging Face layout here; convert --to-hf exports GPT, BERT and ViT checkpoints.");
        }
    }

    static WordPieceTokenizer? VocabularyIn(string folder) =>
        File.Exists(Path.Combine(folder, WordPieceTokenizer.VocabFileName)) ? WordPieceTokenizer.Load(folder) : null;

    static IReadOnlyDictionary<string, TokenizerSpec> TextRole(TokenizerSpec spec) => new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = spec };
}
