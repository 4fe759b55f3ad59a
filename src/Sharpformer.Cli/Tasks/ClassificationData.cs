using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>
/// A prepared text-classification folder (<see cref="TextClassificationFolder"/>), trained by a BERT sequence
/// classifier: from scratch, or from a pretrained BERT whose encoder it keeps under a fresh classification head.
/// </summary>
sealed class ClassificationData : TrainingData
{
    public ClassificationData(string folder)
    {
        Folder = folder;
        Meta = TextClassificationFolder.ReadMeta(folder);
        Tokenizer = WordPieceTokenizer.Load(folder);
        if (Tokenizer.VocabSize != Meta.VocabSize)
            throw new InvalidDataException($"{folder}/vocab.txt holds {Tokenizer.VocabSize} tokens but meta.json says {Meta.VocabSize}.");
        Train = TextClassificationFolder.ReadSplit(folder, Meta, "train");
        Val = TextClassificationFolder.ReadSplit(folder, Meta, "val");
        if (Train.Count == 0 || Val.Count == 0) throw new InvalidDataException($"{folder} has {Train.Count} train and {Val.Count} val examples; training needs both.");
    }

    public override string Folder { get; }
    public TextClassificationMeta Meta { get; }
    public WordPieceTokenizer Tokenizer { get; }
    public List<EncodedTextExample> Train { get; }
    public List<EncodedTextExample> Val { get; }

