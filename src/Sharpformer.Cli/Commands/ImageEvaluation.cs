using Sharpformer.Checkpoints;
using Sharpformer.Cli.Tasks;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>`eval` on an image data folder: every image of a split through a ViT, reported by <see cref="ClassificationReport"/>.</summary>
static class ImageEvaluation
{
    /// <summary>A ViT checkpoint, or one clear error naming what the path holds instead.</summary>
    public static Vit LoadVit(string path, string verb)
    {
        var (model, _) = Checkpoint.Load(path);
        return model as Vit ?? throw new ArgumentException($"`{verb}` on images needs a ViT checkpoint, but '{path}' holds a {model.Config.Kind} model.");
    }

    /// <returns>The confusion-matrix PNG written.</returns>
    public static string Run(string checkpointPath, string dataFolder, string split, string? plotPath)
    {
        using var data = new ImageData(dataFolder);
        var set = ImageDataFolder.ReadSplit(dataFolder, data.Meta, split);
        var model = LoadVit(checkpointPath, "eval");
        data.EnsureFits(model.Config, $"The model at '{checkpointPath}'");
        var metrics = ImageData.Evaluate(model, set);

        string png = plotPath ?? ClassificationReport.DefaultPlot(checkpointPath, split);
        ClassificationReport.Print(metrics, data.Meta.Classes, split, "images", png);
        return png;
    }
}
