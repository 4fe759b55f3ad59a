using Sharpformer.Checkpoints;
using Sharpformer.Tests.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// No command deletes or overwrites a file it did not create (convert and prepare refuse a non-empty folder
/// unless --overwrite, and then replace only their own files, never the source); every numeric option has a
/// range checked before any file is read; a Hugging Face config.json of the wrong shape is one error line.
/// </summary>
public sealed class OverwriteAndRangeTests : TinyCheckpoint
{
    /// <summary>Exactly one line on stderr, an error naming what is wrong; nothing on the way that looks like a stack trace.</summary>
    static void AssertOneErrorLine(CliRunner.Result r, params string[] mentions)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Stderr);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        foreach (var m in mentions) Assert.Contains(m, lines[0]);
    }

    [Fact]
    public void ConvertRefusesANonEmptyFolderAndWithOverwriteReplacesOnlyItsOwnFiles()
    {
        Checkpoint.Save(In("ck"), Shape.Create(seed: 1), Vocabulary);
        Directory.CreateDirectory(In("dest"));
        File.WriteAllText(In("dest/notes.txt"), "my notes");
        File.WriteAllText(In("dest/config.json"), "{\"mine\": true}");
        string before = CliRunner.Fingerprint(In("dest"));

        AssertOneErrorLine(CliRunner.Run(root, "convert", "--to-hf", "ck", "--out", "dest"), "not empty", "--overwrite");
        Assert.Equal(before, CliRunner.Fingerprint(In("dest")));

        var ok = CliRunner.Run(root, "convert", "--to-hf", "ck", "--out", "dest", "--overwrite");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Equal("my notes", File.ReadAllText(In("dest/notes.txt")));
        Assert.True(HuggingFaceConfig.IsHuggingFaceFolder(In("dest")));
        Assert.Equal(["config.json", "model.safetensors", "notes.txt"], Directory.GetFileSystemEntries(In("dest")).Select(Path.GetFileName).Order());

        // Importing back: a fresh folder works; a folder with other files needs --overwrite and keeps them.
        Assert.Equal(0, CliRunner.Run(root, "convert", "--from-hf", "dest", "--out", "back").ExitCode);
        File.WriteAllText(In("back/notes.txt"), "kept");
        AssertOneErrorLine(CliRunner.Run(root, "convert", "--from-hf", "dest", "--out", "back"), "not empty");
        Assert.Equal(0, CliRunner.Run(root, "convert", "--from-hf", "dest", "--out", "back", "--overwrite").ExitCode);
        Assert.Equal("kept", File.ReadAllText(In("back/notes.txt")));
        Checkpoint.Load(In("back"));
    }

    [Fact]
    public void ConvertNeverWritesOverItsSourceOrATrainingCheckpoint()
    {
        Checkpoint.Save(In("out/checkpoint"), Shape.Create(seed: 1), Vocabulary);
        Assert.Equal(0, CliRunner.Run(root, "convert", "--to-hf", "out", "--out", "hf").ExitCode);
        File.WriteAllText(In("out/checkpoint/trainer.json"), "{}"); // stands for a run's trainer state
        string checkpoint = CliRunner.Fingerprint(In("out")), hf = CliRunner.Fingerprint(In("hf"));

        AssertOneErrorLine(CliRunner.Run(root, "convert", "--to-hf", "out/checkpoint", "--out", "out/checkpoint", "--overwrite"), "source");
        AssertOneErrorLine(CliRunner.Run(root, "convert", "--to-hf", "out", "--out", "out", "--overwrite"), "source");
        AssertOneErrorLine(CliRunner.Run(root, "convert", "--from-hf", "hf", "--out", "hf", "--overwrite"), "source");
        AssertOneErrorLine(CliRunner.Run(root, "convert", "--from-hf", "hf", "--out", "out/checkpoint", "--overwrite"), "trainer state");
        Assert.Equal(checkpoint, CliRunner.Fingerprint(In("out")));
        Assert.Equal(hf, CliRunner.Fingerprint(In("hf")));
    }

    [Fact]
    public void PrepareRefusesANonEmptyFolderAndNeverReplacesItsInput()
    {
        File.WriteAllText(In("input.txt"), string.Concat(Enumerable.Repeat("To be, or not to be.\n", 50)));
        Assert.Equal(0, CliRunner.Run(root, "prepare", "text", "--input", "input.txt", "--out", "data").ExitCode);
        File.WriteAllText(In("data/notes.txt"), "mine");
        string before = CliRunner.Fingerprint(In("data"));
        AssertOneErrorLine(CliRunner.Run(root, "prepare", "text", "--input", "input.txt", "--out", "data"), "not empty", "train.bin");
        File.Copy(In("data/meta.json"), In("data/copy.txt"));
        AssertOneErrorLine(CliRunner.Run(root, "prepare", "text", "--input", "data/meta.json", "--out", "data", "--overwrite"), "source");
        File.Delete(In("data/copy.txt"));
        Assert.Equal(before, CliRunner.Fingerprint(In("data")));

        File.WriteAllText(In("input.txt"), string.Concat(Enumerable.Repeat("Something else entirely.\n", 50)));
        Assert.Equal(0, CliRunner.Run(root, "prepare", "text", "--input", "input.txt", "--out", "data", "--overwrite").ExitCode);
        Assert.Equal("mine", File.ReadAllText(In("data/notes.txt")));
        Assert.NotEqual(before, CliRunner.Fingerprint(In("data")));
    }

    public static TheoryData<string, string[]> HugeOptions => new()
    {
        { "batch-size", ["train", "--batch-size", "2147483647"] },
        { "n-layer", ["train", "--n-layer", "2147483647"] },
        { "n-embd", ["train", "--n-embd", "2147483647"] },
        { "threads", ["bench", "--threads", "2147483647"] },
        { "steps", ["bench", "--steps", "2147483647"] },
        { "warmup", ["bench", "--warmup", "2147483647"] },
        { "sample-tokens", ["bench", "--sample-tokens", "2147483647"] },
        { "max-new-tokens", ["sample", "--checkpoint", "nowhere", "--max-new-tokens", "2147483647"] },
        { "num-samples", ["sample", "--checkpoint", "nowhere", "--num-samples", "2147483647"] },
        { "top-k", ["sample", "--checkpoint", "nowhere", "--top-k", "2147483647"] },
        { "top-p", ["sample", "--checkpoint", "nowhere", "--top-p", "2"] },
        { "temperature", ["sample", "--checkpoint", "nowhere", "--temperature", "1e39"] },
        { "threads", ["sample", "--checkpoint", "nowhere", "--threads", "2147483647"] },
        { "eval-iters", ["eval", "--checkpoint", "nowhere", "--data", "nowhere", "--eval-iters", "2147483647"] },
        { "batch-size", ["eval", "--checkpoint", "nowhere", "--data", "nowhere", "--batch-size", "2147483647"] },
        { "threads", ["eval", "--checkpoint", "nowhere", "--data", "nowhere", "--threads", "-1"] },
        { "sample-tokens", ["train", "--sample-tokens", "2147483647"] },
    };

    /// <summary>Each huge value is refused up front (before the missing checkpoint or data is noticed) with the option and its range.</summary>
    [Theory]
    [MemberData(nameof(HugeOptions))]
    public void AHugeOptionIsOneLineNamingItsRange(string option, string[] args)
    {
        var r = CliRunner.Run(root, args);
        AssertOneErrorLine(r, option);
        Assert.Matches(@"between|in \(|finite", r.Stderr);
    }

    [Theory]
    [InlineData("[]", "JSON object")]
    [InlineData("null", "JSON object")]
    [InlineData("{\"model_type\": \"gpt2\", \"n_layer\": \"2\", \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, \"vocab_size\": 11}", "'n_layer' must be a 32-bit integer")]
    [InlineData("{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, \"vocab_size\": 11, \"layer_norm_epsilon\": \"x\"}", "'layer_norm_epsilon' must be a finite number")]
    [InlineData("{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, \"vocab_size\": 11, \"activation_function\": 3}", "'activation_function' must be a string")]
    [InlineData("{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": null, \"vocab_size\": 11}", "no 'n_positions'")]
    public void AHuggingFaceConfigOfTheWrongShapeIsOneErrorLine(string json, string message)
    {
        Directory.CreateDirectory(In("hf"));
        File.WriteAllText(In("hf/config.json"), json);
        File.WriteAllBytes(In("hf/model.safetensors"), []);
        AssertOneErrorLine(CliRunner.Run(root, "convert", "--from-hf", "hf", "--out", "ck"), message);
        Assert.False(Directory.Exists(In("ck")));
    }
}
