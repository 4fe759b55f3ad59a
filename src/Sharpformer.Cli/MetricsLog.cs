using System.Globalization;
using ScottPlot;

namespace Sharpformer.Cli;

/// <summary>
/// Appends every logged figure to OUT/metrics.jsonl and redraws OUT/loss.png (train and val loss against
/// step, and for a classifier its train and val accuracy on a right-hand axis) at each evaluation. The PNG is written beside and renamed in, so a viewer never sees half a file.
/// </summary>
sealed class MetricsLog
{
    readonly string jsonlPath, pngPath;
    readonly List<double> stepX = new(), stepLoss = new(), evalX = new(), evalTrain = new(), evalVal = new();
    readonly List<double> accuracyX = new(), trainAccuracy = new(), valAccuracy = new();

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

    /// <summary>An evaluation's losses and, for a classifier, its accuracies (fractions of the examples evaluated).</summary>
    public void Eval(int iter, float trainLoss, float valLoss, float? trainAcc = null, float? valAcc = null)
    {
        evalX.Add(iter); evalTrain.Add(trainLoss); evalVal.Add(valLoss);
        string accuracy = "";
        if (trainAcc is float ta && valAcc is float va)
        {
            accuracyX.Add(iter); trainAccuracy.Add(ta); valAccuracy.Add(va);
            accuracy = FormattableString.Invariant($",\"train_accuracy\":{Json(ta)},\"val_accuracy\":{Json(va)}");
        }
        Append(FormattableString.Invariant($"{{\"iter\":{iter},\"train_loss\":{Json(trainLoss)},\"val_loss\":{Json(valLoss)}{accuracy}}}"));
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
        if (accuracyX.Count > 0)
        {
            // A classifier's accuracy on the right-hand axis, dashed, in the colours of its split's loss.
            foreach (var (values, label, color) in new[] { (trainAccuracy, "train accuracy", Colors.SteelBlue), (valAccuracy, "val accuracy", Colors.OrangeRed) })
            {
                var a = plot.Add.Scatter(accuracyX.ToArray(), values.ToArray());
                a.Axes.YAxis = plot.Axes.Right;
                a.LegendText = label;
                a.Color = color;
                a.LineWidth = 2;
                a.LinePattern = LinePattern.Dashed;
            }
            plot.Axes.Right.Label.Text = "accuracy";
        }
        plot.Title(accuracyX.Count > 0 ? "Loss and accuracy" : "Loss");
        plot.XLabel("iteration");
        plot.YLabel(accuracyX.Count > 0 ? "cross-entropy (nats/example)" : "cross-entropy (nats/token)");
        plot.ShowLegend(accuracyX.Count > 0 ? Alignment.MiddleRight : Alignment.UpperRight);
        plot.SavePng(TempPng, 900, 540);
        File.Move(TempPng, pngPath, overwrite: true);
    }

    public static string Invariant(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}
