namespace Sharpformer.Tests.Cli;

/// <summary>Every kind of `prepare` refuses a folder holding other files, and with --overwrite leaves them alone.</summary>
public class PrepareOverwriteTests
{
    [Theory]
    [InlineData("mlm", "--vocab-size", "200")]
    [InlineData("translation", "--vocab-size", "300")]
    public void PrepareKeepsFilesItDidNotWrite(string kind, string option, string value)
    {
        string root = Directory.CreateTempSubdirectory("sf-prepare-").FullName;
        try
        {
            string corpus = string.Concat(Enumerable.Range(0, 200).Select(i => $"the cat {i % 7} sat on the mat number {i}\n"));
            File.WriteAllText(Path.Combine(root, "input.txt"), corpus);
            File.WriteAllText(Path.Combine(root, "pairs.tsv"), string.Concat(Enumerable.Range(0, 300).Select(i => $"open file {i}\tDatei {i} öffnen\n")));
            Directory.CreateDirectory(Path.Combine(root, "out"));
            File.WriteAllText(Path.Combine(root, "out", "notes.txt"), "mine");
            string[] args = kind == "mlm"
                ? ["prepare", "mlm", "--input", "input.txt", "--out", "out", option, value, "--block-size", "32"]
                : ["prepare", "translation", "--tsv", "pairs.tsv", "--out", "out", option, value];

            string before = CliRunner.Fingerprint(root);
            var refused = CliRunner.Run(root, args);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("--overwrite", refused.Stderr);
            Assert.Equal(before, CliRunner.Fingerprint(root));

            var r = CliRunner.Run(root, [.. args, "--overwrite"]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal("mine", File.ReadAllText(Path.Combine(root, "out", "notes.txt")));
            Assert.True(File.Exists(Path.Combine(root, "out", "meta.json")));
            Assert.DoesNotContain(Directory.GetDirectories(root), d => Path.GetFileName(d).StartsWith("out.", StringComparison.Ordinal)); // no staging left
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
