using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Cli.Commands;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>
/// Masked-LM data for BERT pretraining, as `prepare mlm` writes it: vocab.txt + tokenizer_config.json (the learned
/// WordPiece vocabulary), train.bin / val.bin (uint16 ids of [CLS] … [SEP] sequences, one after another),
/// train.lengths.bin / val.lengths.bin (uint16 length of each sequence), and meta.json with "task": "mlm".
/// </summary>
sealed class MlmData : TrainingData
{
    public const string Task = "mlm";

    public MlmData(string folder)
    {
        Folder = folder;
        var meta = ReadMeta(folder);
        BlockSize = (int?)meta["block_size"] ?? throw new InvalidDataException($"{folder}/meta.json lacks block_size.");
        Tokenizer = WordPieceTokenizer.Load(folder);
        Train = ReadSequences(folder, "train");
        Val = ReadSequences(folder, "val");
        var specials = new HashSet<int> { Tokenizer.PadId, Tokenizer.UnkId, Tokenizer.ClsId, Tokenizer.SepId, Tokenizer.MaskId };
        Rule = new MaskingRule(Tokenizer.MaskId, Tokenizer.VocabSize, specials);
    }

    public override string Folder { get; }
    public int BlockSize { get; }
    public WordPieceTokenizer Tokenizer { get; }
    public IReadOnlyList<int[]> Train { get; }
    public IReadOnlyList<int[]> Val { get; }
    public MaskingRule Rule { get; }

    /// <summary>True when the folder's meta.json says "task": "mlm".</summary>
    public static bool IsMlmFolder(string folder)
    {
        string path = Path.Combine(folder, "meta.json");
        return File.Exists(path) && (string?)ReadMeta(folder)["task"] == Task;
    }

