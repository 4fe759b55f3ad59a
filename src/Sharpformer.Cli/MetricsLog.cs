using System.Globalization;
using ScottPlot;

namespace Sharpformer.Cli;

/// <summary>
/// Appends every logged figure to OUT/metrics.jsonl and redraws OUT/loss.png (train and val loss against
/// step) at each evaluation. The PNG is written beside and renamed in, so a viewer never sees half a file.
/// </summary>
sealed class MetricsLog
{
    readonly string jsonlPath, pngPath;
    readonly List<double> stepX = new(), stepLoss = new(), evalX = new(), evalTrain = new(), evalVal = new();

    public MetricsLog(string outDir)
    {
        Directory.CreateDirectory(outDir);
        jsonlPath = Path.Combine(outDir, "metrics.jsonl");
        pngPath = Path.Combine(outDir, "loss.png");
        // A plot being written when a run was killed; the next plot replaces loss.png anyway.
        if (File.Exists(TempPng)) File.Delete(TempPng);
    }

    string TempPng => pngPath + ".tmp.png";

    public void Step(int iter, float loss, float lr, float gradNorm, double ms, double tokensPerS)
    {
        stepX.Add(iter); stepLoss.Add(loss);
        Append(FormattableString.Invariant($"{{\"iter\":{iter},\"loss\":{Json(loss)},\"lr\":{Json(lr)},\"grad_norm\":{Json(gradNorm)},\"ms\":{Json(ms, "F3")},\"tokens_per_s\":{Json(tokensPerS, "F1")}}}"));
    }

    public void Eval(int iter, float trainLoss, float valLoss)
    {
        evalX.Add(iter); evalTrain.Add(trainLoss); evalVal.Add(valLoss);
        Append(FormattableString.Invariant($"{{\"iter\":{iter},\"train_loss\":{Json(trainLoss)},\"val_loss\":{Json(valLoss)}}}"));
        Plot();
    }

    /// <summary>A JSON number, or null for NaN and infinities (JSON has no such numbers; a bare NaN breaks every reader).</summary>
    static string Json(float v) => float.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null";

    static string Json(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "null";

    void Append(string line) => File.AppendAllText(jsonlPath, line + "\n");

    void Plot()
    {
        var plot = new Plot();
        if (stepX.Count > 0)
        {
            var s = plot.Add.ScatterLine(stepX.ToArray(), stepLoss.ToArray());
            s.LegendText = "train (batch)";
            s.LineWidth = 1;
            s.Color = Colors.SteelBlue.WithAlpha(0.5);
        }
        var t = plot.Add.Scatter(evalX.ToArray(), evalTrain.ToArray());
        t.LegendText = "train (eval)";
        t.Color = Colors.SteelBlue;
        t.LineWidth = 2;
        var v = plot.Add.Scatter(evalX.ToArray(), evalVal.ToArray());
        v.LegendText = "val (eval)";
        v.Color = Colors.OrangeRed;
        v.LineWidth = 2;
        plot.Title("Loss");
        plot.XLabel("iteration");
        plot.YLabel("cross-entropy (nats/token)");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(TempPng, 900, 540);
        File.Move(TempPng, pngPath, overwrite: true);
    }

    public static string Invariant(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}
