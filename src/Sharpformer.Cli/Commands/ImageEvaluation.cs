using System.Globalization;
using ScottPlot;
using Sharpformer.Checkpoints;
using Sharpformer.Cli.Tasks;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>`eval` on an image data folder: accuracy over a whole split, per-class accuracy, and a confusion-matrix PNG.</summary>
static class ImageEvaluation
{
    /// <summary>A ViT checkpoint, or one clear error naming what the path holds instead.</summary>
    public static Vit LoadVit(string path, string verb)
    {
        var (model, _) = Checkpoint.Load(path);
        return model as Vit ?? throw new ArgumentException($"`{verb}` on images needs a ViT checkpoint, but '{path}' holds a {model.Config.Kind} model.");
    }

    /// <returns>The confusion-matrix PNG written.</returns>
    public static string Run(string checkpointPath, string dataFolder, string split, string? plotPath)
    {
        using var data = new ImageData(dataFolder);
        var set = ImageDataFolder.ReadSplit(dataFolder, data.Meta, split);
        var model = LoadVit(checkpointPath, "eval");
        data.EnsureFits(model.Config, $"The model at '{checkpointPath}'");
        var metrics = ImageData.Evaluate(model, set);

        var names = data.Meta.Classes;
        Console.WriteLine($"{split} accuracy {metrics.Accuracy:P2} ({metrics.Count:N0} images, {names.Length} classes)");
        int width = Math.Max(5, names.Max(n => n.Length));
        for (int c = 0; c < names.Length; c++)
        {
            long total = Enumerable.Range(0, names.Length).Sum(p => metrics.Confusion[c, p]);
            Console.WriteLine($"  {names[c].PadRight(width)}  {metrics.Recall(c),8:P2}  ({metrics.Confusion[c, c]:N0} of {total:N0})");
        }
        string png = plotPath ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Checkpoint.Resolve(checkpointPath)))!, $"confusion_{split}.png");
        PlotConfusion(metrics, names, $"{split}: accuracy {metrics.Accuracy.ToString("P2", CultureInfo.InvariantCulture)}", png);
        Console.WriteLine($"confusion matrix in {png}");
        return png;
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
