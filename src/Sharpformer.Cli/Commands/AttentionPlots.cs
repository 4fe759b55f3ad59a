using ScottPlot;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// The pictures `attention` draws with ScottPlot. A heat map's row 0 is drawn at the top (ScottPlot puts it at
/// y = rows - 1), so the first query token heads the left axis, as in every attention figure.
/// </summary>
static class AttentionPlots
{
    /// <summary>One panel's matrix, title and colour range (null: the panel's own minimum to maximum).</summary>
    public sealed record Panel(double[,] Values, string Title, ScottPlot.Range? Range = null);

    /// <summary>Side of one square panel: room for the labels of <paramref name="n"/> tokens, at least 400 pixels.</summary>
    public static int CellSize(int n) => Math.Clamp(240 + 16 * n, 400, 1000);

    /// <summary>Panels in a near-square grid, query tokens down the side (first at the top), keys along the bottom, each with a colour bar.</summary>
    public static void Grid(IReadOnlyList<Panel> panels, string[] queryLabels, string[] keyLabels, string xLabel, string yLabel, string path)
    {
        int columns = (int)Math.Ceiling(Math.Sqrt(panels.Count)), rows = (panels.Count + columns - 1) / columns;
        var multiplot = new Multiplot();
        multiplot.AddPlots(panels.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(rows, columns);
        for (int p = 0; p < panels.Count; p++)
        {
            var plot = multiplot.GetPlot(p);
            var heatmap = plot.Add.Heatmap(panels[p].Values);
            heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
            if (panels[p].Range is { } range) heatmap.ManualRange = range;
            plot.Add.ColorBar(heatmap);
            plot.Title(panels[p].Title);
            Label(plot, queryLabels, keyLabels);
            plot.XLabel(xLabel);
            plot.YLabel(yLabel);
        }
        int cell = CellSize(Math.Max(queryLabels.Length, keyLabels.Length));
        multiplot.SavePng(path, columns * cell, rows * cell);
    }

    /// <summary>Tokens as tick labels: keys along the bottom (turned upright), queries down the side, the first at the top.</summary>
    static void Label(Plot plot, string[] queryLabels, string[] keyLabels)
    {
        int n = queryLabels.Length;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, keyLabels.Length).Select(i => (double)i).ToArray(), keyLabels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), queryLabels);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        // ScottPlot sizes the axis for unrotated labels: leave room for the longest upright one and the axis title below it.
        plot.Axes.Bottom.MinimumSize = 40 + 7 * keyLabels.Max(l => l.Length);
    }

    /// <summary>
    /// Panels of a ViT's attention over its patches drawn over the image: the image in grey, each panel's
    /// [rows, columns] patch weights as a translucent heat map covering it, with a colour bar.
    /// </summary>
    public static void OverImage(double[,] grey, IReadOnlyList<Panel> panels, int columns, string path, int cell = 400)
    {
        int gridRows = (panels.Count + columns - 1) / columns;
        var multiplot = new Multiplot();
        multiplot.AddPlots(panels.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(gridRows, columns);
        int height = grey.GetLength(0), width = grey.GetLength(1);
        var area = new CoordinateRect(0, width, 0, height);
        for (int p = 0; p < panels.Count; p++)
        {
            var plot = multiplot.GetPlot(p);
            var image = plot.Add.Heatmap(grey);
            image.Colormap = new ScottPlot.Colormaps.Grayscale();
            image.Rectangle = area;
            if (panels[p].Values.Length > 0)
            {
                var heatmap = plot.Add.Heatmap(panels[p].Values);
                heatmap.Colormap = new ScottPlot.Colormaps.Turbo();
                heatmap.Rectangle = area;
                heatmap.Opacity = 0.5;
                if (panels[p].Range is { } range) heatmap.ManualRange = range;
                plot.Add.ColorBar(heatmap);
            }
            plot.Axes.SquareUnits();
            plot.Axes.SetLimits(area);
            plot.HideAxesAndGrid();
            plot.Title(panels[p].Title); // after hiding the axes, which hides the title's panel too
        }
        multiplot.SavePng(path, columns * cell, gridRows * cell);
    }
}
