using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using Sharpformer.Checkpoints;
using Sharpformer.Cli.Tasks;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// `icl`: in-context learning, demonstrated. Trains the `icl` preset's GPT on sequences of random substitution
/// ciphers (as `train --preset icl` does), then, with the weights frozen, measures on held-out ciphers how often it
/// answers a query letter right given k examples, against a control whose examples come from another cipher.
/// With --checkpoint it only evaluates.
/// </summary>
static class IclCommand
{
    public const string PngFile = "icl.png", TableFile = "icl.md", JsonFile = "icl.json";

    public static Command Create()
    {
        var settings = new TrainingOptions();
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Evaluate this trained checkpoint (or out-dir holding one) instead of training" };
        var prompts = new Option<int>("--prompts") { Description = "Held-out prompts per number of examples", DefaultValueFactory = _ => 500 };
        var promptSeed = new Option<int>("--prompt-seed") { Description = "Seed of the evaluation prompts", DefaultValueFactory = _ => 1 };
        var command = new Command("icl", "In-context learning: train a small GPT on random ciphers, then measure accuracy on unseen ciphers against the number of examples in its prompt (icl.png, icl.md, icl.json in the out-dir)")
        {
            checkpoint, prompts, promptSeed,
        };
        settings.AddTo(command);
        command.SetAction(r => Cli.Run(() =>
        {
            int count = r.GetValue(prompts);
            Settings.InRange(count, 1, 100_000, "prompts");
            Settings.InRange(r.GetValue(promptSeed), 0, int.MaxValue, "prompt-seed");
            var resolved = settings.Resolve(r, Presets.Get("icl"));
            var run = resolved.Run;
            string? trained = r.GetValue(checkpoint);
            if (trained is null)
            {
                if (!SubstitutionCipherData.IsSubstitutionCipher(run.Data))
                    throw new ArgumentException($"`icl` trains on {SubstitutionCiphers.DataName}, not '{run.Data}'; use `train` for other data.");
                int code = TrainCommand.Run(resolved, sampleTokens: 0);
                if (code != Cli.Ok) return code;
                trained = Path.Combine(run.OutDir, Checkpoint.FolderName);
            }
            else
            {
                var training = resolved.Given.Select(g => g.Name).Where(n => n is not ("--out-dir" or "--threads"))
                    .Concat(r.GetResult(settings.Preset) is { Implicit: false } || r.GetResult(settings.Config) is { Implicit: false } ? ["--preset/--config"] : []).ToList();
                if (training.Count > 0)
                    throw new ArgumentException($"--checkpoint evaluates a trained model; {string.Join(", ", training)} only apply when `icl` trains (with --checkpoint: --out-dir, --threads, --prompts, --prompt-seed).");
                Parallelism.ThreadCount = run.EffectiveThreads;
            }
            Evaluate(trained, run.OutDir, count, (ulong)r.GetValue(promptSeed));
            return Cli.Ok;
        }));
        return command;
    }

    static void Evaluate(string checkpoint, string outDir, int prompts, ulong seed)
    {
        var gpt = SubstitutionCipherData.LoadGpt(checkpoint);
        int maxShots = SubstitutionCiphers.MaxShots(gpt.Config.BlockSize);
        var shots = InContextEvaluation.DefaultShots.Where(k => k <= maxShots).ToList();
        Console.WriteLine($"in-context learning on ciphers held out from training, weights frozen: {prompts:N0} prompts per k, " +
            $"control: the examples' cipher letters from another cipher; chance {Percent(InContextEvaluation.Chance)}" +
            (shots.Count < InContextEvaluation.DefaultShots.Length ? $" (block size {gpt.Config.BlockSize} holds at most {maxShots} examples)" : ""));
        var points = InContextEvaluation.Run(gpt, shots, prompts, seed, p => Console.WriteLine(
            $"k = {p.Shots,2}: query among the examples {Percent(p.Accuracy),6} ± {Percent(p.StandardError(p.Accuracy))}; " +
            $"query any of the {SubstitutionCiphers.LettersPerSequence} letters {Percent(p.AnyQueryAccuracy),6} (shown: {Percent(p.AnyQueryShown),6}); " +
            $"control {Percent(p.ControlAccuracy),6}"));
        Directory.CreateDirectory(outDir);
        string source = checkpoint;
        WriteReplacing(Path.Combine(outDir, TableFile), path => File.WriteAllText(path, Table(points, source)));
        WriteReplacing(Path.Combine(outDir, JsonFile), path => File.WriteAllText(path, Json(points, source, seed)));
        WriteReplacing(Path.Combine(outDir, PngFile), path => Draw(points, path));
        Console.WriteLine($"written {Path.Combine(outDir, PngFile)}, {TableFile} and {JsonFile}");
    }

