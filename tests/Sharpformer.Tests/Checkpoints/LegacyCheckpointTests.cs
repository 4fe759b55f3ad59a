using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tests.Cli;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// A checkpoint written by the code before the model contract (format version 1, TestData/legacy-v1, see its
/// README) still loads, samples the very text it sampled then, and resumes to the very weights it reached then.
/// </summary>
public class LegacyCheckpointTests
{
    static readonly string Legacy = Path.Combine(AppContext.BaseDirectory, "TestData", "legacy-v1");

    [Fact]
    public void VersionOneConfigLoadsAsAGptWithItsTokenizerAndRunSettings()
    {
        var (model, config) = Checkpoint.Load(Path.Combine(Legacy, "checkpoint"));
        var gpt = Assert.IsType<Gpt>(model);
        Assert.Equal((59, 32, 2, 2, 32, 0.1f, true), (gpt.Config.VocabSize, gpt.Config.BlockSize, gpt.Config.NLayer, gpt.Config.NHead, gpt.Config.NEmbd, gpt.Config.Dropout, gpt.Config.Bias));
        Assert.Equal("char", config.Tokenizer.Kind);
        Assert.Equal(59, config.Tokenizer.VocabSize);
        var run = Assert.IsType<Sharpformer.Training.RunSettings>(config.Training);
        Assert.Equal((4, 32, 30, 10, 3e-3f), (run.BatchSize, run.BlockSize, run.MaxIters, run.EvalInterval, run.LearningRate));
    }

    [Theory]
    [InlineData("samples-3.txt", "--start", "ROMEO:", "--num-samples", "3", "--max-new-tokens", "100", "--seed", "7")]
    [InlineData("samples-12.txt", "--num-samples", "12", "--max-new-tokens", "80", "--temperature", "1.0", "--top-k", "0", "--seed", "3")]
    public void SamplesAreTheOnesRecordedBeforeTheChange(string recorded, params string[] options)
    {
        var r = CliRunner.Run(Legacy, ["sample", "--checkpoint", "checkpoint", "--threads", "2", .. options]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(File.ReadAllText(Path.Combine(Legacy, recorded)), r.Stdout);
    }

    [Fact]
    public void ResumeRestoresTheSavedRunSettingsAndContinuesBitForBit()
    {
        string root = Directory.CreateTempSubdirectory("sf-legacy-").FullName;
        try
        {
            CopyFolder(Path.Combine(Legacy, "data"), Path.Combine(root, "data"));
            CopyFolder(Path.Combine(Legacy, "checkpoint"), Path.Combine(root, "out", "checkpoint"));

            // A shape option that contradicts the checkpoint is an error naming both values; nothing changes.
            string before = CliRunner.Fingerprint(root);
            var bad = CliRunner.Run(root, "train", "--init-from", "resume", "--out-dir", "out", "--n-embd", "64");
            Assert.NotEqual(0, bad.ExitCode);
            Assert.Contains("--n-embd 64 contradicts", bad.Stderr);
            Assert.Contains("n_embd is 32", bad.Stderr);
            Assert.Equal(before, CliRunner.Fingerprint(root));

            // Only the options given here change the saved settings (data, batch, schedule come from the checkpoint).
            var r = CliRunner.Run(root, "train", "--init-from", "resume", "--out-dir", "out", "--max-iters", "40", "--sample-tokens", "0");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("at iteration 30 with the run settings saved there; changed on the command line: --max-iters", r.Stdout);

            using var expected = SafetensorsFile.Open(Path.Combine(Legacy, "resumed-model.safetensors"));
            using var actual = SafetensorsFile.Open(Path.Combine(root, "out", "checkpoint", Checkpoint.ModelFile));
            Assert.Equal(expected.Tensors.Select(t => t.Name).Order(), actual.Tensors.Select(t => t.Name).Order());
            foreach (var t in expected.Tensors) Assert.Equal(expected.ReadFloats(t.Name), actual.ReadFloats(t.Name));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
