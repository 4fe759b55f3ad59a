using System.Buffers.Binary;
using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Text;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// `attention` on every kind of model, as a real process: valid PNGs of the expected size, JSON equal to the weights
/// the kernel records in-process (itself checked against the naive softmax in <c>AttentionRecorderTests</c>), rows
/// summing to 1, the masks each model uses, ViT rollout, and bad input refused with one line.
/// </summary>
// The in-process forward passes must take the same SIMD path as the CLI process: run apart from the tests that flip it.
[Collection("Simd")]
public class AttentionCommandTests : IClassFixture<AttentionCommandTests.TinyModels>
{
    static readonly string Legacy = Path.Combine(AppContext.BaseDirectory, "TestData", "legacy-v1", "checkpoint");

    /// <summary>Tiny random BERT, translation and ViT checkpoints (and an image), made once for the class.</summary>
    public sealed class TinyModels : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("sf-attention-").FullName;
        public string Bert => Path.Combine(Root, "bert");
        public string Translator => Path.Combine(Root, "translate");
        public string Vit => Path.Combine(Root, "vit");
        public string Image => Path.Combine(Root, "image.png");

        public TinyModels()
        {
            string[] words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "king", "queen", "and", "of", "love", "death"];
            File.WriteAllLines(Path.Combine(Root, "vocab.txt"), words);
            var wordPiece = new WordPieceTokenizer(Path.Combine(Root, "vocab.txt"), new WordPieceSettings());
            var bert = new BertConfig { VocabSize = words.Length, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 16, MaxPositionEmbeddings = 8 }.Create();
            Checkpoint.Save(Bert, bert, wordPiece.Spec);
            wordPiece.Save(Bert);

            var bpe = SubwordTokenizer.FromVocabulary(BpeTrainer.Train(["open the file", "save the file", "close the window", "open the window"], 270));
            var seq2seq = new Seq2SeqConfig { VocabSize = bpe.VocabSize, DModel = 8, Heads = 2, EncoderLayers = 2, DecoderLayers = 2, FfnDim = 16, MaxLength = 12, Dropout = 0 }.Create();
            Checkpoint.Save(Translator, seq2seq, new Dictionary<string, TokenizerSpec> { ["source"] = bpe.Spec, ["target"] = bpe.Spec });

            var vit = new VitConfig { ImageSize = 8, PatchSize = 2, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 16 }.WithClasses(["a", "b", "c"]).Create();
            Checkpoint.Save(Vit, vit, new Dictionary<string, TokenizerSpec>());
            ImageCliTests.WritePng(Image, Enumerable.Range(0, 64).Select(i => (byte)(i * 4)).ToArray(), 8, 8);
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    readonly TinyModels tiny;

    public AttentionCommandTests(TinyModels tiny) => this.tiny = tiny;

