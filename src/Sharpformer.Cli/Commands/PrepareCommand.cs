using System.CommandLine;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`prepare`: text → train.bin, val.bin, meta.json (nanoGPT's data/*/prepare.py).</summary>
static class PrepareCommand
{
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset")
        {
            Description = "shakespeare-char (characters), shakespeare (GPT-2 BPE), text (any file, with --input); " +
                "fashion-mnist, mnist (IDX files), images (class sub-folders of PNG/JPEG, with --input and --size)",
        };
        dataset.AcceptOnlyFromAmong("shakespeare-char", "shakespeare", "text", ImagePreparation.FashionMnist, ImagePreparation.Mnist, ImagePreparation.Images);
        var input = new Option<string?>("--input") { Description = "Text file, folder of IDX files, or image folder to prepare (default: the shipped Tiny Shakespeare; Debian's Fashion-MNIST)" };
        var download = new Option<bool>("--download") { Description = "Download Tiny Shakespeare from char-rnn instead of using the shipped copy" };
        var output = new Option<string?>("--out") { Description = "Output folder (default: data/shakespeare_char, data/shakespeare or data/text)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "char or gpt2 (default: char, gpt2 for shakespeare)" };
        tokenizer.AcceptOnlyFromAmong("char", "gpt2");
        var images = new ImagePreparation.Options();
        var command = new Command("prepare", "Tokenize a text into train.bin / val.bin / meta.json (90% / 10% split), or prepare labelled images") { dataset, input, output, tokenizer, download };
        images.AddTo(command);
        command.SetAction(r => Cli.Run(() =>
        {
            string kind = r.GetValue(dataset)!;
            if (ImagePreparation.Handles(kind))
            {
                if (r.GetValue(download) || r.GetValue(tokenizer) is not null) throw new ArgumentException($"--download and --tokenizer are for text; prepare {kind} takes --input, --out, --size, --channels, --val-fraction, --flip.");
                ImagePreparation.Run(kind, r.GetValue(input), r.GetValue(output), images.Read(r, kind));
                return Cli.Ok;
            }
            images.EnsureUnused(r, kind);
            string tok = r.GetValue(tokenizer) ?? (kind == "shakespeare" ? "gpt2" : "char");
            string outDir = r.GetValue(output) ?? DefaultFolder(kind, tok);
            string? file = r.GetValue(input);
            if (kind == "text" && file is null) throw new ArgumentException("prepare text needs --input FILE.");
            if (r.GetValue(download) && (file is not null || kind == "text")) throw new ArgumentException("--download fetches Tiny Shakespeare; it cannot be combined with --input or prepare text.");
            Run(file, outDir, tok, r.GetValue(download));
            return Cli.Ok;
        }));
        return command;
    }

    public static string DefaultFolder(string kind, string tokenizer) => kind switch
    {
        "shakespeare-char" => "data/shakespeare_char",
        "shakespeare" => tokenizer == "gpt2" ? "data/shakespeare" : "data/shakespeare_char",
        _ => "data/text",
    };

    /// <summary>Prepares a folder from a file, or from Tiny Shakespeare (shipped, or downloaded on request) when <paramref name="input"/> is null.</summary>
    public static void Run(string? input, string outDir, string tokenizer, bool download = false)
    {
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
