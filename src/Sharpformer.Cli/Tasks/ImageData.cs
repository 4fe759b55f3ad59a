using System.Numerics.Tensors;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>A prepared image folder (<see cref="ImageDataFolder"/>), trained as classification by a <see cref="Vit"/>.</summary>
sealed class ImageData : TrainingData
{
    readonly ImageSet train, val;

    public ImageData(string folder)
    {
        Folder = folder;
        Meta = ImageDataFolder.ReadMeta(folder);
        train = ImageDataFolder.ReadSplit(folder, Meta, "train");
        val = ImageDataFolder.ReadSplit(folder, Meta, "val");
    }

    public ImageDataMeta Meta { get; }
    public override string Folder { get; }

    public override string Describe(RunSettings run) =>
        $"{Folder} ({train.Count:N0} train / {val.Count:N0} val images of [{Meta.Channels}, {Meta.Height}, {Meta.Width}], {Meta.Classes.Length} classes); " +
        $"{(long)run.BatchSize * run.GradientAccumulationSteps:N0} images per iteration; augmentation: {Augmentation(run)}";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers { get; } = new Dictionary<string, TokenizerSpec>();

    /// <summary>A ViT takes the data's image size, channels, classes and normalisation.</summary>
    public override ModelConfig Adapt(ModelConfig model)
    {
        if (model is not VitConfig vit) return model;
        if (Meta.Height != Meta.Width) throw new ArgumentException($"The images in {Folder} are {Meta.Height}x{Meta.Width}; a ViT takes square images.");
        return vit.WithClasses(Meta.Classes) with { ImageSize = Meta.Height, NumChannels = Meta.Channels, ImageMean = Meta.Mean, ImageStd = Meta.Std };
    }

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        if (model is not Vit vit) throw new ArgumentException($"Image data ({Folder}) trains ViT models; {modelSource} is a {model.Config.Kind} model.");
        EnsureFits(vit.Config, modelSource);
    }

    /// <summary>The model reads images of this data's shape and predicts its classes.</summary>
    public void EnsureFits(VitConfig c, string modelSource)
    {
        if (c.ImageSize != Meta.Height || c.ImageSize != Meta.Width || c.NumChannels != Meta.Channels)
            throw new ArgumentException($"{modelSource} reads [{c.NumChannels}, {c.ImageSize}, {c.ImageSize}] images; {Folder} holds [{Meta.Channels}, {Meta.Height}, {Meta.Width}].");
        if (c.NumLabels != Meta.Classes.Length)
            throw new ArgumentException($"{modelSource} predicts {c.NumLabels} classes; {Folder} has {Meta.Classes.Length}.");
    }

    public override IBatchSource TrainBatches(RunSettings run) => new ImageBatches(train, run.BatchSize, Meta.Mean, Meta.Std, Augmentation(run));

    /// <summary>The folder's augmentation as the run adjusts it: off, or with its own crop padding.</summary>
    public ImageAugmentation Augmentation(RunSettings run) =>
        !run.Augment ? ImageAugmentation.None : run.CropPadding is int padding ? Meta.Augmentation with { Padding = padding } : Meta.Augmentation;
    public override IBatchSource ValBatches(RunSettings run) => new ImageBatches(val, run.BatchSize, Meta.Mean, Meta.Std);

    /// <summary>Accuracy on the whole validation split.</summary>
    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Vit vit) return;
        var metrics = Evaluate(vit, val);
        Console.WriteLine($"val accuracy {metrics.Accuracy:P2} ({metrics.Count:N0} images)");
    }

    /// <summary>Every image of a split through the model (evaluation mode): the confusion counts.</summary>
    public static ClassificationMetrics Evaluate(Vit model, ImageSet set)
    {
        int labels = model.Config.NumLabels;
        var probabilities = model.Probabilities(set.Pixels, set.Count);
        var metrics = new ClassificationMetrics(labels);
        for (int i = 0; i < set.Count; i++)
            metrics.Add(set.Labels[i], TensorPrimitives.IndexOfMax(probabilities.AsSpan(i * labels, labels)));
        return metrics;
    }

    public override void Dispose() { }
}
