using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>
/// What `train` needs from a prepared data folder, whatever the task: the batch sources, how a new model's
/// config takes the data's sizes (vocabulary, labels), whether a loaded model fits the data, the tokenizers a
/// checkpoint keeps, and what to show when training ends. One implementation per kind of data; a new model
/// adds its own and a case in <see cref="Open"/>.
/// </summary>
abstract class TrainingData : IDisposable
{
    /// <summary>The folder's meta.json names the kind of data ("task"); folders without one hold next-token data, as nanoGPT's.</summary>
    public static TrainingData Open(string folder)
    {
        if (SubstitutionCipherData.IsSubstitutionCipher(folder)) return new SubstitutionCipherData(); // drawn as needed, no folder
        if (IsMissingPresetFolder(folder, "data/shakespeare_mlm"))
        {
            Console.WriteLine($"{folder} is missing: preparing Tiny Shakespeare for masked-LM pretraining");
            MlmData.Prepare(input: null, folder, vocabSize: 4000, blockSize: 128);
        }
        if (IsMissingPresetFolder(folder, Commands.ImagePreparation.DefaultFolder(Commands.ImagePreparation.FashionMnist)))
        {
            // The vit-fashion presets' folder, prepared on first use from Debian's dataset-fashion-mnist, as Tiny Shakespeare is.
            Console.WriteLine($"{folder} is missing: preparing Fashion-MNIST");
            Commands.ImagePreparation.Run(Commands.ImagePreparation.FashionMnist, null, folder, new(28, 1, 0.1, Flip: true));
        }
        if (ImageDataFolder.IsImageFolder(folder)) return new ImageData(folder);
        if (TextClassificationFolder.IsClassificationFolder(folder)) return new ClassificationData(folder);
        if (TranslationData.IsTranslationFolder(folder) || IsDefaultTranslationFolder(folder)) return new TranslationData(folder);
        return MlmData.IsMlmFolder(folder) ? new MlmData(folder) : new LanguageModelData(folder);
    }

    static bool IsDefaultTranslationFolder(string folder) => IsMissingPresetFolder(folder, "data/translate_de");

    /// <summary>A preset's default data folder that is not there yet: the presets prepare theirs on first use.</summary>
    static bool IsMissingPresetFolder(string folder, string presetFolder) =>
        !Directory.Exists(folder) && folder.Replace('\\', '/').TrimEnd('/') == presetFolder;

    public abstract string Folder { get; }

    /// <summary>One line saying what the data holds.</summary>
    public abstract string Describe(RunSettings run);

    /// <summary>The tokenizers a checkpoint of a model trained on this data needs, by role.</summary>
    public abstract IReadOnlyDictionary<string, TokenizerSpec> Tokenizers { get; }

    /// <summary>A new model's config with the data's sizes filled in (vocabulary, number of labels).</summary>
    public abstract ModelConfig Adapt(ModelConfig model);

    /// <summary>
    /// The model a run starts from when <c>--init-from</c> names a pretrained one: itself, or for a task that puts its
    /// own head on a pretrained body (a classifier on a masked-LM BERT) a new model built from it. Lines for the log go to <paramref name="log"/>.
    /// </summary>
    public virtual Model FromPretrained(Model loaded, string source, List<string> log) => loaded;

    /// <summary>Throws an <see cref="ArgumentException"/> unless the model (of the right kind) fits the data and run settings.</summary>
    public abstract void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource);

    public abstract IBatchSource TrainBatches(RunSettings run);
    public abstract IBatchSource ValBatches(RunSettings run);

    /// <summary>Shows what the trained model does (a text sample, a few predictions); <paramref name="amount"/> 0 shows nothing.</summary>
    public abstract void Demonstrate(Model model, RunSettings run, int amount);

    /// <summary>Adds what a checkpoint of this data needs beyond config and weights (a WordPiece vocab.txt) to a saved checkpoint folder.</summary>
    public virtual void CompleteCheckpoint(string folder) { }

    public abstract void Dispose();
}
