using System.CommandLine;
using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Text;
using ScottPlot;

namespace Sharpformer.Cli.Commands;

/// <summary>`attention`: what each head of each layer attends to, for one text, as PNG heat maps and raw JSON.</summary>
static class AttentionCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "GPT checkpoint folder, out-dir holding one, or Hugging Face GPT-2 folder", Required = true };
        var text = new Option<string>("--text") { Description = "The text to look at", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for attention-layer-N.png and attention.json", Required = true };
        var layer = new Option<int?>("--layer") { Description = "Only this layer (0-based)" };
        var head = new Option<int?>("--head") { Description = "Only this head (0-based)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the files this command writes if they exist" };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("attention", "Draw the attention maps of a text: one grid of heads per layer, tokens on the axes") { checkpoint, text, output, layer, head, overwrite, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is var t && t != 0) { Models.Settings.InRange(t, 1, Training.RunSettings.MaxThreads, "threads"); Parallelism.ThreadCount = t; }
            var (model, spec) = ModelLoader.LoadGpt(r.GetValue(checkpoint)!, "attention");
            var cfg = model.Config;
            int? onlyLayer = r.GetValue(layer), onlyHead = r.GetValue(head);
            if (onlyLayer is { } l) Models.Settings.InRange(l, 0, cfg.NLayer - 1, "layer");
            if (onlyHead is { } h) Models.Settings.InRange(h, 0, cfg.NHead - 1, "head");

            var tokenizer = spec.Create();
            int[] ids = tokenizer.Encode(r.GetValue(text)!);
            if (ids.Length == 0) throw new ArgumentException("The text is empty.");
            if (ids.Length > cfg.BlockSize)
            {
                Console.WriteLine($"the text is {ids.Length} tokens, longer than the model's block size {cfg.BlockSize}: showing its last {cfg.BlockSize}");
                ids = ids[^cfg.BlockSize..];
            }
            string[] labels = ids.Select(id => Printable(tokenizer.Decode([id]))).ToArray();

            string folder = r.GetValue(output)!;
            var layers = Enumerable.Range(0, cfg.NLayer).Where(i => onlyLayer is null || i == onlyLayer).ToList();
            var files = layers.Select(i => Path.Combine(folder, $"attention-layer-{i}.png")).Append(Path.Combine(folder, "attention.json")).ToList();
            if (!r.GetValue(overwrite) && files.FirstOrDefault(File.Exists) is { } existing)
                throw new IOException($"{existing} exists; pass --overwrite to replace the files this command writes.");

            var recorder = new AttentionRecorder();
            model.Eval();
            AttentionRecorder.Attach(model, recorder);
            using (Graph.NoGrad()) model.Logits(ids, 1, ids.Length).Dispose();
            AttentionRecorder.Attach(model, null);

            Directory.CreateDirectory(folder);
            var heads = Enumerable.Range(0, cfg.NHead).Where(i => onlyHead is null || i == onlyHead).ToList();
            foreach (int i in layers) Draw(recorder.Maps[i], heads, labels, $"layer {i}", Path.Combine(folder, $"attention-layer-{i}.png"));
            WriteJson(Path.Combine(folder, "attention.json"), labels, ids, recorder.Maps, layers, heads);
            Console.WriteLine($"{layers.Count} layer{(layers.Count > 1 ? "s" : "")} x {heads.Count} head{(heads.Count > 1 ? "s" : "")} over {ids.Length} tokens written to {folder}");
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>One heat map per head in a grid, query tokens down the side (first at the top), keys along the bottom.</summary>
    static void Draw(AttentionRecorder.Map map, List<int> heads, string[] labels, string title, string path)
    {
        int n = map.Queries, columns = (int)Math.Ceiling(Math.Sqrt(heads.Count)), rows = (heads.Count + columns - 1) / columns;
        var multiplot = new Multiplot();
        multiplot.AddPlots(heads.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(rows, columns);
        double[] positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        for (int p = 0; p < heads.Count; p++)
        {
            var plot = multiplot.GetPlot(p);
            var data = new double[n, map.Keys];
            for (int q = 0; q < n; q++)
            {
                var row = map.Row(0, heads[p], q);
                for (int k = 0; k < map.Keys; k++) data[q, k] = row[k];
            }
            var heatmap = plot.Add.Heatmap(data); // row 0 is drawn at the top, at y = n - 1
            heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
            heatmap.ManualRange = new ScottPlot.Range(0, 1);
            plot.Add.ColorBar(heatmap);
            plot.Title($"{title}, head {heads[p]}");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions.Select(y => n - 1 - y).ToArray(), labels);
            plot.Axes.Bottom.TickLabelStyle.Rotation = 90;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            plot.XLabel("attends to (keys)");
            plot.YLabel("token (queries)");
        }
        int cell = Math.Clamp(160 + 14 * n, 320, 900);
        multiplot.SavePng(path, columns * cell, rows * cell);
    }

    static void WriteJson(string path, string[] labels, int[] ids, List<AttentionRecorder.Map> maps, List<int> layers, List<int> heads)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        w.WriteStartObject();
        w.WriteStartArray("tokens"); foreach (var s in labels) w.WriteStringValue(s); w.WriteEndArray();
        w.WriteStartArray("ids"); foreach (var id in ids) w.WriteNumberValue(id); w.WriteEndArray();
        w.WriteString("layout", "layers[i].heads[h][query][key]");
        w.WriteStartArray("layers");
        foreach (int l in layers)
        {
            var map = maps[l];
            w.WriteStartObject();
            w.WriteNumber("layer", l);
            w.WriteString("block", map.Block);
            w.WriteStartArray("head_index"); foreach (int h in heads) w.WriteNumberValue(h); w.WriteEndArray();
            w.WriteStartArray("heads");
            foreach (int h in heads)
            {
                w.WriteStartArray();
                for (int q = 0; q < map.Queries; q++)
                {
                    w.WriteStartArray();
                    foreach (float v in map.Row(0, h, q)) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    static string Printable(string token) => token.Replace("\n", "\\n").Replace("\t", "\\t").Replace(" ", "·");
}
