using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// Translation on the command line, as a real process: prepare a tiny TSV corpus, train the translate-de preset
/// a few steps, translate, evaluate; and the bad inputs (misaligned or empty lines, a language without
/// catalogues, a GPT checkpoint given to translate) each end with one error line and a non-zero exit.
/// </summary>
public sealed class TranslationCliTests : IClassFixture<TranslationCliTests.TrainedTranslator>
{
    public sealed class TrainedTranslator : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("sf-translate-").FullName;
        public CliRunner.Result Prepare { get; }
        public CliRunner.Result Train { get; }

        public TrainedTranslator()
        {
            string[] english = ["Open file", "Save file", "Close window", "Open window", "Save all files", "Quit", "Print page", "Open page"];
            string[] german = ["Datei öffnen", "Datei speichern", "Fenster schließen", "Fenster öffnen", "Alle Dateien speichern", "Beenden", "Seite drucken", "Seite öffnen"];
            var lines = Enumerable.Range(0, 200).Select(i => $"{english[i % 8]} {i}\t{german[i % 8]} {i}");
            File.WriteAllLines(Path.Combine(Root, "pairs.tsv"), lines);
            Prepare = CliRunner.Run(Root, "prepare", "translation", "--tsv", "pairs.tsv", "--vocab-size", "300", "--out", "data");
            Train = CliRunner.Run(Root, "train", "--preset", "translate-de", "--data", "data", "--out-dir", "out", "--max-iters", "3",
                "--batch-size", "4", "--eval-interval", "3", "--eval-iters", "1", "--threads", "2", "--always-save-checkpoint", "true");
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    readonly TrainedTranslator run;

    public TranslationCliTests(TrainedTranslator run) => this.run = run;

    static void AssertOneLineError(CliRunner.Result r, string expected)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), $"stderr: {r.Stderr}");
        Assert.Contains(expected, lines[0]);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void PrepareTrainTranslateAndEvalWork()
    {
        Assert.True(run.Prepare.ExitCode == 0, run.Prepare.Stderr);
        Assert.Contains("shared BPE vocabulary 300", run.Prepare.Stdout);
        Assert.Contains("0 pairs skipped", run.Prepare.Stdout);
        Assert.True(run.Train.ExitCode == 0, run.Train.Stderr + run.Train.Stdout);
        Assert.Contains("translations (val):", run.Train.Stdout);

        var greedy = CliRunner.Run(run.Root, "translate", "--checkpoint", "out", "--text", "Open file 3");
        Assert.True(greedy.ExitCode == 0, greedy.Stderr);
        Assert.Single(greedy.Stdout.Split('\n', StringSplitOptions.None).SkipLast(1));
        var beam = CliRunner.Run(run.Root, "translate", "--checkpoint", "out", "--text", "Open file 3", "--beam", "3");
        Assert.True(beam.ExitCode == 0, beam.Stderr);

        var eval = CliRunner.Run(run.Root, "eval", "--checkpoint", "out", "--data", "data", "--eval-iters", "1", "--sentences", "5", "--beam", "2");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Contains("val loss", eval.Stdout);
        Assert.Contains("greedy on val", eval.Stdout);
        Assert.Contains("beam 2 on val", eval.Stdout);
        Assert.Contains("chrF", eval.Stdout);
    }

    [Fact]
    public void BadInputEndsWithOneClearLine()
    {
        File.WriteAllLines(Path.Combine(run.Root, "a.txt"), ["one", "two", "three"]);
        File.WriteAllLines(Path.Combine(run.Root, "b.txt"), ["eins", "zwei"]);
        File.WriteAllLines(Path.Combine(run.Root, "c.txt"), ["eins", "", "drei"]);
        var misaligned = CliRunner.Run(run.Root, "prepare", "translation", "--source", "a.txt", "--target", "b.txt", "--out", "bad");
        AssertOneLineError(misaligned, "has 3 lines but");
        Assert.Contains("has 2", misaligned.Stderr); // both counts named
        AssertOneLineError(CliRunner.Run(run.Root, "prepare", "translation", "--source", "a.txt", "--target", "c.txt", "--out", "bad"), "line 2 is empty");
        var nowhere = CliRunner.Run(run.Root, "prepare", "translation", "--gettext", "xx-nowhere", "--out", "bad");
        AssertOneLineError(nowhere, "No gettext catalogues for 'xx-nowhere'");
        if (Directory.Exists("/usr/share/locale/de/LC_MESSAGES")) Assert.Contains(" de ", nowhere.Stderr); // the languages found are listed
        AssertOneLineError(CliRunner.Run(run.Root, "prepare", "translation", "--tsv", "pairs.tsv", "--gettext", "de", "--out", "bad"), "exactly one of");
        Assert.False(Directory.Exists(Path.Combine(run.Root, "bad")));

        string gpt = Path.Combine(run.Root, "gpt");
        Checkpoint.Save(gpt, new Gpt(new GptConfig { VocabSize = 8, BlockSize = 8, NLayer = 1, NHead = 1, NEmbd = 8 }), new CharTokenizer("abcdefgh").Spec);
        AssertOneLineError(CliRunner.Run(run.Root, "translate", "--checkpoint", "gpt", "--text", "abc"), "holds a gpt model");
        AssertOneLineError(CliRunner.Run(run.Root, "eval", "--checkpoint", "gpt", "--data", "data"), "holds a gpt model");
        string bert = Path.Combine(run.Root, "bert");
        Checkpoint.Save(bert, new Bert(new BertConfig { VocabSize = 8, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 1, IntermediateSize = 16, MaxPositionEmbeddings = 8 }),
            new CharTokenizer("abcdefgh").Spec);
        AssertOneLineError(CliRunner.Run(run.Root, "translate", "--checkpoint", "bert", "--text", "abc"), "holds a bert model");
        AssertOneLineError(CliRunner.Run(run.Root, "bleu", "--hypotheses", "a.txt", "--references", "b.txt"), "'a.txt' holds 3 lines but 'b.txt' 2");
    }

    [Fact]
    public void TooLongSentencesAreCountedAndReported()
    {
        // Sources of 2 words plus a number: with a limit of 3 tokens, the pairs whose source or target (+ </s>) is longer are skipped.
        var prepared = CliRunner.Run(run.Root, "prepare", "translation", "--tsv", "pairs.tsv", "--vocab-size", "300", "--max-length", "3", "--out", "short");
        Assert.True(prepared.ExitCode == 0, prepared.Stderr);
        var meta = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run.Root, "short", "meta.json")))!;
        int skipped = meta["skipped_too_long"]!.GetValue<int>(), kept = new[] { "train", "val", "test" }.Sum(s => meta["pairs"]![s]!.GetValue<int>());
        Assert.True(skipped > 0 && kept + skipped == 200, $"{skipped} skipped, {kept} kept");
        Assert.Contains($"{skipped:N0} pairs skipped (source over 3 or target over 2 tokens)", prepared.Stdout);

        // translate cuts a line longer than the model's positions, and says so on stderr
        string longLine = string.Join(' ', Enumerable.Repeat("Open file", 60));
        var cut = CliRunner.Run(run.Root, "translate", "--checkpoint", "out", "--text", longLine);
        Assert.True(cut.ExitCode == 0, cut.Stderr);
        Assert.Contains("was cut to the model's 64", cut.Stderr);
    }

    [Fact]
    public void BpeSpecRebuildsTheSameTokenizer()
    {
        var vocabulary = BpeVocabulary.Load(Path.Combine(run.Root, "data"));
        var tokenizer = SubwordTokenizer.FromVocabulary(vocabulary);
        var rebuilt = tokenizer.Spec.Create();
        const string text = "Alle Dateien speichern 17, schließen!";
        Assert.Equal(tokenizer.Encode(text), rebuilt.Encode(text));
        Assert.Equal(text, rebuilt.Decode(rebuilt.Encode(text)));
        Assert.Equal(SubwordTokenizer.Load(Path.Combine(run.Root, "data")).Encode(text), tokenizer.Encode(text));
    }
}
