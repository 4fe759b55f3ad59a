using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Generation;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>
/// Sentence pairs for an encoder-decoder: a shared byte-level BPE vocabulary (vocab.json, merges.txt) and per split
/// SPLIT.src.bin / SPLIT.tgt.bin (uint16 ids, each sentence ended by &lt;/s&gt;, line-aligned) plus SPLIT.src.txt /
/// SPLIT.tgt.txt for val and test (the references BLEU reads). meta.json: "task": "translation", "max_length".
/// </summary>
sealed class TranslationData : TrainingData
{
    public const string Task = "translation";
    const string DefaultFolder = "data/translate_de";

    readonly BpeVocabulary vocabulary;

    public TranslationData(string folder)
    {
        string normalized = folder.Replace('\\', '/').TrimEnd('/');
        if (!Directory.Exists(folder) && normalized == DefaultFolder)
        {
            Console.WriteLine($"{folder} is missing: preparing English→German pairs from this system's gettext catalogues");
            Prepare(TranslationPairs.FromGettext("de").Pairs, "gettext de", folder, DefaultVocabSize, DefaultMaxLength);
        }
        Folder = folder;
        var meta = ReadMeta(folder) ?? throw new InvalidDataException($"{folder}/meta.json is missing; run `prepare translation` first.");
        MaxLength = meta["max_length"]?.GetValue<int>() ?? throw new InvalidDataException($"{folder}/meta.json has no max_length.");
        vocabulary = BpeVocabulary.Load(folder);
        Tokenizer = SubwordTokenizer.FromVocabulary(vocabulary);
        Train = ReadPairs("train");
        Val = ReadPairs("val");
        if (Train.Count == 0 || Val.Count == 0) throw new InvalidDataException($"{folder} holds {Train.Count} train and {Val.Count} val pairs; both splits need some.");
    }

    public const int DefaultVocabSize = 4000, DefaultMaxLength = 64;

    public override string Folder { get; }
    /// <summary>Longest source, and longest target + 1: the model's positions.</summary>
    public int MaxLength { get; }
    public SubwordTokenizer Tokenizer { get; }
    public List<(int[] Source, int[] Target)> Train { get; }
    public List<(int[] Source, int[] Target)> Val { get; }

    public static bool IsTranslationFolder(string folder) => ReadMeta(folder)?["task"]?.GetValue<string>() == Task;

