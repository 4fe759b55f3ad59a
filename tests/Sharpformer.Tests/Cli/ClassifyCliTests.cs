using System.Globalization;
using System.Text.Json;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// Text classification end to end through the real program: prepare classify, train a tiny BERT from scratch and
/// from a masked-LM checkpoint, eval against figures computed here from predict's output, and the bad inputs of
/// that path, each one error line that writes nothing.
/// </summary>
public sealed class ClassifyCliTests : IClassFixture<ClassifyCliTests.Run>
{
    public sealed class Run : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("sf-classify-cli-").FullName;
        public CliRunner.Result Prepare { get; }
        public CliRunner.Result Train { get; }
        public CliRunner.Result PrepareMlm { get; }
        public CliRunner.Result Pretrain { get; }
        public CliRunner.Result FineTune { get; }
        public CliRunner.Result Other { get; }

        public Run()
        {
            // Reviews whose label is carried by one cue word among shared filler; 24 "pos" and 16 "neg".
            var random = new Random(3);
            string[] filler = ["the", "film", "was", "a", "story", "plot", "and", "actors", "really"];
            var rows = Enumerable.Range(0, 40).Select(i =>
            {
                bool pos = i % 5 < 3;
                var words = Enumerable.Range(0, 5).Select(_ => filler[random.Next(filler.Length)]).Append(pos ? "wonderful" : "awful").OrderBy(_ => random.Next());
                return (Text: string.Join(' ', words), Label: pos ? "pos" : "neg");
            }).ToList();
            File.WriteAllText(Path.Combine(Root, "reviews.csv"), "id,text,label\n" + string.Concat(rows.Select((r, i) => $"{i},\"{r.Text}\",{r.Label}\n")));
            File.WriteAllText(Path.Combine(Root, "tiny.json"), """
                {
                  "model": { "kind": "bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16 },
                  "batch-size": 8, "block-size": 16, "gradient-accumulation-steps": 1, "max-iters": 30, "eval-interval": 15, "eval-iters": 1,
                  "warmup-iters": 3, "lr-decay-iters": 30, "learning-rate": 0.01, "threads": 1, "log-interval": 10, "always-save-checkpoint": true
                }
                """);
            File.WriteAllText(Path.Combine(Root, "nolabel.csv"), "text,category\nfine,pos\nbad,neg\n");
            File.WriteAllText(Path.Combine(Root, "oneclass.csv"), "text,label\n" + string.Concat(Enumerable.Range(0, 10).Select(i => $"a review {i},pos\n")));
            File.WriteAllText(Path.Combine(Root, "empty.csv"), "text,label\ngood,pos\n,neg\nbad,neg\n  ,pos\n");
            File.WriteAllText(Path.Combine(Root, "two.csv"), "text,label\na,pos\nb,neg\n");
            File.WriteAllText(Path.Combine(Root, "bad-vocab.txt"), "[PAD]\n[UNK]\n[SEP]\nthe\nfilm\n");
            Prepare = CliRunner.Run(Root, "prepare", "classify", "--input", "reviews.csv", "--out", "data", "--vocab-size", "80", "--block-size", "16");
            Train = CliRunner.Run(Root, "train", "--task", "classify", "--config", "tiny.json", "--data", "data", "--out-dir", "out");
            // Domain pretraining on the folder's own training texts with its vocabulary, then fine-tuning that encoder.
            PrepareMlm = CliRunner.Run(Root, "prepare", "mlm", "--input", "data", "--vocab", "data/vocab.txt", "--out", "mlmdata", "--block-size", "16");
            Pretrain = CliRunner.Run(Root, "train", "--task", "mlm", "--config", "tiny.json", "--data", "mlmdata", "--out-dir", "mlm", "--max-iters", "2", "--eval-interval", "2");
            Other = CliRunner.Run(Root, "prepare", "classify", "--input", "reviews.csv", "--out", "other", "--vocab-size", "50", "--block-size", "16");
            FineTune = CliRunner.Run(Root, "train", "--init-from", "mlm", "--task", "classify", "--config", "tiny.json", "--data", "data", "--out-dir", "ft", "--max-iters", "4", "--eval-interval", "4");
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    readonly Run run;

    public ClassifyCliTests(Run run) => this.run = run;

    [Fact]
    public void PrepareWritesLabelsAStratifiedSplitAndReportsTruncation()
    {
        Assert.True(run.Prepare.ExitCode == 0, run.Prepare.Stderr);
        Assert.Contains("data: 40 texts (16 neg, 24 pos); train 32 / val 4 / test 4; WordPiece vocabulary", run.Prepare.Stdout);
        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Root, "data", "meta.json")));
        Assert.Equal(["neg", "pos"], meta.RootElement.GetProperty("labels").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("classify", meta.RootElement.GetProperty("task").GetString());
        // Stratified: of 16 neg and 24 pos, round(10%) of each to val and to test.
        var val = File.ReadAllLines(Path.Combine(run.Root, "data", "val.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("label").GetString());
        Assert.Equal(["neg", "neg", "pos", "pos"], val.Order());
        // Six words in 16 positions fit; at 6 positions they are cut, and the cut is counted and reported.
        var cut = CliRunner.Run(run.Root, "prepare", "classify", "--input", "reviews.csv", "--out", "short", "--vocab", "data/vocab.txt", "--block-size", "6");
        Assert.True(cut.ExitCode == 0, cut.Stderr);
        Assert.Contains("truncated: 40 texts longer than 6 tokens ([CLS] and [SEP] included) were cut to 6 (train 32, val 4, test 4)", cut.Stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.Root, "data", "vocab.txt")), File.ReadAllBytes(Path.Combine(run.Root, "short", "vocab.txt")));
        Assert.Equal(File.ReadAllLines(Path.Combine(run.Root, "data", "val.jsonl")).Select(l => l[..l.IndexOf("\"ids\"", StringComparison.Ordinal)]),
            File.ReadAllLines(Path.Combine(run.Root, "short", "val.jsonl")).Select(l => l[..l.IndexOf("\"ids\"", StringComparison.Ordinal)])); // same split
    }

    [Fact]
    public void EvalPrintsTheFiguresOfPredictsLabels()
    {
        Assert.True(run.Train.ExitCode == 0, run.Train.Stderr + run.Train.Stdout);
        Assert.Contains("model: BERT classifier over 2 labels", run.Train.Stdout);
        Assert.Matches(@"val accuracy \d+\.\d\d ?%, macro-F1 \d\.\d{4} \(4 texts\)", run.Train.Stdout);
        Assert.True(File.Exists(Path.Combine(run.Root, "out", "checkpoint", "vocab.txt")));

        // predict, one text per stdin line, on the test split; the figures below are computed here from its labels.
        var test = File.ReadAllLines(Path.Combine(run.Root, "data", "test.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var predict = CliRunner.RunWithInput(run.Root, string.Join('\n', test.Select(t => t.GetProperty("text").GetString())) + "\n", "predict", "--checkpoint", "out", "--top-k", "2");
        Assert.True(predict.ExitCode == 0, predict.Stderr);
        var lines = predict.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(test.Count, lines.Length);
        string[] labels = ["neg", "pos"];
        var confusion = new int[2, 2];
        for (int i = 0; i < lines.Length; i++)
        {
            var fields = lines[i].Split('\t'); // label, then "name p" for the top 2, most likely first
            Assert.Equal(3, fields.Length);
            Assert.Equal(fields[0], fields[1].Split(' ')[0]);
            Assert.Equal(1.0, fields[1..].Sum(f => double.Parse(f.Split(' ')[1], CultureInfo.InvariantCulture)), 3);
            confusion[Array.IndexOf(labels, test[i].GetProperty("label").GetString()), Array.IndexOf(labels, fields[0])]++;
        }
        double accuracy = (confusion[0, 0] + confusion[1, 1]) / (double)test.Count;
        double F1(int c)
        {
            double predicted = confusion[0, c] + confusion[1, c], actual = confusion[c, 0] + confusion[c, 1];
            double p = predicted == 0 ? 0 : confusion[c, c] / predicted, r = actual == 0 ? 0 : confusion[c, c] / actual;
            return p + r == 0 ? 0 : 2 * p * r / (p + r);
        }

        var eval = CliRunner.Run(run.Root, "eval", "--checkpoint", "out", "--data", "data", "--split", "test");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Contains($"test accuracy {accuracy.ToString("P2", CultureInfo.InvariantCulture)} (4 texts, 2 classes)", eval.Stdout);
        Assert.Contains($"macro-F1 {((F1(0) + F1(1)) / 2).ToString("F4", CultureInfo.InvariantCulture)}", eval.Stdout);
        Assert.Contains($"  pos  ", eval.Stdout);
        Assert.True(File.Exists(Path.Combine(run.Root, "out", "confusion_test.png")));

        var single = CliRunner.Run(run.Root, "predict", "--checkpoint", "out", "--text", test[0].GetProperty("text").GetString()!);
        Assert.True(single.ExitCode == 0, single.Stderr);
        var rows = single.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines[0].Split('\t')[0], rows[0].Split(' ')[0]); // the same label alone as in the batch
        Assert.Equal(["neg", "pos"], rows.Select(r => r.Split(' ')[0]).Order());
    }

    [Fact]
    public void FineTuningFromAMaskedLmCheckpointKeepsItsEncoderUnderAFreshHead()
    {
        Assert.True(run.PrepareMlm.ExitCode == 0, run.PrepareMlm.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.Root, "data", "vocab.txt")), File.ReadAllBytes(Path.Combine(run.Root, "mlmdata", "vocab.txt")));
        Assert.True(run.Pretrain.ExitCode == 0, run.Pretrain.Stderr + run.Pretrain.Stdout);
        Assert.True(run.FineTune.ExitCode == 0, run.FineTune.Stderr + run.FineTune.Stdout);
        Assert.Contains("a new classification head over 2 labels (initialised afresh: bert.pooler.dense.weight, bert.pooler.dense.bias, classifier.weight, classifier.bias)", run.FineTune.Stdout);
        Assert.Contains("model: BERT classifier over 2 labels: 1 layers", run.FineTune.Stdout);
        var eval = CliRunner.Run(run.Root, "eval", "--checkpoint", "ft", "--data", "data");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Contains("val accuracy", eval.Stdout);

        // --tokenizer-from takes the checkpoint's vocabulary as it is.
        var again = CliRunner.Run(run.Root, "prepare", "classify", "--input", "reviews.csv", "--out", "from-mlm", "--tokenizer-from", "mlm", "--block-size", "16");
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Matches(@"WordPiece vocabulary \d+ given", again.Stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.Root, "mlm", "checkpoint", "vocab.txt")), File.ReadAllBytes(Path.Combine(run.Root, "from-mlm", "vocab.txt")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.Root, "data", "train.jsonl")), File.ReadAllBytes(Path.Combine(run.Root, "from-mlm", "train.jsonl")));
    }

    public static TheoryData<string, string[]> BadInputs => new()
    {
        { "has no column 'label' (--label-column); its columns are: 'text', 'category'", ["prepare", "classify", "--input", "nolabel.csv", "--out", "new"] },
        { "holds one class ('pos') in 10 rows; classification needs at least two", ["prepare", "classify", "--input", "oneclass.csv", "--out", "new"] },
        { "2 rows of 'empty.csv' have an empty text (lines 3, 5)", ["prepare", "classify", "--input", "empty.csv", "--out", "new"] },
        { "lacks the special tokens [CLS], [MASK]", ["prepare", "classify", "--input", "reviews.csv", "--vocab", "bad-vocab.txt", "--out", "new"] },
        { "leaves no example for validation", ["prepare", "classify", "--input", "two.csv", "--out", "new"] },
        { "`predict --text` needs a BERT classifier checkpoint, but 'mlm' holds a BERT masked-LM model", ["predict", "--checkpoint", "mlm", "--text", "the film"] },
        { "`fill-mask` needs a BERT masked-LM checkpoint, but 'out' holds a BERT classifier", ["fill-mask", "--checkpoint", "out", "--text", "the [MASK]"] },
        { "`predict` on images needs a ViT checkpoint, but 'out' holds a bert model", ["predict", "--checkpoint", "out", "--image", "tiny.json"] },
        { "Classification data (data) trains BERT classifiers; the run describes a gpt model", ["train", "--data", "data", "--out-dir", "new", "--max-iters", "1"] },
        { "--task mlm, but the data in 'data' is classify data", ["train", "--task", "mlm", "--data", "data", "--out-dir", "new"] },
        { "The data in 'other' was tokenized with another vocabulary than 'mlm's; prepare it with `prepare classify --tokenizer-from mlm`",
            ["train", "--init-from", "mlm", "--task", "classify", "--data", "other", "--out-dir", "new"] },
        { "--vocab-size learns a vocabulary; --vocab and --tokenizer-from take one", ["prepare", "classify", "--input", "reviews.csv", "--vocab-size", "50", "--tokenizer-from", "mlm", "--out", "new"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputEndsWithOneClearLineAndWritesNothing(string expected, string[] args)
    {
        Assert.Equal(0, run.Pretrain.ExitCode);
        Assert.Equal(0, run.Other.ExitCode);
        string before = CliRunner.Fingerprint(run.Root);
        CliRunner.AssertOneLineError(CliRunner.Run(run.Root, args), expected);
        Assert.Equal(before, CliRunner.Fingerprint(run.Root));
        Assert.False(Directory.Exists(Path.Combine(run.Root, "new")));
    }

    [Fact]
    public void EmptyTextsAreSkippedAndCountedWhenAsked()
    {
        string dir = Directory.CreateTempSubdirectory("sf-classify-empty-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "e.tsv"), "text\tlabel\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"{(i % 7 == 0 ? "" : $"text {i}")}\t{(i % 2 == 0 ? "a" : "b")}\n")));
            var r = CliRunner.Run(dir, "prepare", "classify", "--input", "e.tsv", "--skip-empty", "--vocab-size", "40", "--out", "d");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("d: 17 texts (8 a, 9 b)", r.Stdout);
            Assert.Contains("skipped 3 rows with an empty text", r.Stdout);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