    static JsonNode ReadMeta(string folder) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "meta.json"))) ?? throw new InvalidDataException($"{folder}/meta.json is empty.");

    /// <summary>The training texts (and text pairs) of a prepared classification folder, one per line.</summary>
    static string TrainingTexts(string folder)
    {
        var meta = TextClassificationFolder.ReadMeta(folder);
        return string.Join('\n', TextClassificationFolder.ReadSplit(folder, meta, "train").Select(e => e.Pair is null ? e.Text : e.Text + "\n" + e.Pair));
    }

    static List<int[]> ReadSequences(string folder, string split)
    {
        var ids = MemoryMarshal.Cast<byte, ushort>(File.ReadAllBytes(Path.Combine(folder, split + ".bin")));
        var lengths = MemoryMarshal.Cast<byte, ushort>(File.ReadAllBytes(Path.Combine(folder, split + ".lengths.bin")));
        var sequences = new List<int[]>(lengths.Length);
        int at = 0;
        foreach (int n in lengths)
        {
            if (n == 0 || at + n > ids.Length) throw new InvalidDataException($"{folder}/{split}.lengths.bin does not match {split}.bin.");
            var s = new int[n];
            for (int i = 0; i < n; i++) s[i] = ids[at + i];
            sequences.Add(s);
            at += n;
        }
        if (at != ids.Length) throw new InvalidDataException($"{folder}/{split}.lengths.bin covers {at} of {ids.Length} tokens in {split}.bin.");
        return sequences;
    }

    /// <summary>
    /// Packs the lines of a text into [CLS] … [SEP] sequences of at most <paramref name="blockSize"/> ids, with a
    /// WordPiece vocabulary learned from the text (<paramref name="vocabSize"/>) or the one given (a pretrained
    /// model's, or a classification folder's, so the two share ids). A line longer than a sequence continues in the
    /// next ones (counted and reported). <paramref name="input"/> is a text file, a prepared classification folder
    /// (its training texts only: never its val or test texts), or null for Tiny Shakespeare. The last 10% of the
    /// sequences are the validation split.
    /// </summary>
    public static void Prepare(string? input, string outDir, int vocabSize, int blockSize, WordPieceTokenizer? vocabulary = null)
    {
        Settings.InRange(blockSize, 8, ushort.MaxValue, "block-size");
        string text = input is null ? PrepareCommand.ShippedTinyShakespeare()
            : TextClassificationFolder.IsClassificationFolder(input) ? TrainingTexts(input)
            : TextFile.Read(input);
        string staging = outDir; // a fresh folder: the caller writes through OutputFolder, which never removes other files
        WordPieceTokenizer tokenizer;
        if (vocabulary is null)
        {
            Settings.InRange(vocabSize, WordPieceVocabulary.SpecialTokens.Length + 1, ushort.MaxValue + 1, "vocab-size");
            tokenizer = WordPieceTokenizer.Learn(text, new WordPieceTrainerOptions { VocabSize = vocabSize }, staging);
        }
        else
        {
            tokenizer = vocabulary;
            tokenizer.Save(staging);
        }

        var sequences = new List<int[]>();
        var current = new List<int>();
        long splitLines = 0;
        int room = blockSize - 2;
        void Flush()
        {
            if (current.Count == 0) return;
            sequences.Add([tokenizer.ClsId, .. current, tokenizer.SepId]);
            current.Clear();
        }
        foreach (var line in text.Split('\n'))
        {
            var pieces = tokenizer.Encode(line);
            if (pieces.Length == 0) continue;
            if (current.Count + pieces.Length > room) Flush();
            if (pieces.Length > room) splitLines++;
            for (int at = 0; at < pieces.Length; at += room)
            {
                if (at > 0) Flush();
                current.AddRange(pieces.AsSpan(at, Math.Min(room, pieces.Length - at)));
            }
        }
        Flush();
        if (sequences.Count < 2) throw new ArgumentException($"The text makes {sequences.Count} sequence(s); masked-LM data needs at least 2 (one for validation).");
        int valCount = Math.Max(1, sequences.Count / 10);
        var train = sequences[..^valCount];
        var val = sequences[^valCount..];
        Write(staging, "train", train);
        Write(staging, "val", val);
        var meta = new JsonObject
        {
            ["task"] = Task, ["tokenizer"] = WordPieceTokenizer.Kind, ["vocab_size"] = tokenizer.VocabSize, ["block_size"] = blockSize,
            ["train_sequences"] = train.Count, ["val_sequences"] = val.Count, ["split_lines"] = splitLines,
        };
        File.WriteAllText(Path.Combine(staging, "meta.json"), meta.ToJsonString(new() { WriteIndented = true }));
        long tokens = sequences.Sum(s => (long)s.Length);
        Console.WriteLine($"{outDir}: {text.Length:N0} characters, WordPiece vocabulary {tokenizer.VocabSize:N0}, {train.Count:N0} train / {val.Count:N0} val sequences of up to {blockSize} tokens ({tokens:N0} tokens)");
        if (splitLines > 0) Console.WriteLine($"{splitLines:N0} lines longer than {room} pieces continue over several sequences");
    }

    static void Write(string folder, string split, List<int[]> sequences)
    {
        TokenFile.Write(Path.Combine(folder, split + ".bin"), sequences.SelectMany(s => s).ToArray());
        TokenFile.Write(Path.Combine(folder, split + ".lengths.bin"), sequences.Select(s => s.Length).ToArray());
    }

    public override string Describe(RunSettings run) =>
        $"{Folder} (masked LM: {Train.Count:N0} train / {Val.Count:N0} val sequences of up to {BlockSize} tokens, WordPiece vocabulary {Tokenizer.VocabSize:N0})";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers =>
        new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = Tokenizer.Spec };

    public override ModelConfig Adapt(ModelConfig model) => model is BertConfig bert
        ? bert with { VocabSize = Tokenizer.VocabSize, MaxPositionEmbeddings = Math.Max(bert.MaxPositionEmbeddings, BlockSize), NumLabels = 0 }
        : throw new ArgumentException($"Masked-LM data ({Folder}) trains BERT models; the run describes a {model.Kind} model (use --preset bert-shakespeare-mlm or a config with \"kind\": \"bert\").");

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        if (model is not Bert bert || bert.Config.IsClassifier)
            throw new ArgumentException($"Masked-LM data ({Folder}) trains BERT masked-LM models; {modelSource} is a {(model is Bert ? "BERT classifier" : model.Config.Kind + " model")}.");
        if (modelTokenizers is not null && modelTokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec))
            spec.EnsureSameAs(Tokenizer.Spec, modelSource, $"the data in '{Folder}'");
        if (bert.Config.VocabSize != Tokenizer.VocabSize)
            throw new ArgumentException($"{modelSource} has a vocabulary of {bert.Config.VocabSize} but the data's WordPiece vocabulary holds {Tokenizer.VocabSize}.");
        if (run.BlockSize < BlockSize || run.BlockSize > bert.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"block-size {run.BlockSize} must lie between the data's sequence length {BlockSize} and the model's max_position_embeddings {bert.Config.MaxPositionEmbeddings}.");
    }

    public override IBatchSource TrainBatches(RunSettings run) => new MaskedLmSequences(Train, run.BatchSize, run.BlockSize, Rule);
    public override IBatchSource ValBatches(RunSettings run) => new MaskedLmSequences(Val, run.BatchSize, run.BlockSize, Rule);

    public override void CompleteCheckpoint(string folder) => Tokenizer.Save(folder);

    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Bert bert) return;
        model.Eval();
        var (loss, accuracy) = Evaluate(bert, ValBatches(run), 20, (ulong)run.Seed);
        Console.WriteLine($"val masked-LM loss {loss:F4}, masked-token accuracy {accuracy:P1}");
        const string probe = "To be, or not to [MASK]";
        Console.WriteLine($"fill-mask \"{probe}\":");
        foreach (var (token, p) in FillMask.TopTokens(bert, Tokenizer, probe, 5)[0]) Console.WriteLine($"  {token,-12} {p:P1}");
    }

    /// <summary>Mean masked-LM loss and the share of masked positions whose most likely token is the original.</summary>
    public static (float Loss, double Accuracy) Evaluate(Bert model, IBatchSource source, int iters, ulong seed)
    {
        var rng = new Rng(seed);
        double loss = 0;
        long correct = 0, count = 0;
        model.Eval();
        for (int i = 0; i < iters; i++)
        {
            var batch = (MaskedLmBatch)source.Next(ref rng);
            var logits = model.MaskedLmLogits(batch);
            var targets = batch.MaskedTargets();
            int vocab = logits.Cols;
            double batchLoss = 0;
            for (int r = 0; r < targets.Length; r++)
            {
                var row = logits.Span.Slice(r * vocab, vocab);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                double sum = 0;
                foreach (var v in row) sum += Math.Exp(v - max);
                batchLoss += max + Math.Log(sum) - row[targets[r]];
                if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == targets[r]) correct++;
            }
            loss += batchLoss / targets.Length;
            count += targets.Length;
        }
        return ((float)(loss / iters), count == 0 ? 0 : correct / (double)count);
    }

    public override void Dispose() { }
}
