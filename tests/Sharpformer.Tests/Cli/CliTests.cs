namespace Sharpformer.Tests.Cli;

/// <summary>
/// The command line as a user meets it: a real process on a tiny corpus that prepares, trains, saves,
/// samples, evaluates and resumes; and every kind of bad input ends with one line, a non-zero exit code,
/// no stack trace and no file changed.
/// </summary>
public sealed class CliTests : IClassFixture<CliTests.TrainedFolder>
{
    /// <summary>One small trained run shared by the tests (training is the slow part).</summary>
    public sealed class TrainedFolder : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("sf-cli-").FullName;
        public string Data => Path.Combine(Root, "data");
        public string Out => Path.Combine(Root, "out");
        public CliRunner.Result Prepare { get; }
        public CliRunner.Result Train { get; }

        public TrainedFolder()
        {
            string corpus = string.Concat(Enumerable.Repeat("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n", 60));
            File.WriteAllText(Path.Combine(Root, "input.txt"), corpus);
            Prepare = CliRunner.Run(Root, "prepare", "text", "--input", "input.txt", "--out", "data");
            Train = CliRunner.Run(Root, Tiny("--max-iters", "8", "--out-dir", "out"));
        }

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    /// <summary>A tiny training run's arguments; <paramref name="overrides"/> (option, value pairs) replace or extend them.</summary>
    public static string[] Tiny(params string[] overrides)
    {
        var args = TinyRun.ToList();
        for (int i = 0; i < overrides.Length; i += 2)
        {
            int at = args.IndexOf(overrides[i]);
            if (at >= 0) args[at + 1] = overrides[i + 1];
            else args.AddRange([overrides[i], overrides[i + 1]]);
        }
        return [.. args];
    }

    static readonly string[] TinyRun =
    [
        "train", "--data", "data", "--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "16",
        "--batch-size", "4", "--eval-interval", "4", "--eval-iters", "2", "--log-interval", "1", "--threads", "2",
        "--warmup-iters", "2", "--lr-decay-iters", "8", "--learning-rate", "3e-3", "--always-save-checkpoint", "true",
        "--dropout", "0.1", "--sample-tokens", "20",
    ];

    readonly TrainedFolder run;

    public CliTests(TrainedFolder run) => this.run = run;

    [Fact]
    public void PrepareTrainSampleEvalAndInfoWork()
    {
        Assert.True(run.Prepare.ExitCode == 0, run.Prepare.Stderr);
        Assert.Contains("vocabulary", run.Prepare.Stdout);
        Assert.True(run.Train.ExitCode == 0, run.Train.Stderr);
        Assert.Contains("iter 8: loss", run.Train.Stdout);
        Assert.Contains("val loss", run.Train.Stdout);
        Assert.True(File.Exists(Path.Combine(run.Out, "checkpoint", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run.Out, "loss.png")));
        var metrics = File.ReadAllLines(Path.Combine(run.Out, "metrics.jsonl"));
        Assert.Equal(9 + 3, metrics.Length); // 9 iterations logged (0..8) and 3 evaluations (0, 4, 8)

        var sample = CliRunner.Run(run.Root, "sample", "--checkpoint", "out", "--start", "Speak", "--num-samples", "2", "--max-new-tokens", "30", "--seed", "5");
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.Equal(2, sample.Stdout.Split("---------------").Length - 1);
        Assert.StartsWith("Speak", sample.Stdout);
        var again = CliRunner.Run(run.Root, "sample", "--checkpoint", "out", "--start", "Speak", "--num-samples", "2", "--max-new-tokens", "30", "--seed", "5");
        Assert.Equal(sample.Stdout, again.Stdout);
        // The samples run together; the second is the one a single sample with the next seed gives.
        var second = CliRunner.Run(run.Root, "sample", "--checkpoint", "out", "--start", "Speak", "--num-samples", "1", "--max-new-tokens", "30", "--seed", "6");
        Assert.Equal(sample.Stdout.Split("---------------")[1].TrimStart('\n'), second.Stdout.Split("---------------")[0]);

        var eval = CliRunner.Run(run.Root, "eval", "--checkpoint", "out", "--data", "data", "--eval-iters", "3", "--batch-size", "4", "--block-size", "16");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        Assert.Matches(@"val loss \d+\.\d{4}", eval.Stdout);

        var info = CliRunner.Run(run.Root, "info", "--checkpoint", "out");
        Assert.True(info.ExitCode == 0, info.Stderr);
        Assert.Contains("iteration 8", info.Stdout);
    }

