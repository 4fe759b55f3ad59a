using System.Buffers.Binary;
using System.Text.Json;

namespace Sharpformer.Tests.Cli;

/// <summary>`icl` end to end on a tiny model: trains through the normal checkpoint path, writes the curve, and re-evaluates a checkpoint alone.</summary>
// The CLI processes take the machine's SIMD path; comparing two of their outputs needs no in-process path.
public class IclCommandTests
{
    [Fact]
    public void TrainsEvaluatesAndWritesTheCurveThenEvaluatesTheCheckpointAlone()
    {
        string root = Directory.CreateTempSubdirectory("sf-icl-").FullName;
        try
        {
            string[] tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "4", "--max-iters", "6", "--eval-interval", "3",
                "--eval-iters", "1", "--warmup-iters", "1", "--lr-decay-iters", "6", "--threads", "1", "--prompts", "40"];
            var r = CliRunner.Run(root, ["icl", "--out-dir", "out", .. tiny]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.True(File.Exists(Path.Combine(root, "out", "checkpoint", "model.safetensors")));
            var lines = r.Stdout.Split('\n').Where(l => l.StartsWith("k = ", StringComparison.Ordinal)).ToList();
            Assert.Equal(["k =  0", "k =  1", "k =  2", "k =  4", "k =  8", "k = 16"], lines.Select(l => l[..6]));

            var png = File.ReadAllBytes(Path.Combine(root, "out", "icl.png"));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
            Assert.Equal((900, 720), (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20))));
            string json = File.ReadAllText(Path.Combine(root, "out", "icl.json"));
            using var doc = JsonDocument.Parse(json);
            var points = doc.RootElement.GetProperty("points").EnumerateArray().ToList();
            Assert.Equal([0, 1, 2, 4, 8, 16], points.Select(p => p.GetProperty("shots").GetInt32()));
            foreach (var key in new[] { "accuracy", "control_accuracy", "any_query_accuracy", "any_query_shown" })
                Assert.All(points, p => Assert.InRange(p.GetProperty(key).GetDouble(), 0, 1));
            Assert.Equal(1.0 / 26, doc.RootElement.GetProperty("chance").GetDouble(), 12);
            Assert.Equal(8, File.ReadAllLines(Path.Combine(root, "out", "icl.md")).Count(l => l.StartsWith('|')));

            // The checkpoint alone, with the same prompts, gives the same numbers.
            var again = CliRunner.Run(root, "icl", "--checkpoint", "out", "--out-dir", "eval", "--prompts", "40", "--threads", "1");
            Assert.True(again.ExitCode == 0, again.Stderr);
            using var doc2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "eval", "icl.json")));
            Assert.Equal(points.Select(p => p.GetProperty("accuracy").GetDouble()),
                doc2.RootElement.GetProperty("points").EnumerateArray().Select(p => p.GetProperty("accuracy").GetDouble()));

            // `eval` draws the cipher sequences too: val is the held-out ciphers.
            var loss = CliRunner.Run(root, "eval", "--checkpoint", "out", "--data", "synthetic:substitution-cipher", "--eval-iters", "2", "--batch-size", "4", "--threads", "1");
            Assert.True(loss.ExitCode == 0, loss.Stderr);
            Assert.StartsWith("val loss ", loss.Stdout.Trim().Split('\n')[^1]);

            // Training options with --checkpoint are refused in one line, changing nothing.
            string before = CliRunner.Fingerprint(root);
            var bad = CliRunner.Run(root, "icl", "--checkpoint", "out", "--max-iters", "5");
            Assert.Equal(1, bad.ExitCode);
            Assert.StartsWith("error: --checkpoint evaluates a trained model; --max-iters", bad.Stderr);
            Assert.Single(bad.Stderr.Trim().Split('\n'));
            Assert.Equal(before, CliRunner.Fingerprint(root));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
