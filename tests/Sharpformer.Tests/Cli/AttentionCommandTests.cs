using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Nn;

namespace Sharpformer.Tests.Cli;

/// <summary>`attention` on a GPT checkpoint: valid PNGs of the expected size, JSON equal to the recorded kernel weights, and bad selections refused.</summary>
// The in-process forward pass must take the same SIMD path as the CLI process: run apart from the tests that flip it.
[Collection("Simd")]
public class AttentionCommandTests
{
    static readonly string Legacy = Path.Combine(AppContext.BaseDirectory, "TestData", "legacy-v1", "checkpoint");

    [Fact]
    public void WritesOnePngPerLayerAndTheWeightsTheModelComputes()
    {
        string root = Directory.CreateTempSubdirectory("sf-attention-").FullName;
        try
        {
            const string text = "ROMEO: to be or not";
            var r = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", text, "--out", "maps");
            Assert.True(r.ExitCode == 0, r.Stderr);
            foreach (int layer in new[] { 0, 1 })
            {
                var png = File.ReadAllBytes(Path.Combine(root, "maps", $"attention-layer-{layer}.png"));
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
                int width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), height = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
                Assert.Equal((2 * 426, 426), (width, height)); // 2 heads side by side, 160 + 14·19 pixels a cell
            }

            var (model, config) = Checkpoint.Load(Legacy);
            var gpt = (Gpt)model;
            int[] ids = config.Tokenizer.Create().Encode(text);
            var recorder = new AttentionRecorder();
            gpt.Eval();
            AttentionRecorder.Attach(gpt, recorder);
            using (Graph.NoGrad()) gpt.Logits(ids, 1, ids.Length).Dispose();

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "maps", "attention.json")));
            Assert.Equal(ids, json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
            var layers = json.RootElement.GetProperty("layers");
            Assert.Equal(2, layers.GetArrayLength());
            for (int l = 0; l < 2; l++)
            {
                var heads = layers[l].GetProperty("heads");
                for (int h = 0; h < 2; h++)
                    for (int q = 0; q < ids.Length; q++)
                    {
                        var row = heads[h][q].EnumerateArray().Select(e => e.GetSingle()).ToArray();
                        var expected = recorder.Maps[l].Row(0, h, q).ToArray();
                        for (int k = 0; k < row.Length; k++) Assert.Equal(expected[k], row[k], 6);
                        Assert.Equal(1.0, row.Sum(x => (double)x), 5);
                        Assert.All(row[(q + 1)..], v => Assert.Equal(0f, v)); // causal
                    }
            }

            // Out of range selections name the valid range; existing files are not replaced without --overwrite.
            var badLayer = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", text, "--out", "other", "--layer", "2");
            Assert.Equal(1, badLayer.ExitCode);
            Assert.Contains("layer must be between 0 and 1", badLayer.Stderr);
            var badHead = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", text, "--out", "other", "--head", "-1");
            Assert.Contains("head must be between 0 and 1", badHead.Stderr);
            Assert.False(Directory.Exists(Path.Combine(root, "other")));
            string before = CliRunner.Fingerprint(root);
            var again = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", "other text", "--out", "maps");
            Assert.Equal(1, again.ExitCode);
            Assert.Contains("--overwrite", again.Stderr);
            Assert.Equal(before, CliRunner.Fingerprint(root));

            // A text longer than the block size shows its last block.
            var longer = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", string.Concat(Enumerable.Repeat("to be or not ", 4)), "--out", "long", "--layer", "1", "--head", "0");
            Assert.True(longer.ExitCode == 0, longer.Stderr);
            Assert.Contains("longer than the model's block size 32: showing its last 32", longer.Stdout);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

/// <summary>`bench --sweep block-size`: a point per context length, memory growing linearly, and the plot.</summary>
public class ContextSweepTests
{
    [Fact]
    public void SweepWritesPointsAndAPlot()
    {
        string root = Directory.CreateTempSubdirectory("sf-sweep-").FullName;
        try
        {
            var r = CliRunner.Run(root, "bench", "--preset", "shakespeare-char-baby", "--sweep", "block-size", "--lengths", "16,32,64", "--threads", "2");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "bench-sweep", "sweep.json")));
            var points = json.RootElement.EnumerateArray().ToArray();
            Assert.Equal([16, 32, 64], points.Select(p => p.GetProperty("t").GetInt32()));
            long[] memory = points.Select(p => p.GetProperty("step_peak_bytes").GetInt64()).ToArray();
            Assert.True(memory[2] < 6 * memory[0], $"step memory should grow about linearly: {string.Join(", ", memory)}");
            Assert.Equal(4 * points[0].GetProperty("naive_attention_bytes").GetInt64(), points[1].GetProperty("naive_attention_bytes").GetInt64());
            Assert.True(new FileInfo(Path.Combine(root, "bench-sweep", "sweep.png")).Length > 1000);
            Assert.Equal((2.0, 3.0), Sharpformer.Benchmarking.ContextSweep.FitQuadratic([(1, 5), (2, 14), (3, 27)]));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
