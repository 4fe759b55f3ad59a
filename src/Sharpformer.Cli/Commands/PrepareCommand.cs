using System.CommandLine;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Text;
using Sharpformer.Checkpoints;

namespace Sharpformer.Cli.Commands;

/// <summary>`prepare`: text → train.bin, val.bin, meta.json (nanoGPT's data/*/prepare.py).</summary>
static class PrepareCommand
{
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset") { Description = "shakespeare-char (characters), shakespeare (GPT-2 BPE), text (any file, with --input), translation (sentence pairs: --gettext LANG, --source F --target F, or --tsv F), mlm (BERT masked-LM data with a learned WordPiece vocabulary), classify (labelled texts from a CSV/TSV/JSONL file, or --from spam-assassin); fashion-mnist, mnist (IDX files), images (class sub-folders of PNG/JPEG, with --input and --size)" };
        dataset.AcceptOnlyFromAmong("shakespeare-char", "shakespeare", "text", "translation", "mlm", ClassifyPreparation.Kind, ImagePreparation.FashionMnist, ImagePreparation.Mnist, ImagePreparation.Images);
        var gettext = new Option<string?>("--gettext") { Description = "translation: English → LANG pairs from /usr/share/locale/LANG/LC_MESSAGES/*.mo" };
        var sourceFile = new Option<string?>("--source") { Description = "translation: source sentences, one per line (with --target)" };
        var targetFile = new Option<string?>("--target") { Description = "translation: their translations, line-aligned with --source" };
        var tsv = new Option<string?>("--tsv") { Description = "translation: 'source<TAB>target' lines" };
        var vocabSize = new Option<int>("--vocab-size") { Description = $"translation: shared BPE vocabulary size; mlm, classify: WordPiece vocabulary to learn (classify: {ClassifyPreparation.DefaultVocabSize:N0} unless given)", DefaultValueFactory = _ => Tasks.TranslationData.DefaultVocabSize };
        var maxLength = new Option<int>("--max-length") { Description = "translation: longest sentence in tokens (the model's positions); longer pairs are skipped and counted", DefaultValueFactory = _ => Tasks.TranslationData.DefaultMaxLength };
        var blockSize = new Option<int>("--block-size") { Description = "mlm: longest packed sequence; classify: longest example, longer texts are cut (counted and reported); [CLS] and [SEP] included", DefaultValueFactory = _ => 128 };
        var input = new Option<string?>("--input") { Description = "Text file, folder of IDX files, or image folder to prepare (default: the shipped Tiny Shakespeare; Debian's Fashion-MNIST)" };
        var download = new Option<bool>("--download") { Description = "Download Tiny Shakespeare from char-rnn instead of using the shipped copy" };
        var output = new Option<string?>("--out") { Description = "Output folder (default: data/shakespeare_char, data/shakespeare or data/text)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "char or gpt2 (default: char, gpt2 for shakespeare)" };
        tokenizer.AcceptOnlyFromAmong("char", "gpt2");
        var overwrite = new Option<bool>("--overwrite") { Description = "Write into a folder that is not empty, replacing only train.bin, val.bin and meta.json (never the input)" };
        var images = new ImagePreparation.Options();
        var classify = new ClassifyPreparation.Options();
        var vocabulary = new ClassifyPreparation.VocabularyOptions();
        var command = new Command("prepare", "Tokenize a text into train.bin / val.bin / meta.json (90% / 10% split), or prepare sentence pairs or labelled images") { dataset, input, output, tokenizer, download, overwrite, gettext, sourceFile, targetFile, tsv, vocabSize, maxLength, blockSize };
        images.AddTo(command);
        classify.AddTo(command);
        vocabulary.AddTo(command);
        command.SetAction(r => Cli.Run(() =>
        {
            string kind = r.GetValue(dataset)!;
            if (kind != ClassifyPreparation.Kind) classify.EnsureUnused(r, kind);
            if (kind is not (ClassifyPreparation.Kind or "mlm") && vocabulary.Given(r)) throw new ArgumentException($"--vocab and --tokenizer-from are for `prepare classify` and `prepare mlm`, not `prepare {kind}`.");
            bool vocabSizeGiven = r.GetResult(vocabSize) is { Implicit: false };
            if (vocabSizeGiven && vocabulary.Given(r)) throw new ArgumentException("--vocab-size learns a vocabulary; --vocab and --tokenizer-from take one. Give one or the other.");
            if (kind is ClassifyPreparation.Kind or "mlm" && (r.GetValue(download) || r.GetValue(tokenizer) is not null))
                throw new ArgumentException($"prepare {kind} learns a WordPiece vocabulary (or takes one with --vocab or --tokenizer-from); --download and --tokenizer do not apply.");
            if (kind == ClassifyPreparation.Kind)
            {
                string from = classify.From(r)!;
                string classifyOut = r.GetValue(output) ?? ClassifyPreparation.DefaultFolder(from);
                ClassifyPreparation.Run(r.GetValue(input), from, classify.Read(r), vocabulary.Read(r), vocabSizeGiven ? r.GetValue(vocabSize) : ClassifyPreparation.DefaultVocabSize,
                    r.GetValue(blockSize), classifyOut, r.GetValue(overwrite));
                return Cli.Ok;
            }
            if (kind == "mlm")
            {
                string mlmOut = r.GetValue(output) ?? "data/shakespeare_mlm";
                Guard(mlmOut, r.GetValue(overwrite), r.GetValue(input));
                var given = vocabulary.Read(r);
                OutputFolder.Write(mlmOut, folder => Tasks.MlmData.Prepare(r.GetValue(input), folder, r.GetValue(vocabSize), r.GetValue(blockSize), given));
                return Cli.Ok;
            }
            if (kind == "translation")
            {
                string? lang = r.GetValue(gettext), src = r.GetValue(sourceFile), tgt = r.GetValue(targetFile), pairsFile = r.GetValue(tsv);
                int given = (lang is null ? 0 : 1) + (src is null && tgt is null ? 0 : 1) + (pairsFile is null ? 0 : 1);
                if (given != 1) throw new ArgumentException("prepare translation needs exactly one of --gettext LANG, --source FILE --target FILE, or --tsv FILE.");
                if ((src is null) != (tgt is null)) throw new ArgumentException("--source and --target go together.");
                var (pairs, origin) = lang is not null ? (TranslationPairs.FromGettext(lang).Pairs, $"gettext {lang}")
                    : pairsFile is not null ? (TranslationPairs.ReadTsv(pairsFile), pairsFile)
                    : (TranslationPairs.ReadAligned(src!, tgt!), $"{src} + {tgt}");
                string pairsOut = r.GetValue(output) ?? (lang is not null ? $"data/translate_{lang}" : "data/translation");
                Guard(pairsOut, r.GetValue(overwrite), src, tgt, pairsFile);
                OutputFolder.Write(pairsOut, folder => Tasks.TranslationData.Prepare(pairs, origin, folder, r.GetValue(vocabSize), r.GetValue(maxLength)));
                return Cli.Ok;
            }
            if (ImagePreparation.Handles(kind))
            {
                if (r.GetValue(download) || r.GetValue(tokenizer) is not null) throw new ArgumentException($"--download and --tokenizer are for text; prepare {kind} takes --input, --out, --size, --channels, --val-fraction, --flip.");
                string imagesOut = r.GetValue(output) ?? ImagePreparation.DefaultFolder(kind);
                Guard(imagesOut, r.GetValue(overwrite), r.GetValue(input));
                var imageSettings = images.Read(r, kind);
                OutputFolder.Write(imagesOut, folder => ImagePreparation.Run(kind, r.GetValue(input), folder, imageSettings));
                return Cli.Ok;
            }
            images.EnsureUnused(r, kind);
            string tok = r.GetValue(tokenizer) ?? (kind == "shakespeare" ? "gpt2" : "char");
            string outDir = r.GetValue(output) ?? DefaultFolder(kind, tok);
            string? file = r.GetValue(input);
            if (kind == "text" && file is null) throw new ArgumentException("prepare text needs --input FILE.");
            if (r.GetValue(download) && (file is not null || kind == "text")) throw new ArgumentException("--download fetches Tiny Shakespeare; it cannot be combined with --input or prepare text.");
            Run(file, outDir, tok, r.GetValue(download), r.GetValue(overwrite));
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>Refuses a non-empty output folder without --overwrite, and always the input's own folder.</summary>
    static void Guard(string folder, bool overwrite, params string?[] inputs) =>
        OutputFolder.EnsureWritable(folder, [], overwrite, inputs.OfType<string>().ToArray());

    /// <summary>The files prepare writes (and with --overwrite replaces); nothing else in the folder is touched.</summary>
    static readonly string[] Files = ["train.bin", "val.bin", Dataset.MetaFile];

    public static string DefaultFolder(string kind, string tokenizer) => kind switch
    {
        "shakespeare-char" => "data/shakespeare_char",
        "shakespeare" => tokenizer == "gpt2" ? "data/shakespeare" : "data/shakespeare_char",
        _ => "data/text",
    };

    /// <summary>Prepares a folder from a file, or from Tiny Shakespeare (shipped, or downloaded on request) when <paramref name="input"/> is null.</summary>
    public static void Run(string? input, string outDir, string tokenizer, bool download = false, bool overwrite = false)
    {
        OutputFolder.EnsureWritable(outDir, Files, overwrite, input is null ? [] : [input]);
        string text;
        if (input is not null) text = TextFile.Read(input);
        else if (download)
        {
            Console.Error.WriteLine($"downloading Tiny Shakespeare from {Dataset.TinyShakespeareUrl}");
            text = Dataset.DownloadTinyShakespeare();
        }
        else text = ShippedTinyShakespeare();
        ITokenizer? tok = tokenizer == "gpt2" ? Gpt2Tokenizer.Instance : null;
        var (train, val, vocab) = Dataset.Prepare(text, tok, outDir);
        Console.WriteLine($"{outDir}: {text.Length:N0} characters, vocabulary {vocab:N0}, train {train:N0} tokens, val {val:N0} tokens");
    }

    /// <summary>Tiny Shakespeare as embedded in this assembly (char-rnn's input.txt, 1,115,394 characters).</summary>
    public static string ShippedTinyShakespeare()
    {
        using var stream = typeof(PrepareCommand).Assembly.GetManifestResourceStream("tinyshakespeare.txt")
            ?? throw new InvalidOperationException("This build of sharpformer lacks its embedded Tiny Shakespeare.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