    [Fact]
    public void GptWritesOnePngPerLayerAndTheWeightsTheModelComputes()
    {
        string root = Directory.CreateTempSubdirectory("sf-attention-gpt-").FullName;
        try
        {
            const string text = "ROMEO: to be or not";
            var r = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", text, "--out", "maps");
            Assert.True(r.ExitCode == 0, r.Stderr);
            foreach (int layer in new[] { 0, 1 })
                Assert.Equal((2 * 544, 544), PngSize(Path.Combine(root, "maps", $"attention-layer-{layer}.png"))); // 2 heads side by side, 240 + 16·19 pixels a cell

            var (model, config) = Checkpoint.Load(Legacy);
            var gpt = (Gpt)model;
            int[] ids = config.Tokenizer.Create().Encode(text);
            var maps = AttentionRecorder.Record(gpt, () => gpt.Logits(ids, 1, ids.Length));
            using var json = Json(root, "maps");
            Assert.Equal(ids, json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
            AssertLayers(json.RootElement.GetProperty("layers"), maps, ids.Length, ids.Length, causal: true);

            // Existing files are not replaced without --overwrite; with it only this command's files are.
            string before = CliRunner.Fingerprint(root);
            var again = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", "other text", "--out", "maps");
            AssertOneLineError(again, "--overwrite");
            Assert.Equal(before, CliRunner.Fingerprint(root));

            // A text longer than the block size shows its last block.
            var longer = CliRunner.Run(root, "attention", "--checkpoint", Legacy, "--text", string.Concat(Enumerable.Repeat("to be or not ", 4)), "--out", "long", "--layer", "1", "--head", "0");
            Assert.True(longer.ExitCode == 0, longer.Stderr);
            Assert.Contains("longer than the model's block size 32: showing its last 32", longer.Stdout);
            Assert.Equal((752, 752), PngSize(Path.Combine(root, "long", "attention-layer-1.png"))); // one head, 240 + 16·32
            Assert.False(File.Exists(Path.Combine(root, "long", "attention-layer-0.png")));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void BertShowsClsAndSepAndAttendsBothWays()
    {
        string out1 = Path.Combine(tiny.Root, "bert-maps");
        var r = CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Bert, "--text", "The king and the queen", "--out", out1);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(out1, "attention.json")));
        Assert.Equal(["[CLS]", "the", "king", "and", "the", "queen", "[SEP]"], json.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        int[] ids = json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var bert = (Bert)Checkpoint.Load(tiny.Bert).Model;
        var maps = AttentionRecorder.Record(bert, () => bert.HiddenStates(ids, default, [ids.Length], 1, ids.Length));
        AssertLayers(json.RootElement.GetProperty("layers"), maps, 7, 7, causal: false);
        Assert.Equal((800, 400), PngSize(Path.Combine(out1, "attention-layer-1.png"))); // 2 heads of 7 tokens: the smallest cell

        // Longer than the positions: the last pieces between [CLS] and [SEP].
        var longer = CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Bert, "--text", "the king and the queen of love and death", "--out", Path.Combine(tiny.Root, "bert-long"));
        Assert.True(longer.ExitCode == 0, longer.Stderr);
        Assert.Contains("9 word pieces, more than the model's 8 positions hold with [CLS] and [SEP]: showing its last 6", longer.Stdout);
        using var cut = JsonDocument.Parse(File.ReadAllText(Path.Combine(tiny.Root, "bert-long", "attention.json")));
        Assert.Equal(["[CLS]", "the", "queen", "of", "love", "and", "death", "[SEP]"], cut.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void TranslationShowsEncoderDecoderCrossAttentionAndTheAlignment()
    {
        string folder = Path.Combine(tiny.Root, "translate-maps");
        var r = CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Translator, "--source", "open the file", "--out", folder);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var (model, config) = Checkpoint.Load(tiny.Translator);
        var seq2seq = (Seq2Seq)model;
        int[] source = config.Tokenizers["source"].Create().Encode("open the file");
        int[] translation = seq2seq.Translate([source])[0];
        int[] inputs = [SubwordTokenizer.BosId, .. translation];
        inputs = inputs[..Math.Min(inputs.Length, 12)];

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "attention.json")));
        var root = json.RootElement;
        Assert.Equal(source, root.GetProperty("source_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(inputs, root.GetProperty("target_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(inputs.Length, root.GetProperty("produced_tokens").GetArrayLength());
        var maps = AttentionRecorder.Record(seq2seq, () => seq2seq.Logits(source, [source.Length], inputs, 1, source.Length, inputs.Length));
        int S = source.Length, T = inputs.Length;
        AssertLayers(root.GetProperty("encoder"), maps.Where(m => m.Block.StartsWith("encoder.", StringComparison.Ordinal)).ToList(), S, S, causal: false);
        AssertLayers(root.GetProperty("decoder_self"), maps.Where(m => m.Block.StartsWith("decoder.", StringComparison.Ordinal) && !m.Cross).ToList(), T, T, causal: true);
        var cross = maps.Where(m => m.Cross).ToList();
        AssertLayers(root.GetProperty("cross"), cross, T, S, causal: false);

        // The alignment is the mean of every layer's and head's cross-attention.
        var alignment = root.GetProperty("alignment");
        for (int t = 0; t < T; t++)
            for (int s = 0; s < S; s++)
                Assert.Equal(cross.Average(m => (m.Row(0, 0, t)[s] + m.Row(0, 1, t)[s]) / 2.0), alignment[t][s].GetDouble(), 6);
        static int Cell(int n) => Math.Clamp(240 + 16 * n, 400, 1000);
        Assert.Equal((Cell(Math.Max(S, T)), Cell(Math.Max(S, T))), PngSize(Path.Combine(folder, "alignment.png")));
        Assert.Equal((2 * Cell(Math.Max(S, T)), Cell(Math.Max(S, T))), PngSize(Path.Combine(folder, "cross-layer-1.png"))); // 2 heads
        Assert.Equal((2 * Cell(S), Cell(S)), PngSize(Path.Combine(folder, "encoder-layer-1.png")));
        Assert.Equal((2 * Cell(T), Cell(T)), PngSize(Path.Combine(folder, "decoder-layer-0.png")));
    }

    [Fact]
    public void VitDrawsClsOverThePatchesAndTheRollout()
    {
        string folder = Path.Combine(tiny.Root, "vit-maps");
        var r = CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Vit, "--image", tiny.Image, "--out", folder);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("prediction: ", r.Stdout);
        var vit = (Vit)Checkpoint.Load(tiny.Vit).Model;
        var pixels = ImageFolder.ReadImage(tiny.Image, 8, 8, 1);
        var normalised = new float[pixels.Length];
        ImageBatch.Normalize(pixels, normalised, 64, vit.Config.ImageMean, vit.Config.ImageStd);
        var maps = AttentionRecorder.Record(vit, () => vit.Logits(normalised, 1));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "attention.json")));
        var root = json.RootElement;
        Assert.Equal(17, root.GetProperty("tokens").GetArrayLength());
        Assert.Equal("[CLS]", root.GetProperty("tokens")[0].GetString());
        Assert.Equal([4, 4], root.GetProperty("patch_grid").EnumerateArray().Select(e => e.GetInt32()));
        AssertLayers(root.GetProperty("layers"), maps, 17, 17, causal: false);
        var rollout = AttentionRollout.Compute(maps);
        var written = root.GetProperty("rollout");
        for (int i = 0; i < 17; i++)
        {
            for (int j = 0; j < 17; j++) Assert.Equal(rollout[i, j], written[i][j].GetDouble(), 9);
            Assert.Equal(1.0, written[i].EnumerateArray().Sum(e => e.GetDouble()), 6);
        }
        Assert.Equal((3 * 400, 400), PngSize(Path.Combine(folder, "attention-layer-0.png"))); // 2 heads and their mean
        Assert.Equal((2 * 400, 400), PngSize(Path.Combine(folder, "rollout.png")));            // the image and the rollout
    }

    [Fact]
    public void BadInputEndsWithOneLineAndWritesNothing()
    {
        string bad = Path.Combine(tiny.Root, "bad");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", Legacy, "--image", tiny.Image, "--out", bad), "reads text: give --text");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", Legacy, "--source", "to be", "--out", bad), "--source is for translation models");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Vit, "--text", "a cat", "--out", bad), "looks at images: give --image");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Vit, "--image", "missing.png", "--out", bad), "The image 'missing.png' does not exist");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Bert, "--text", "the king", "--layer", "2", "--out", bad), "layer must be between 0 and 1");
        AssertOneLineError(CliRunner.Run(tiny.Root, "attention", "--checkpoint", tiny.Translator, "--source", "open", "--head", "-1", "--out", bad), "head must be between 0 and 1");
        Assert.False(Directory.Exists(bad));
    }

    /// <summary>Every layer's heads in the JSON equal the recorded maps, rows sum to 1, and causal rows see no later key.</summary>
    static void AssertLayers(JsonElement layers, IReadOnlyList<AttentionRecorder.Map> maps, int queries, int keys, bool causal)
    {
        Assert.Equal(maps.Count, layers.GetArrayLength());
        for (int l = 0; l < maps.Count; l++)
        {
            var heads = layers[l].GetProperty("heads");
            Assert.Equal(maps[l].Block, layers[l].GetProperty("block").GetString());
            Assert.Equal(maps[l].Heads, heads.GetArrayLength());
            for (int h = 0; h < maps[l].Heads; h++)
            {
                Assert.Equal(queries, heads[h].GetArrayLength());
                for (int q = 0; q < queries; q++)
                {
                    var row = heads[h][q].EnumerateArray().Select(e => e.GetSingle()).ToArray();
                    Assert.Equal(keys, row.Length);
                    var expected = maps[l].Row(0, h, q);
                    for (int k = 0; k < keys; k++) Assert.Equal(expected[k], row[k], 6);
                    Assert.Equal(1.0, row.Sum(x => (double)x), 5);
                    if (causal) Assert.All(row[(q + 1)..], v => Assert.Equal(0f, v));
                    else Assert.All(row, v => Assert.True(v > 0));
                }
            }
        }
    }

    static JsonDocument Json(string root, string folder) => JsonDocument.Parse(File.ReadAllText(Path.Combine(root, folder, "attention.json")));

    /// <summary>A PNG's size from its IHDR chunk, after checking the signature.</summary>
    static (int Width, int Height) PngSize(string path)
    {
        var png = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
    }

    static void AssertOneLineError(CliRunner.Result r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), $"stderr: {r.Stderr}");
        Assert.Contains(expected, lines[0]);
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
            // The PyTorch twin's points as bench/peers/torch_gpt.py --sweep --json writes them (made up here: the test needs no Python).
            File.WriteAllText(Path.Combine(root, "twin.json"), """
                [{"t": 16, "attention_ms": 1.5, "step_ms": 20.0, "step_peak_bytes": 3000000, "naive_attention_bytes": 16384},
                 {"t": 64, "attention_ms": 9.5, "step_ms": 30.0, "step_peak_bytes": 7000000, "naive_attention_bytes": 262144}]
                """);
            var r = CliRunner.Run(root, "bench", "--preset", "shakespeare-char-baby", "--sweep", "block-size", "--lengths", "16,32,64", "--threads", "2", "--sweep-peer", "twin.json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("twin", r.Stdout);
            Assert.Contains("6.7", r.Stdout); // the twin's 7,000,000 bytes at T = 64, in MB
            var missing = CliRunner.Run(root, "bench", "--sweep", "block-size", "--sweep-peer", "nowhere.json");
            Assert.Equal(1, missing.ExitCode);
            Assert.StartsWith("error: The twin's sweep points 'nowhere.json' do not exist.", missing.Stderr);
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
