using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Text;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Tensors;
using Sharpformer.Training;
using Sharpformer.Benchmarking;
using ScottPlot;
using Spectre.Console;

namespace Sharpformer.Cli.Commands;

/// <summary>`bench`: training and sampling speed of a config on this machine, as a table or one JSON object.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var settings = new TrainingOptions(includeRunSettings: false);
        var steps = new Option<int>("--steps") { Description = "Timed training steps (1 to 1,048,576)", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps, 0 to 1,048,576 (warm-up also lasts at least 2 s)", DefaultValueFactory = _ => 3 };
        var vocab = new Option<int>("--vocab-size") { Description = "Vocabulary of the synthetic tokens when no --data is given (1 to 65,536)", DefaultValueFactory = _ => 65 };
        var sampleTokens = new Option<int>("--sample-tokens") { Description = $"Tokens sampled for the sampling figure (0 to {Generation.SamplingOptions.MaxNewTokensLimit:N0})", DefaultValueFactory = _ => 500 };
        var sampleStreams = new Option<int>("--sample-streams") { Description = $"Samples decoded together for the sampling figure, 1 to {Generation.Sampler.MaxStreams} (tokens/s over all of them)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (for scripts)" };
        var profile = new Option<bool>("--profile") { Description = "Also time each kernel family and print where a training step's time goes" };
        var sweep = new Option<string?>("--sweep") { Description = "block-size: time attention and a training step, and measure the step's memory, as the context grows" };
        sweep.AcceptOnlyFromAmong("block-size");
        var lengths = new Option<string>("--lengths") { Description = "Context lengths for --sweep, comma-separated", DefaultValueFactory = _ => "64,128,256,512,1024,2048" };
        var sweepOut = new Option<string>("--sweep-out") { Description = "Folder for sweep.png and sweep.json", DefaultValueFactory = _ => "bench-sweep" };
        var sweepPeer = new Option<string?>("--sweep-peer") { Description = "The PyTorch twin's points (bench/peers/torch_gpt.py --sweep --json) to draw and tabulate beside ours (bench/sweep.sh)" };
        var command = new Command("bench", "Measure training tokens/s, GFLOP/s and fraction of the machine's peak, allocation, memory and sampling speed") { steps, warmup, vocab, sampleTokens, sampleStreams, json, profile, sweep, lengths, sweepOut, sweepPeer };
        settings.AddTo(command);
        command.SetAction(r => Cli.Run(() =>
        {
            int n = r.GetValue(steps), w = r.GetValue(warmup);
            Settings.InRange(n, 1, 1 << 20, "steps");
            Settings.InRange(w, 0, 1 << 20, "warmup");
            Settings.InRange(r.GetValue(vocab), 1, ushort.MaxValue + 1, "vocab-size");
            Settings.InRange(r.GetValue(sampleTokens), 0, Generation.SamplingOptions.MaxNewTokensLimit, "sample-tokens");
            Settings.InRange(r.GetValue(sampleStreams), 1, Generation.Sampler.MaxStreams, "sample-streams");
            var resolved = settings.Resolve(r, fallback: Presets.Get("shakespeare-char-baby"));
            var config = resolved.Run;
            bool asJson = r.GetValue(json);
            if (r.GetValue(sweep) is not null)
                return Sweep(resolved, r.GetValue(lengths)!, r.GetValue(sweepOut)!, r.GetValue(sweepPeer), asJson);
            Action<string>? progress = asJson ? null : s => Console.Error.WriteLine(s);
            // With --json, stdout holds the JSON alone: what preparing a missing data folder prints goes to stderr.
            var stdout = Console.Out;
            if (asJson) Console.SetOut(Console.Error);
            ModelConfig shape;
            BenchmarkResult result;
            try
            {
                (shape, result) = resolved.Model is GptConfig gptShape
                    ? BenchGpt(r, command, gptShape, config, vocab, steps: n, warmup: w, progress, profile, sampleTokens, sampleStreams)
                    : BenchOnData(r, resolved.Model, config, steps: n, warmup: w, progress, profile);
            }
            finally { Console.SetOut(stdout); }
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.BenchmarkResult));
                return Cli.Ok;
            }
            var table = new Table().AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
            table.AddRow("config", shape is GptConfig g
                ? $"{g.NLayer} layers, {g.NHead} heads, {g.NEmbd} embd, block {config.BlockSize}, batch {config.BatchSize} x {config.GradientAccumulationSteps}"
                : $"{shape.Kind}, batch {config.BatchSize} x {config.GradientAccumulationSteps}");
            table.AddRow("parameters", $"{result.Parameters:N0}");
            table.AddRow("threads, SIMD path", $"{result.Threads}, {result.Simd}");
            table.AddRow("training", shape is VitConfig
                ? $"{result.MsPerStep:F2} ms/step, {result.TrainExamplesPerS:N0} images/s"
                : $"{result.MsPerStep:F2} ms/step, {result.TrainTokensPerS:N0} tokens/s");
            table.AddRow("processor time", $"{result.CpuMsPerStep:F2} ms/step (all threads)");
            table.AddRow("achieved", $"{result.Gflops:F1} GFLOP/s = {result.PeakFraction:P1} of the measured peak {result.PeakGflops:F0} GFLOP/s");
            table.AddRow("allocated per step", $"{result.AllocBytesPerStep / 1024:N1} KB (managed)");
            table.AddRow("peak working set", $"{result.PeakWorkingSetBytes / 1048576.0:N0} MB");
            if (result.SampleTokensPerS > 0)
                table.AddRow($"sampling (KV cache, {result.SampleStreams} stream{(result.SampleStreams > 1 ? "s" : "")})", $"{result.SampleTokensPerS:N0} tokens/s");
            AnsiConsole.Write(table);
            if (result.ProfileMsPerStep is { } kernels)
            {
                var split = new Table().AddColumn("kernel").AddColumn(new TableColumn("ms/step").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
                foreach (var (name, ms) in kernels.OrderByDescending(k => k.Value))
                    split.AddRow(name, $"{ms:F2}", $"{ms / result.MsPerStep:P1}");
                AnsiConsole.Write(split);
            }
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>A GPT on the named data folder's tokens, or on synthetic tokens when none was named (no download needed).</summary>
    static (ModelConfig, BenchmarkResult) BenchGpt(ParseResult r, Command command, GptConfig gpt, RunSettings config, Option<int> vocab,
        int steps, int warmup, Action<string>? progress, Option<bool> profile, Option<int> sampleTokens, Option<int> sampleStreams)
    {
        bool realData = r.GetResult(command.Options.First(o => o.Name == "--data")) is { Implicit: false };
        using var data = realData ? Dataset.Open(config.Data) : null;
        int vocabSize = data is null ? r.GetValue(vocab) : data.Tokenizer.ModelVocabSize();
        Settings.InRange(vocabSize, 1, ushort.MaxValue + 1, "vocab-size");
        ITokenSource tokens = data is null ? Synthetic(vocabSize, config.Seed) : data.Train;
        var shape = gpt with { VocabSize = vocabSize };
        var result = Benchmark.Run(shape.Create(config.Seed), config, new LanguageModelBatches(tokens, config.BatchSize, config.BlockSize), steps, warmup,
            r.GetValue(sampleTokens), progress, r.GetValue(profile), r.GetValue(sampleStreams));
        return (shape, result);
    }

    /// <summary>
    /// Any other model trains on its real data (BERT's masked sequences, translation pairs, images): the batches'
    /// lengths and padding are what make its speed, so synthetic ones would mislead. The preset's folder is prepared on first use, as by `train`.
    /// </summary>
    static (ModelConfig, BenchmarkResult) BenchOnData(ParseResult r, ModelConfig model, RunSettings config, int steps, int warmup,
        Action<string>? progress, Option<bool> profile)
    {
        using var data = Tasks.TrainingData.Open(config.Data);
        var shape = data.Adapt(model);
        shape.Validate();
        var result = Benchmark.Run(shape.Create(config.Seed), config, data.TrainBatches(config), steps, warmup, 0, progress, r.GetValue(profile));
        return (shape, result);
    }

    /// <summary>`--sweep block-size`: attention's O(T²) time and the step's O(T) memory, as a table, sweep.json and sweep.png.</summary>
    static int Sweep(ResolvedRun resolved, string lengthList, string folder, string? peerFile, bool asJson)
    {
        if (resolved.Model is not GptConfig shape) throw new ArgumentException("--sweep block-size measures GPT presets.");
        var peer = peerFile is null ? [] : ReadPeer(peerFile);
        var lengths = lengthList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.TryParse(x, out int v) ? v : throw new ArgumentException($"--lengths: '{x}' is not a whole number.")).ToArray();
        if (lengths.Length < 2) throw new ArgumentException("--lengths needs at least two context lengths.");
        foreach (int t in lengths) Settings.InRange(t, 1, 1 << 16, "a --lengths value");
        var points = ContextSweep.Run(shape, resolved.Run, lengths, progress: asJson ? null : s => Console.Error.WriteLine(s));
        var (a, b) = ContextSweep.FitQuadratic(points.Select(p => ((double)p.T, p.AttentionMs)).ToList());
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "sweep.json"), JsonSerializer.Serialize(points.ToList(), BenchJsonContext.Default.ListContextSweepPoint));
        DrawSweep(points, peer, a, b, Path.Combine(folder, "sweep.png"));
        if (asJson)
        {
            Console.WriteLine(JsonSerializer.Serialize(points.ToList(), BenchJsonContext.Default.ListContextSweepPoint));
            return Cli.Ok;
        }
        var table = new Table().AddColumn("T").AddColumn(new TableColumn("attention fwd+bwd (ms, all layers)").RightAligned())
            .AddColumn(new TableColumn("training step (ms)").RightAligned()).AddColumn(new TableColumn("step memory (MB)").RightAligned())
            .AddColumn(new TableColumn("materialised P (MB)").RightAligned());
        if (peer.Count > 0)
            table.AddColumn(new TableColumn("twin attention (ms)").RightAligned()).AddColumn(new TableColumn("twin step (ms)").RightAligned())
                .AddColumn(new TableColumn("twin step memory (MB)").RightAligned());
        foreach (var p in points)
        {
            string[] row = [$"{p.T}", $"{p.AttentionMs:F2}", $"{p.StepMs:F1}", $"{p.StepPeakBytes / 1048576.0:F1}", $"{p.NaiveAttentionBytes / 1048576.0:F1}"];
            if (peer.Count > 0)
                row = peer.FirstOrDefault(x => x.T == p.T) is { } twin
                    ? [.. row, $"{twin.AttentionMs:F2}", $"{twin.StepMs:F1}", $"{twin.StepPeakBytes / 1048576.0:F1}"]
                    : [.. row, "-", "-", "-"];
            table.AddRow(row);
        }
        AnsiConsole.Write(table);
        Console.WriteLine($"attention ≈ {a:E3}·T² + {b:E3}·T ms ({Sharpformer.Kernels.Simd.Path}); plot in {Path.Combine(folder, "sweep.png")}");
        return Cli.Ok;
    }

    /// <summary>The twin's sweep points, as bench/peers/torch_gpt.py --sweep --json writes them (the same fields as ours).</summary>
    static List<ContextSweepPoint> ReadPeer(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"The twin's sweep points '{file}' do not exist.");
        var points = JsonSerializer.Deserialize(File.ReadAllText(file), BenchJsonContext.Default.ListContextSweepPoint);
        if (points is null || points.Count == 0 || points.Any(p => p.T < 1 || p.StepPeakBytes < 0 || !double.IsFinite(p.StepMs)))
            throw new InvalidDataException($"'{file}' holds no sweep points (a JSON list of {{t, attention_ms, step_ms, step_peak_bytes, naive_attention_bytes}}).");
        return points;
    }

    static void DrawSweep(IReadOnlyList<ContextSweepPoint> points, IReadOnlyList<ContextSweepPoint> peer, double a, double b, string path)
    {
        double[] tp = peer.Select(p => (double)p.T).ToArray();
        double[] t = points.Select(p => (double)p.T).ToArray();
        var multiplot = new ScottPlot.Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(1, 2);
        var time = multiplot.GetPlot(0);
        var measured = time.Add.Scatter(t, points.Select(p => p.AttentionMs).ToArray());
        measured.LegendText = "attention fwd+bwd (measured)";
        var fit = time.Add.ScatterLine(t, t.Select(x => a * x * x + b * x).ToArray());
        fit.LegendText = $"fit {a:E2}·T² + {b:E2}·T";
        var linear = time.Add.ScatterLine(t, t.Select(x => points[^1].AttentionMs * x / t[^1]).ToArray());
        linear.LegendText = "∝ T (for comparison)";
        linear.LinePattern = ScottPlot.LinePattern.Dashed;
        var step = time.Add.Scatter(t, points.Select(p => p.StepMs).ToArray());
        step.LegendText = "whole training step";
        if (peer.Count > 0)
        {
            var twinAttention = time.Add.Scatter(tp, peer.Select(p => p.AttentionMs).ToArray());
            twinAttention.LegendText = "PyTorch twin: materialised attention fwd+bwd (measured)";
            var twinStep = time.Add.Scatter(tp, peer.Select(p => p.StepMs).ToArray());
            twinStep.LegendText = "PyTorch twin: whole training step";
        }
        time.Title("Time against context length");
        time.XLabel("context length T");
        time.YLabel("ms");
        time.ShowLegend(ScottPlot.Alignment.UpperLeft);
        var memory = multiplot.GetPlot(1);
        var ours = memory.Add.Scatter(t, points.Select(p => p.StepPeakBytes / 1048576.0).ToArray());
        ours.LegendText = "training step (measured, flash-style)";
        var naive = memory.Add.Scatter(t, points.Select(p => (p.StepPeakBytes + p.NaiveAttentionBytes) / 1048576.0).ToArray());
        naive.LegendText = "ours + [H, T, T] per layer (computed)";
        naive.LinePattern = ScottPlot.LinePattern.Dashed;
        if (peer.Count > 0)
        {
            var twin = memory.Add.Scatter(tp, peer.Select(p => p.StepPeakBytes / 1048576.0).ToArray());
            twin.LegendText = "PyTorch twin, materialised softmax(QKᵀ) (measured)";
        }
        memory.Title("Memory against context length");
        memory.XLabel("context length T");
        memory.YLabel("MB");
        memory.ShowLegend(ScottPlot.Alignment.UpperLeft);
        multiplot.SavePng(path, 1400, 560);
    }

    static ArrayTokenSource Synthetic(int vocab, int seed)
    {
        var rng = new Rng((ulong)seed);
        var tokens = new int[1 << 20];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(vocab);
        return new ArrayTokenSource(tokens);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BenchmarkResult))]
[JsonSerializable(typeof(List<ContextSweepPoint>))]
partial class BenchJsonContext : JsonSerializerContext;
