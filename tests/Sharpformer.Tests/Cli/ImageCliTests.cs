using StbImageWriteSharp;
using Sharpformer.Data;
using Sharpformer.Training;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// The image path end to end through the real program: prepare a folder of PNGs, train a tiny ViT, eval with a
/// confusion matrix, predict one file; and the bad inputs of that path, each one error line that writes nothing.
/// </summary>
public sealed class ImageCliTests : IClassFixture<ImageCliTests.Run>
{
    public sealed class Run : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("sf-vit-cli-").FullName;
        public CliRunner.Result Prepare { get; }
        public CliRunner.Result Train { get; }

        public Run()
        {
            // 16×16 grey PNGs: "top" has its upper half bright, "bottom" its lower half, both with noise.
            var random = new Random(5);
            foreach (var (name, top) in new[] { ("top", true), ("bottom", false) })
                for (int i = 0; i < 12; i++)
                {
                    var pixels = new byte[16 * 16];
                    for (int y = 0; y < 16; y++)
                        for (int x = 0; x < 16; x++)
                            pixels[y * 16 + x] = (byte)((y < 8) == top ? 200 + random.Next(56) : random.Next(60));
                    WritePng(Path.Combine(Root, "pics", name, $"{i}.png"), pixels, 16, 16);
                }
            WritePng(Path.Combine(Root, "one", "only", "0.png"), new byte[16 * 16], 16, 16);
            File.WriteAllText(Path.Combine(Root, "tiny.json"), """
                {
                  "model": { "kind": "vit", "patch_size": 7, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32 },
                  "data": "data", "out-dir": "out", "max-iters": 6, "eval-interval": 3, "eval-iters": 1, "batch-size": 8,
                  "gradient-accumulation-steps": 1, "warmup-iters": 1, "lr-decay-iters": 6, "learning-rate": 0.003, "threads": 1
                }
                """);
            Prepare = CliRunner.Run(Root, "prepare", "images", "--input", "pics", "--size", "14", "--channels", "1", "--out", "data", "--val-fraction", "0.25");
            Train = CliRunner.Run(Root, "train", "--config", "tiny.json");
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    readonly Run run;

    public ImageCliTests(Run run) => this.run = run;

    internal static void WritePng(string path, byte[] grey, int height, int width)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var stream = File.Create(path);
        new ImageWriter().WritePng(grey, width, height, ColorComponents.Grey, stream);
    }

    [Fact]
    public void TheRunDecidesTheFoldersCropAndSaysWhatItApplies()
    {
        Assert.True(run.Prepare.ExitCode == 0, run.Prepare.Stderr);
        var data = new Sharpformer.Cli.Tasks.ImageData(Path.Combine(run.Root, "data"));
        var folder = data.Meta.Augmentation;
        Assert.True(folder.Padding > 0 && folder.HorizontalFlip);
        Assert.Equal(folder, data.Augmentation(new RunSettings()));
        Assert.Equal(new ImageAugmentation(0, true), data.Augmentation(new RunSettings { CropPadding = 0 }));
        Assert.Equal(new ImageAugmentation(3, true), data.Augmentation(new RunSettings { CropPadding = 3 }));
        Assert.Equal(ImageAugmentation.None, data.Augmentation(new RunSettings { Augment = false, CropPadding = 3 }));
        Assert.Contains($"augmentation: crop padding {folder.Padding}, horizontal flip", run.Train.Stdout);
        Assert.Contains("augmentation: horizontal flip", data.Describe(new RunSettings { CropPadding = 0 }));
    }

    [Fact]
    public void PrepareTrainEvalAndPredictWork()
    {
        Assert.True(run.Prepare.ExitCode == 0, run.Prepare.Stderr);
        Assert.Contains("2 classes, images [1, 14, 14], train 18, val 6", run.Prepare.Stdout);
        Assert.False(File.Exists(Path.Combine(run.Root, "data", "test.images")));
        Assert.True(run.Train.ExitCode == 0, run.Train.Stderr + run.Train.Stdout);
        Assert.Contains("val accuracy", run.Train.Stdout);
        Assert.True(File.Exists(Path.Combine(run.Root, "out", "checkpoint", "model.safetensors")));

        var eval = CliRunner.Run(run.Root, "eval", "--checkpoint", "out", "--data", "data");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Matches(@"val accuracy \d+\.\d\d ?% \(6 images, 2 classes\)", eval.Stdout);
        Assert.Contains("bottom", eval.Stdout);
        Assert.Contains("top", eval.Stdout);
        var png = File.ReadAllBytes(Path.Combine(run.Root, "out", "confusion_val.png"));
        Assert.Equal((byte)'P', png[1]);

        var exported = CliRunner.Run(run.Root, "convert", "--to-hf", "out", "--out", "hf");
        Assert.True(exported.ExitCode == 0, exported.Stderr);
        Assert.Contains("\"model_type\": \"vit\"", File.ReadAllText(Path.Combine(run.Root, "hf", "config.json")));
        var imported = CliRunner.Run(run.Root, "convert", "--from-hf", "hf", "--out", "back");
        Assert.True(imported.ExitCode == 0, imported.Stderr);
        var evalBack = CliRunner.Run(run.Root, "eval", "--checkpoint", "back", "--data", "data");
        Assert.Equal(eval.Stdout.Split('\n')[0], evalBack.Stdout.Split('\n')[0]); // the same accuracy line after the round trip
        foreach (var d in new[] { "hf", "back" }) Directory.Delete(Path.Combine(run.Root, d), recursive: true);

        var predict = CliRunner.Run(run.Root, "predict", "--checkpoint", "out", "--image", Path.Combine("pics", "top", "0.png"), "--top-k", "2");
        Assert.True(predict.ExitCode == 0, predict.Stderr);
        var lines = predict.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(["bottom", "top"], lines.Select(l => l.Split(' ')[0]).Order());
        double total = lines.Sum(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(total, 99.9, 100.1);
    }

    public static TheoryData<string, string[]> BadInputs => new()
    {
        { "holds a vit model", ["sample", "--checkpoint", "out", "--max-new-tokens", "5"] },
        { "no test split", ["eval", "--checkpoint", "out", "--data", "data", "--split", "test"] },
        { "one class", ["prepare", "images", "--input", "one", "--size", "14", "--out", "data2"] },
        { "needs --size", ["prepare", "images", "--input", "pics", "--out", "data2"] },
        { "needs --input DIR", ["prepare", "mnist", "--out", "data2"] },
        { "holds no PNG or JPEG", ["prepare", "images", "--input", "out", "--size", "14", "--out", "data2"] },
        { "cannot be read as a PNG or JPEG", ["predict", "--checkpoint", "out", "--image", "tiny.json"] },
        { "No checkpoint", ["predict", "--checkpoint", "nowhere", "--image", "tiny.json"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputEndsWithOneClearLineAndChangesNothing(string expected, string[] args)
    {
        Assert.Equal(0, run.Train.ExitCode);
        string before = CliRunner.Fingerprint(run.Root);
        var r = CliRunner.Run(run.Root, args);
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got:\n{r.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.Equal(before, CliRunner.Fingerprint(run.Root));
    }
}