    static string Percent(double v) => (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    /// <summary>Writes beside the file and renames over it, so a failure never leaves half a file.</summary>
    static void WriteReplacing(string path, Action<string> write)
    {
        string temp = path + ".tmp" + Path.GetExtension(path); // ScottPlot wants a .png name
        write(temp);
        File.Move(temp, path, overwrite: true);
    }

    public static string Table(IReadOnlyList<InContextPoint> points, string checkpoint)
    {
        var s = new StringBuilder();
        s.AppendLine($"In-context accuracy on held-out ciphers ({checkpoint}; {points[0].Prompts} prompts per k; chance {Percent(InContextEvaluation.Chance)})");
        s.AppendLine();
        s.AppendLine($"| examples k | query among the examples | ± 1 s.e. | control: examples from another cipher | query any of the prompt's {SubstitutionCiphers.LettersPerSequence} letters | of which shown | chance |");
        s.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var p in points)
            s.AppendLine($"| {p.Shots} | {Percent(p.Accuracy)} | {Percent(p.StandardError(p.Accuracy))} | {Percent(p.ControlAccuracy)} | " +
                $"{Percent(p.AnyQueryAccuracy)} | {Percent(p.AnyQueryShown)} | {Percent(InContextEvaluation.Chance)} |");
        return s.ToString();
    }

    static string Json(IReadOnlyList<InContextPoint> points, string checkpoint, ulong seed)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("checkpoint", checkpoint);
            w.WriteString("task", "substitution cipher, held-out ciphers");
            w.WriteNumber("prompt_seed", seed);
            w.WriteNumber("chance", InContextEvaluation.Chance);
            w.WriteStartArray("points");
            foreach (var p in points)
            {
                w.WriteStartObject();
                w.WriteNumber("shots", p.Shots);
                w.WriteNumber("prompts", p.Prompts);
                w.WriteNumber("accuracy", p.Accuracy);
                w.WriteNumber("control_accuracy", p.ControlAccuracy);
                w.WriteNumber("any_query_accuracy", p.AnyQueryAccuracy);
                w.WriteNumber("any_query_shown", p.AnyQueryShown);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Accuracy against k (evenly spaced, labelled 0, 1, 2, 4, ...), the control and chance.</summary>
    static void Draw(IReadOnlyList<InContextPoint> points, string path)
    {
        var plot = new Plot();
        double[] x = Enumerable.Range(0, points.Count).Select(i => (double)i).ToArray();
        var accuracy = plot.Add.Scatter(x, points.Select(p => 100 * p.Accuracy).ToArray());
        accuracy.LegendText = "query among the k examples";
        accuracy.LineWidth = 2;
        accuracy.MarkerSize = 8;
        accuracy.Color = Colors.SteelBlue;
        var errors = plot.Add.ErrorBar(x, points.Select(p => 100 * p.Accuracy).ToArray(), points.Select(p => 100 * p.StandardError(p.Accuracy)).ToArray());
        errors.Color = Colors.SteelBlue;
        var control = plot.Add.Scatter(x, points.Select(p => 100 * p.ControlAccuracy).ToArray());
        control.LegendText = "control: the same prompts, the examples' cipher letters from another cipher";
        control.LineWidth = 2;
        control.MarkerSize = 8;
        control.Color = Colors.OrangeRed;
        var any = plot.Add.Scatter(x, points.Select(p => 100 * p.AnyQueryAccuracy).ToArray());
        any.LegendText = $"query any of the prompt's {SubstitutionCiphers.LettersPerSequence} letters, shown or not";
        any.LineWidth = 2;
        any.MarkerSize = 6;
        any.Color = Colors.SeaGreen;
        var shown = plot.Add.Scatter(x, points.Select(p => 100 * p.AnyQueryShown).ToArray());
        shown.LegendText = "  of those queries, the share shown among the examples";
        shown.LinePattern = LinePattern.Dotted;
        shown.MarkerSize = 0;
        shown.Color = Colors.SeaGreen;
        var chance = plot.Add.HorizontalLine(100 * InContextEvaluation.Chance);
        chance.LegendText = $"chance (1 in {SubstitutionCiphers.Letters})";
        chance.LinePattern = LinePattern.Dashed;
        chance.Color = Colors.Gray;
        plot.Axes.Bottom.SetTicks(x, points.Select(p => p.Shots.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsY(0, 105);
        plot.Axes.SetLimitsX(-0.3, points.Count - 0.7);
        plot.Title("In-context learning: substitution ciphers never seen in training, weights frozen");
        plot.XLabel("examples in the prompt (k)");
        plot.YLabel("accuracy of the query's answer (%)");
        plot.ShowLegend(Edge.Bottom);
        plot.SavePng(path, 900, 720);
    }
}
