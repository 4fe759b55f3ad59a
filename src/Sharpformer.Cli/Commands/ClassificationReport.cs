using System.Globalization;
using ScottPlot;
using Sharpformer.Checkpoints;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// How `eval` reports any classifier (images, texts, the bag-of-words baseline): accuracy, macro-F1, precision,
/// recall, F1 and support per class, and a confusion-matrix PNG.
/// </summary>
static class ClassificationReport
{
    /// <summary>confusion_SPLIT.png beside the checkpoint folder.</summary>
    public static string DefaultPlot(string checkpointPath, string split) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Checkpoint.Resolve(checkpointPath)))!, $"confusion_{split}.png");

    /// <summary>Prints the figures of <paramref name="metrics"/> (classes named by <paramref name="names"/>) and writes the confusion matrix to <paramref name="png"/>.</summary>
    public static void Print(ClassificationMetrics metrics, IReadOnlyList<string> names, string split, string unit, string png)
    {
        Console.Write(Format(metrics, names, split, unit));
        PlotConfusion(metrics, [.. names], $"{split}: accuracy {metrics.Accuracy.ToString("P2", CultureInfo.InvariantCulture)}", png);
        Console.WriteLine($"confusion matrix in {png}");
    }

    /// <summary>The text <see cref="Print"/> writes, before the plot's line.</summary>
    public static string Format(ClassificationMetrics metrics, IReadOnlyList<string> names, string split, string unit)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{split} accuracy {metrics.Accuracy:P2} ({metrics.Count:N0} {unit}, {names.Count} classes)");
        text.AppendLine(CultureInfo.InvariantCulture, $"macro-F1 {metrics.MacroF1:F4}");
        int width = Math.Max(5, names.Max(n => n.Length));
        text.AppendLine(CultureInfo.InvariantCulture, $"  {"class".PadRight(width)}  precision     recall        F1    support");
        for (int c = 0; c < names.Count; c++)
        {
            long support = Enumerable.Range(0, names.Count).Sum(p => metrics.Confusion[c, p]);
            text.AppendLine(CultureInfo.InvariantCulture, $"  {names[c].PadRight(width)}  {metrics.Precision(c),9:P2}  {metrics.Recall(c),9:P2}  {metrics.F1(c),8:F4}  {support,9:N0}");
        }
        return text.ToString();
    }

    /// <summary>Rows are the true classes, columns the predictions; colour is the share of the row, text the count.</summary>
    public static void PlotConfusion(ClassificationMetrics metrics, string[] names, string title, string path)
    {
        int n = names.Length;
        var shares = new double[n, n];
        for (int actual = 0; actual < n; actual++)
        {
            double total = Math.Max(1, Enumerable.Range(0, n).Sum(p => metrics.Confusion[actual, p]));
            for (int predicted = 0; predicted < n; predicted++) shares[actual, predicted] = metrics.Confusion[actual, predicted] / total;
        }
        var plot = new Plot();
        var map = plot.Add.Heatmap(shares);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.Rectangle = new CoordinateRect(-0.5, n - 0.5, -0.5, n - 0.5); // cells centred on integers; row 0 drawn at the top, y = n - 1
        for (int actual = 0; actual < n; actual++)
            for (int predicted = 0; predicted < n; predicted++)
            {
                var text = plot.Add.Text(metrics.Confusion[actual, predicted].ToString(CultureInfo.InvariantCulture), predicted, n - 1 - actual);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontColor = shares[actual, predicted] > 0.5 ? Colors.Black : Colors.White;
                text.LabelFontSize = n > 20 ? 8 : 12;
            }
        var ticks = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, names);
        plot.Axes.Left.SetTicks(ticks, [.. names.Reverse()]);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Title(title);
        plot.XLabel("predicted");
        plot.YLabel("true");
        plot.Add.ColorBar(map);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp.png";
        int side = Math.Clamp(60 * n + 200, 500, 2000);
        plot.SavePng(temp, side + 100, side);
        File.Move(temp, full, overwrite: true);
    }
}