    [Fact]
    public void BenchPrintsEveryFigureAsJson()
    {
        var r = CliRunner.Run(run.Root, "bench", "--json", "--steps", "2", "--warmup", "1", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
            "--block-size", "16", "--batch-size", "2", "--sample-tokens", "30", "--sample-streams", "3", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var json = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        foreach (var key in new[] { "train_tokens_per_s", "ms_per_step", "gflops", "peak_gflops", "peak_fraction", "peak_working_set_bytes", "sample_tokens_per_s" })
            Assert.True(root.GetProperty(key).GetDouble() > 0, key);
        Assert.True(root.GetProperty("alloc_bytes_per_step").GetDouble() >= 0);
        Assert.InRange(root.GetProperty("peak_fraction").GetDouble(), 0, 1.5);
        Assert.Equal(3, root.GetProperty("sample_streams").GetInt32());
        Assert.Contains(root.GetProperty("simd").GetString(), new[] { "Vector512", "Vector256" });
    }

    [Fact]
    public void ResumeContinuesTheSameRunBitForBit()
    {
        string root = Directory.CreateTempSubdirectory("sf-resume-").FullName;
        try
        {
            File.Copy(Path.Combine(run.Root, "input.txt"), Path.Combine(root, "input.txt"));
            Assert.Equal(0, CliRunner.Run(root, "prepare", "text", "--input", "input.txt", "--out", "data").ExitCode);
            var whole = CliRunner.Run(root, Tiny("--max-iters", "8", "--out-dir", "whole"));
            var half = CliRunner.Run(root, Tiny("--max-iters", "4", "--out-dir", "split"));
            var rest = CliRunner.Run(root, Tiny("--max-iters", "8", "--out-dir", "split", "--init-from", "resume"));
            Assert.True(whole.ExitCode == 0 && half.ExitCode == 0 && rest.ExitCode == 0, whole.Stderr + half.Stderr + rest.Stderr);
            Assert.Contains("resuming", rest.Stdout);

            static string[] Losses(string stdout) => stdout.Split('\n').Where(l => l.StartsWith("iter ")).Select(l => l[..l.IndexOf(", time")]).ToArray();
            Assert.Equal(Losses(whole.Stdout)[4..], Losses(rest.Stdout));
            foreach (var file in new[] { "model.safetensors", "trainer.safetensors" })
                Assert.Equal(File.ReadAllBytes(Path.Combine(root, "whole", "checkpoint", file)), File.ReadAllBytes(Path.Combine(root, "split", "checkpoint", file)));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    public static TheoryData<string, string[]> BadInputs => new()
    {
        { "does not exist", ["train", "--data", "missing-folder", "--max-iters", "1", "--out-dir", "out"] },
        { "divisible", Tiny("--n-head", "3", "--out-dir", "out") },
        { "batch-size", Tiny("--batch-size", "0", "--out-dir", "out") },
        { "batch-size", Tiny("--batch-size", "-4", "--out-dir", "out") },
        { "Unknown preset", ["train", "--preset", "shakespeare-huge"] },
        { "--not-an-option", ["train", "--not-an-option", "3"] },
        { "block-size + 1", Tiny("--block-size", "1000", "--out-dir", "out") },
        { "not in the model's vocabulary", ["sample", "--checkpoint", "out", "--start", "Zebra €"] },
        { "No checkpoint", ["sample", "--checkpoint", "nowhere"] },
        { "sample-streams", ["bench", "--sample-streams", "17"] },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputEndsWithOneClearLineAndChangesNothing(string expected, string[] args)
    {
        string before = CliRunner.Fingerprint(run.Root);
        var r = CliRunner.Run(run.Root, args);
        CliRunner.AssertOneLineError(r, expected);
        Assert.Equal(before, CliRunner.Fingerprint(run.Root));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("corrupt")]
    [InlineData("newer")]
    public void DamagedCheckpointIsRejectedClearly(string damage)
    {
        string root = Directory.CreateTempSubdirectory("sf-damage-").FullName;
        try
        {
            string ckpt = Path.Combine(root, "checkpoint");
            Directory.CreateDirectory(ckpt);
            foreach (var f in Directory.GetFiles(Path.Combine(run.Out, "checkpoint"))) File.Copy(f, Path.Combine(ckpt, Path.GetFileName(f)));
            string model = Path.Combine(ckpt, "model.safetensors");
            string expected;
            switch (damage)
            {
                case "truncated":
                    File.WriteAllBytes(model, File.ReadAllBytes(model)[..^100]);
                    expected = "truncated";
                    break;
                case "corrupt":
                    var bytes = File.ReadAllBytes(model);
                    for (int i = 8; i < 40; i++) bytes[i] = (byte)'#';
                    File.WriteAllBytes(model, bytes);
                    expected = "corrupt";
                    break;
                default:
                    string config = Path.Combine(ckpt, "config.json");
                    File.WriteAllText(config, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(config), "\"format-version\": \\d+", "\"format-version\": 99"));
                    expected = "newer Sharpformer";
                    break;
            }
            string before = CliRunner.Fingerprint(root);
            CliRunner.AssertOneLineError(CliRunner.Run(root, "sample", "--checkpoint", "checkpoint", "--max-new-tokens", "5"), expected);
            CliRunner.AssertOneLineError(CliRunner.Run(root, "info", "--checkpoint", "checkpoint"), expected);
            Assert.Equal(before, CliRunner.Fingerprint(root));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
