using Sharpformer.Baselines;
using Sharpformer.Checkpoints;
using Sharpformer.Cli.Tasks;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>`eval` on a text-classification folder: a BERT classifier, or the bag-of-words baseline, over a whole split.</summary>
static class TextEvaluation
{
    /// <summary>A BERT classifier checkpoint and the WordPiece tokenizer saved beside it; another kind of checkpoint is one clear error.</summary>
    public static (Bert Model, WordPieceTokenizer Tokenizer) LoadClassifier(string path, string verb)
    {
        string folder = Checkpoint.Resolve(path);
        var (model, _) = ModelLoader.LoadWithTokenizers(folder);
        if (model is not Bert { Config.IsClassifier: true } bert)
            throw new ArgumentException($"`{verb}` needs a BERT classifier checkpoint, but '{path}' holds a {(model is Bert ? "BERT masked-LM model" : model.Config.Kind + " model")}" +
                (model is Bert ? $"; fine-tune it first (train --init-from {path} --task classify --data DIR)." : "."));
        if (!File.Exists(Path.Combine(folder, WordPieceTokenizer.VocabFileName)))
            throw new ArgumentException($"'{folder}' has no {WordPieceTokenizer.VocabFileName} beside the model.");
        return (bert, WordPieceTokenizer.Load(folder));
    }

    public static void Run(string checkpointPath, string dataFolder, string split, string? plotPath, int batchSize)
    {
        using var data = new ClassificationData(dataFolder);
        var examples = Split(data, split);
        var (model, _) = LoadClassifier(checkpointPath, "eval");
        data.EnsureFits(model.Config, $"The model at '{checkpointPath}'");
        data.EnsureSameVocabulary(checkpointPath);
        var metrics = ClassificationData.Evaluate(model, examples, batchSize);
        ClassificationReport.Print(metrics, data.Meta.Labels, split, "texts", plotPath ?? ClassificationReport.DefaultPlot(checkpointPath, split));
    }

    /// <summary>Fits the bag-of-words logistic regression on the train split and reports it on <paramref name="split"/>.</summary>
    public static void Baseline(string dataFolder, string split, string? plotPath)
    {
        if (!TextClassificationFolder.IsClassificationFolder(dataFolder))
            throw new ArgumentException($"--baseline needs a classification folder (prepare classify); '{dataFolder}' is not one.");
        using var data = new ClassificationData(dataFolder);
        var examples = Split(data, split);
        static TextExample Text(EncodedTextExample e) => new(e.Text, e.Pair, e.Label);
        var model = BagOfWordsClassifier.Train([.. data.Train.Select(Text)], data.Meta.Labels.Length);
        var metrics = new ClassificationMetrics(data.Meta.Labels.Length);
        foreach (var e in examples) metrics.Add(e.Label, model.Predict(e.Text, e.Pair));
        Console.WriteLine($"bag-of-words baseline (tf-idf logistic regression, {model.Vocabulary.Count:N0} words) fitted on {data.Train.Count:N0} train texts");
        ClassificationReport.Print(metrics, data.Meta.Labels, split, "texts", plotPath ?? Path.GetFullPath($"confusion_bag-of-words_{split}.png"));
    }

    static List<EncodedTextExample> Split(ClassificationData data, string split)
    {
        var examples = split switch
        {
            "train" => data.Train,
            "val" => data.Val,
            _ => TextClassificationFolder.ReadSplit(data.Folder, data.Meta, split),
        };
        return examples.Count > 0 ? examples : throw new ArgumentException($"The {split} split of '{data.Folder}' holds no examples.");
    }
}
