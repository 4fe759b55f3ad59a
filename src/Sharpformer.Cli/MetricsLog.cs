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
    }

    public void Step(int iter, float loss, float lr, float gradNorm, double ms, double tokensPerS)
    {
        stepX.Add(iter); stepLoss.Add(loss);
        Append(FormattableString.Invariant($"{{\"iter\":{iter},\"loss\":{loss:R},\"lr\":{lr:R},\"grad_norm\":{gradNorm:R},\"ms\":{ms:F3},\"tokens_per_s\":{tokensPerS:F1}}}"));
    }

    public void Eval(int iter, float trainLoss, float valLoss)
    {
        evalX.Add(iter); evalTrain.Add(trainLoss); evalVal.Add(valLoss);
        Append(FormattableString.Invariant($"{{\"iter\":{iter},\"train_loss\":{trainLoss:R},\"val_loss\":{valLoss:R}}}"));
        Plot();
    }

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
        string temp = pngPath + ".tmp.png";
        plot.SavePng(temp, 900, 540);
        File.Move(temp, pngPath, overwrite: true);
    }

    public static string Invariant(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}
