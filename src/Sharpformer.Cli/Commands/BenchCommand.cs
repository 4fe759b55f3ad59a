using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Text;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Tensors;
using Sharpformer.Training;
using Sharpformer.Benchmarking;
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
        var command = new Command("bench", "Measure training tokens/s, GFLOP/s and fraction of the machine's peak, allocation, memory and sampling speed") { steps, warmup, vocab, sampleTokens, sampleStreams, json, profile };
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
            // Real tokens when a data folder was named explicitly; synthetic otherwise (no download needed).
            bool realData = r.GetResult(command.Options.First(o => o.Name == "--data")) is { Implicit: false };
            using var data = realData ? Dataset.Open(config.Data) : null;
            int vocabSize = data is null ? r.GetValue(vocab) : data.Tokenizer.ModelVocabSize();
            Settings.InRange(vocabSize, 1, ushort.MaxValue + 1, "vocab-size");
            ITokenSource tokens = data is null ? Synthetic(vocabSize, config.Seed) : data.Train;
            Action<string>? progress = asJson ? null : s => Console.Error.WriteLine(s);
            var shape = resolved.Model is GptConfig gpt ? gpt with { VocabSize = vocabSize } : resolved.Model;
            shape.Validate();
            var model = shape.Create(config.Seed);
            var result = Benchmark.Run(model, config, new LanguageModelBatches(tokens, config.BatchSize, config.BlockSize), n, w,
                r.GetValue(sampleTokens), progress, r.GetValue(profile), r.GetValue(sampleStreams));
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
            table.AddRow("training", $"{result.MsPerStep:F2} ms/step, {result.TrainTokensPerS:N0} tokens/s");
            table.AddRow("achieved", $"{result.Gflops:F1} GFLOP/s = {result.PeakFraction:P1} of the measured peak {result.PeakGflops:F0} GFLOP/s");
            table.AddRow("allocated per step", $"{result.AllocBytesPerStep / 1024:N1} KB (managed)");
            table.AddRow("peak working set", $"{result.PeakWorkingSetBytes / 1048576.0:N0} MB");
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
partial class BenchJsonContext : JsonSerializerContext;
