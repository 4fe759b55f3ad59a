namespace Sharpformer.Tests.Cli;

/// <summary>prepare mlm → train a tiny BERT → checkpoint with its vocab.txt → fill-mask and eval, through the real program.</summary>
public class BertCliTests
{
    [Fact]
    public void PrepareMlmTrainFillMaskAndEvalWorkEndToEnd()
    {
        string dir = Directory.CreateTempSubdirectory("sharpformer-bert-cli").FullName;
        try
        {
            string[] words = ["king", "queen", "crown", "sword", "night", "love", "death", "honour"];
            var rnd = new Random(1);
            var lines = Enumerable.Range(0, 400).Select(_ => $"The {words[rnd.Next(8)]} and the {words[rnd.Next(8)]} of {words[rnd.Next(8)]}.");
            File.WriteAllLines(Path.Combine(dir, "corpus.txt"), lines);

            var prepare = CliRunner.Run(dir, "prepare", "mlm", "--input", "corpus.txt", "--out", "data", "--vocab-size", "80", "--block-size", "32");
            Assert.True(prepare.ExitCode == 0, prepare.Stderr);
            Assert.Contains("WordPiece vocabulary", prepare.Stdout);
            Assert.Contains("\"task\": \"mlm\"", File.ReadAllText(Path.Combine(dir, "data", "meta.json")));

            File.WriteAllText(Path.Combine(dir, "bert.json"), """
                {"model": {"kind": "bert", "vocab_size": 80, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 32, "max_position_embeddings": 32}}
                """);
            var train = CliRunner.Run(dir, "train", "--config", "bert.json", "--data", "data", "--out-dir", "out", "--max-iters", "4",
                "--eval-interval", "4", "--eval-iters", "1", "--batch-size", "4", "--block-size", "32", "--warmup-iters", "0", "--gradient-accumulation-steps", "1", "--threads", "1");
            Assert.True(train.ExitCode == 0, train.Stderr + train.Stdout);
            Assert.Contains("masked-token accuracy", train.Stdout);
            Assert.True(File.Exists(Path.Combine(dir, "out", "checkpoint", "vocab.txt")));

            var fill = CliRunner.Run(dir, "fill-mask", "--checkpoint", "out", "--text", "The king and the [MASK] of love.", "--top-k", "3");
            Assert.True(fill.ExitCode == 0, fill.Stderr);
            var rows = fill.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, rows.Length);
            Assert.All(rows, r => Assert.InRange(double.Parse(r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], System.Globalization.CultureInfo.InvariantCulture), 0, 1));

            var eval = CliRunner.Run(dir, "eval", "--checkpoint", "out", "--data", "data", "--eval-iters", "2", "--batch-size", "4");
            Assert.True(eval.ExitCode == 0, eval.Stderr);
            Assert.Contains("val masked-LM loss", eval.Stdout);

            var noMask = CliRunner.Run(dir, "fill-mask", "--checkpoint", "out", "--text", "no mask here");
            Assert.Equal(1, noMask.ExitCode);
            Assert.StartsWith("error: The text has no [MASK] token.", noMask.Stderr);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