    static JsonNode? ReadMeta(string folder)
    {
        string path = Path.Combine(folder, "meta.json");
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) : null;
    }

    List<(int[], int[])> ReadPairs(string split)
    {
        var sources = ReadSentences(Path.Combine(Folder, split + ".src.bin"));
        var targets = ReadSentences(Path.Combine(Folder, split + ".tgt.bin"));
        if (sources.Count != targets.Count) throw new InvalidDataException($"{Folder}: {split}.src.bin holds {sources.Count} sentences but {split}.tgt.bin {targets.Count}.");
        return sources.Zip(targets).ToList();
    }

    static List<int[]> ReadSentences(string path)
    {
        var ids = MemoryMarshal.Cast<byte, ushort>(File.ReadAllBytes(path));
        var sentences = new List<int[]>();
        var current = new List<int>();
        foreach (ushort id in ids)
        {
            if (id == SubwordTokenizer.EosId)
            {
                sentences.Add([.. current]);
                current.Clear();
            }
            else current.Add(id);
        }
        if (current.Count > 0) throw new InvalidDataException($"{path} does not end with </s>.");
        return sentences;
    }

    /// <summary>The text lines of a val/test split's side ("src", "tgt").</summary>
    public string[] Lines(string split, string side) => File.ReadAllLines(Path.Combine(Folder, $"{split}.{side}.txt"));

    /// <summary>
    /// Splits the pairs by the hash of the source (90/5/5), learns a shared BPE vocabulary on the training pairs,
    /// and writes the folder. Pairs whose source exceeds <paramref name="maxLength"/> tokens or whose target exceeds
    /// max-length - 1 are skipped, counted and reported.
    /// </summary>
    public static void Prepare(IReadOnlyList<SentencePair> pairs, string origin, string folder, int vocabSize, int maxLength)
    {
        Settings.InRange(vocabSize, BpeTrainer.MinVocabSize, ushort.MaxValue, "vocab-size");
        Settings.InRange(maxLength, 2, Settings.MaxContext, "max-length");
        if (pairs.Count == 0) throw new ArgumentException($"{origin} holds no sentence pairs.");
        var split = TranslationPairs.Split(pairs);
        var vocabulary = BpeTrainer.Train(split.Train.SelectMany(p => new[] { p.Source, p.Target }), vocabSize);
        Directory.CreateDirectory(folder);
        vocabulary.Save(folder);
        var tokenizer = SubwordTokenizer.FromVocabulary(vocabulary);
        var counts = new JsonObject();
        int skipped = 0;
        foreach (var (name, part) in new[] { ("train", split.Train), ("val", split.Validation), ("test", split.Test) })
        {
            var kept = new List<(SentencePair Pair, int[] Source, int[] Target)>();
            foreach (var pair in part)
            {
                int[] s = tokenizer.Encode(pair.Source), t = tokenizer.Encode(pair.Target);
                if (s.Length > maxLength || t.Length > maxLength - 1) skipped++;
                else kept.Add((pair, s, t));
            }
            Write(Path.Combine(folder, name + ".src.bin"), kept.Select(k => k.Source));
            Write(Path.Combine(folder, name + ".tgt.bin"), kept.Select(k => k.Target));
            if (name != "train")
            {
                File.WriteAllLines(Path.Combine(folder, name + ".src.txt"), kept.Select(k => k.Pair.Source));
                File.WriteAllLines(Path.Combine(folder, name + ".tgt.txt"), kept.Select(k => k.Pair.Target));
            }
            counts[name] = kept.Count;
        }
        var meta = new JsonObject
        {
            ["task"] = Task, ["source"] = origin, ["tokenizer"] = "bpe", ["vocab_size"] = vocabulary.Tokens.Count, ["max_length"] = maxLength,
            ["pairs"] = counts, ["skipped_too_long"] = skipped,
        };
        File.WriteAllText(Path.Combine(folder, "meta.json"), meta.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"{folder}: {origin}, {pairs.Count:N0} pairs → train {counts["train"]}, val {counts["val"]}, test {counts["test"]}; " +
            $"shared BPE vocabulary {vocabulary.Tokens.Count:N0}; {skipped:N0} pairs skipped (source over {maxLength} or target over {maxLength - 1} tokens)");
    }

    static void Write(string path, IEnumerable<int[]> sentences)
    {
        var ids = new List<ushort>();
        foreach (var s in sentences)
        {
            foreach (int id in s) ids.Add((ushort)id);
            ids.Add(SubwordTokenizer.EosId);
        }
        File.WriteAllBytes(path, MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(ids)).ToArray());
    }

    public override string Describe(RunSettings run) =>
        $"{Folder} ({Train.Count:N0} train / {Val.Count:N0} val sentence pairs, vocabulary {Tokenizer.VocabSize:N0}); {(run.MaxTokens > 0 ? $"batches of similar-length pairs, up to {run.MaxTokens:N0} padded tokens per side" : $"{run.BatchSize} pairs")}{(run.GradientAccumulationSteps > 1 ? $" x {run.GradientAccumulationSteps}" : "")} per iteration";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers
    {
        get
        {
            var spec = Tokenizer.Spec;
            return new Dictionary<string, TokenizerSpec> { ["source"] = spec, ["target"] = spec };
        }
    }

    public override ModelConfig Adapt(ModelConfig model) =>
        model is Seq2SeqConfig s ? s with { VocabSize = Tokenizer.VocabSize, MaxLength = MaxLength } : model;

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        if (model is not Seq2Seq s) throw new ArgumentException($"Translation data ({Folder}) trains seq2seq models; {modelSource} is a {model.Config.Kind} model (use --preset translate-de).");
        if (modelTokenizers is not null)
        {
            if (!modelTokenizers.TryGetValue("source", out var spec)) throw new ArgumentException($"{modelSource} has no source tokenizer.");
            spec.EnsureSameAs(Tokenizer.Spec, modelSource, $"the data in '{Folder}'");
        }
        if (s.Config.MaxLength < MaxLength) throw new ArgumentException($"{modelSource} takes {s.Config.MaxLength} positions but {Folder} holds sentences of up to {MaxLength} tokens.");
    }

    public override IBatchSource TrainBatches(RunSettings run) => new TranslationBatches(Train, run.BatchSize, MaxLength, MaxLength, run.MaxTokens);
    public override IBatchSource ValBatches(RunSettings run) => new TranslationBatches(Val, run.BatchSize, MaxLength, MaxLength, run.MaxTokens);

    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Seq2Seq s) return;
        var sources = Lines("val", "src").Take(5).ToArray();
        var references = Lines("val", "tgt");
        var outputs = s.Translate(sources.Select(x => Clip(Tokenizer.Encode(x), s)).ToArray());
        Console.WriteLine("translations (val):");
        for (int i = 0; i < sources.Length; i++)
            Console.WriteLine($"  {sources[i]}\n    → {Tokenizer.Decode(outputs[i])}\n    ({references[i]})");
    }

    /// <summary>A source cut to the model's positions (at least one token: an empty line becomes &lt;unk&gt;).</summary>
    public static int[] Clip(int[] ids, Seq2Seq model) =>
        ids.Length == 0 ? [SubwordTokenizer.UnkId] : ids.Length > model.Config.MaxLength ? ids[..model.Config.MaxLength] : ids;

    /// <summary>
    /// `eval` on translation data: the val loss over every val pair (the per-token mean of the label-smoothed loss the
    /// model trains on), then greedy and beam BLEU (and chrF) on a split's first sentences.
    /// </summary>
    public static void Evaluate(Seq2Seq model, string folder, string split, int sentences, int beam, int batchSize)
    {
        using var data = new TranslationData(folder);
        double loss = MeanLoss(model, data.Val, data.MaxLength, batchSize, out long tokens);
        Console.WriteLine($"val loss {loss:F4} (every one of {data.Val.Count:N0} pairs, {tokens:N0} target tokens)");
        var sources = data.Lines(split, "src").Take(sentences).ToArray();
        var references = data.Lines(split, "tgt").Take(sources.Length).ToArray();
        var ids = sources.Select(x => Clip(data.Tokenizer.Encode(x), model)).ToArray();
        foreach (int k in beam > 1 ? new[] { 1, beam } : [1])
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            var hypotheses = model.Translate(ids, new TranslationSearch { BeamSize = k }).Select(h => data.Tokenizer.Decode(h)).ToArray();
            double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
            var bleu = Bleu.Corpus(hypotheses, references);
            Console.WriteLine($"{(k == 1 ? "greedy" : $"beam {k}")} on {split} ({sources.Length} sentences, {sources.Length / seconds:F1} sentences/s): BLEU {bleu.Score:F2}, chrF {ChrF.Corpus(hypotheses, references):F2}");
        }
    }

    /// <summary>The per-token mean loss over every pair, in evaluation mode: each batch's mean weighted by its target tokens.</summary>
    public static double MeanLoss(Seq2Seq model, IReadOnlyList<(int[] Source, int[] Target)> pairs, int maxLength, int batchSize, out long tokens)
    {
        bool training = model.IsTraining;
        model.Eval();
        double sum = 0;
        tokens = 0;
        try
        {
            foreach (var batch in new TranslationBatches(pairs, batchSize, maxLength, maxLength).All())
            {
                using var graph = Sharpformer.Autograd.Graph.NoGrad();
                long n = 0;
                foreach (int length in batch.TargetLengths) n += length;
                sum += (double)model.Loss(batch).Item * n;
                tokens += n;
            }
        }
        finally { model.Train(training); }
        return sum / tokens;
    }

    public override void Dispose() { }
}