    public override string Describe(RunSettings run) =>
        $"{Folder} (classification: {Train.Count:N0} train / {Val.Count:N0} val texts of up to {Meta.BlockSize} tokens, labels {string.Join(", ", Meta.Labels)}; WordPiece vocabulary {Tokenizer.VocabSize:N0})";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers =>
        new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = Tokenizer.Spec };

    /// <summary>A new BERT classifier takes the data's vocabulary, labels and length.</summary>
    public override ModelConfig Adapt(ModelConfig model) => model is BertConfig bert
        ? bert.WithLabels(Meta.Labels) with { VocabSize = Tokenizer.VocabSize, MaxPositionEmbeddings = Math.Max(bert.MaxPositionEmbeddings, Meta.BlockSize) }
        : throw new ArgumentException($"Classification data ({Folder}) trains BERT classifiers; the run describes a {model.Kind} model (use --task classify, --preset bert-classify or a config with \"kind\": \"bert\").");

    /// <summary>
    /// A pretrained BERT (a masked-LM model, or a classifier over other labels) becomes a classifier over this data's
    /// labels with its embeddings and encoder kept and a fresh head. Its vocabulary must be the one the data was
    /// tokenized with, token for token.
    /// </summary>
    public override Model FromPretrained(Model loaded, string source, List<string> log)
    {
        if (loaded is not Bert bert) return loaded; // EnsureFits names the mismatch
        EnsureSameVocabulary(source);
        if (bert.Config.IsClassifier && Enumerable.Range(0, bert.Config.NumLabels).Select(bert.Config.LabelName).SequenceEqual(Meta.Labels))
            return bert; // a classifier of these very labels goes on training as it is
        var (classifier, fresh) = bert.ToClassifier(Meta.Labels, seed: 1337);
        log.Add($"a new classification head over {Meta.Labels.Length} labels (initialised afresh: {string.Join(", ", fresh)})");
        return classifier;
    }

    /// <summary>The checkpoint's vocab.txt (or a Hugging Face folder's) must equal the data's, token for token.</summary>
    public void EnsureSameVocabulary(string source)
    {
        string? folder = File.Exists(Path.Combine(source, WordPieceTokenizer.VocabFileName)) ? source : null;
        if (folder is null)
        {
            try { folder = Checkpoint.Resolve(source); }
            catch (Exception e) when (e is IOException or ArgumentException) { return; }
        }
        string theirs = Path.Combine(folder, WordPieceTokenizer.VocabFileName);
        if (!File.Exists(theirs)) throw new ArgumentException($"'{source}' has no {WordPieceTokenizer.VocabFileName}; a BERT to fine-tune needs the vocabulary it was trained with.");
        if (!WordPieceVocabulary.Validate(theirs).SequenceEqual(WordPieceVocabulary.Validate(Path.Combine(Folder, WordPieceTokenizer.VocabFileName))))
            throw new ArgumentException($"The data in '{Folder}' was tokenized with another vocabulary than '{source}'s; prepare it with `prepare classify --tokenizer-from {source}`.");
    }

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        if (model is not Bert { Config.IsClassifier: true } bert)
            throw new ArgumentException($"Classification data ({Folder}) trains BERT classifiers; {modelSource} is a {model.Config.Kind} model.");
        if (modelTokenizers is not null && modelTokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec))
            spec.EnsureSameAs(Tokenizer.Spec, modelSource, $"the data in '{Folder}'");
        EnsureFits(bert.Config, modelSource);
        if (run.BlockSize < Meta.BlockSize || run.BlockSize > bert.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"block-size {run.BlockSize} must lie between the data's longest example {Meta.BlockSize} and the model's max_position_embeddings {bert.Config.MaxPositionEmbeddings}.");
    }

    /// <summary>The model reads this vocabulary and predicts these labels.</summary>
    public void EnsureFits(BertConfig c, string modelSource)
    {
        if (!c.IsClassifier) throw new ArgumentException($"{modelSource} is a BERT masked-LM model, not a classifier; fine-tune it first (train --init-from ... --data {Folder}).");
        if (c.VocabSize != Tokenizer.VocabSize)
            throw new ArgumentException($"{modelSource} has a vocabulary of {c.VocabSize} but the data's WordPiece vocabulary holds {Tokenizer.VocabSize}.");
        if (c.NumLabels != Meta.Labels.Length)
            throw new ArgumentException($"{modelSource} predicts {c.NumLabels} classes; {Folder} has {Meta.Labels.Length} ({string.Join(", ", Meta.Labels)}).");
        if (c.MaxPositionEmbeddings < Meta.BlockSize)
            throw new ArgumentException($"{modelSource} reads at most {c.MaxPositionEmbeddings} tokens; the data's examples are up to {Meta.BlockSize}.");
    }

    public override IBatchSource TrainBatches(RunSettings run) => Batches(Train, run);
    public override IBatchSource ValBatches(RunSettings run) => Batches(Val, run);

    IBatchSource Batches(List<EncodedTextExample> examples, RunSettings run) =>
        new LabeledSequences([.. examples.Select(e => (e.Ids, e.Label))], run.BatchSize, run.BlockSize, Meta.Labels.Length, [.. examples.Select(e => e.Segments)]);

    public override void CompleteCheckpoint(string folder) => Tokenizer.Save(folder);

    /// <summary>Accuracy and macro-F1 on the whole validation split.</summary>
    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Bert bert) return;
        var metrics = Evaluate(bert, Val);
        Console.WriteLine($"val accuracy {metrics.Accuracy:P2}, macro-F1 {metrics.MacroF1:F4} ({metrics.Count:N0} texts)");
    }

    /// <summary>Every example through the model (evaluation mode), <paramref name="batchSize"/> at a time: the confusion counts.</summary>
    public static ClassificationMetrics Evaluate(Bert model, IReadOnlyList<EncodedTextExample> examples, int batchSize = 64)
    {
        int labels = model.Config.NumLabels;
        var metrics = new ClassificationMetrics(labels);
        foreach (var (chunk, probabilities) in Classify(model, examples.Select(e => (e.Ids, e.Segments)).ToList(), batchSize))
            for (int i = 0; i < chunk.Count; i++)
                metrics.Add(examples[chunk.Start + i].Label, System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities.AsSpan(i * labels, labels)));
        return metrics;
    }

    /// <summary>Class probabilities of encoded inputs, batch by batch, each batch padded to its longest input.</summary>
    public static IEnumerable<((int Start, int Count) Chunk, float[] Probabilities)> Classify(Bert model, IReadOnlyList<(int[] Ids, int[] Segments)> inputs, int batchSize = 64)
    {
        for (int start = 0; start < inputs.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, inputs.Count - start), time = 0;
            for (int i = 0; i < n; i++) time = Math.Max(time, inputs[start + i].Ids.Length);
            var ids = new int[n * time];
            var segments = new int[n * time];
            var lengths = new int[n];
            for (int i = 0; i < n; i++)
            {
                var (x, s) = inputs[start + i];
                x.CopyTo(ids, i * time);
                s.CopyTo(segments, i * time);
                lengths[i] = x.Length;
            }
            yield return ((start, n), model.ClassProbabilities(ids, segments, lengths, n, time));
        }
    }

    public override void Dispose() { }
}
