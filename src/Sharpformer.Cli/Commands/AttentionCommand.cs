using System.CommandLine;
using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Text;
using Map = Sharpformer.Nn.AttentionRecorder.Map;
using Panel = Sharpformer.Cli.Commands.AttentionPlots.Panel;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// `attention`: what each head of each layer attends to, for any model: a GPT's or BERT's text, a translation model's
/// source and its own greedy translation (encoder, decoder and cross-attention, and the source-target alignment),
/// a ViT's image ([CLS] over the patches per layer, and attention rollout). PNG heat maps and the raw weights as JSON.
/// </summary>
static class AttentionCommand
{
    /// <summary>A file the command writes: its name and how to write it at a path.</summary>
    sealed record Output(string Name, Action<string> Write);

    /// <summary>What was looked at: the files to write and one line saying what they show.</summary>
    sealed record Pictures(IReadOnlyList<Output> Files, string Summary);

    /// <summary>The input options as given; each kind of model takes one of them.</summary>
    sealed record Input(string? Text, string? Source, string? Image, int? Layer, int? Head);

    const string JsonName = "attention.json";

    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder (GPT, BERT, translation or ViT), out-dir holding one, or Hugging Face GPT-2 folder", Required = true };
        var text = new Option<string?>("--text") { Description = "The text to look at (GPT, BERT)" };
        var source = new Option<string?>("--source") { Description = "The sentence a translation model translates; its attention over its own greedy translation is shown" };
        var image = new Option<string?>("--image") { Description = "PNG or JPEG file for a ViT" };
        var output = new Option<string>("--out") { Description = "Folder for the PNGs and attention.json", Required = true };
        var layer = new Option<int?>("--layer") { Description = "Only this layer (0-based)" };
        var head = new Option<int?>("--head") { Description = "Only this head (0-based)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the files this command writes if the folder holds them" };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("attention", "Draw a model's attention maps: a grid of heads per layer, tokens on the axes (or patches over the image)")
            { checkpoint, text, source, image, output, layer, head, overwrite, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is var t && t != 0) { Settings.InRange(t, 1, Training.RunSettings.MaxThreads, "threads"); Parallelism.ThreadCount = t; }
            string path = r.GetValue(checkpoint)!, folder = r.GetValue(output)!;
            var input = new Input(r.GetValue(text), r.GetValue(source), r.GetValue(image), r.GetValue(layer), r.GetValue(head));
            var (model, tokenizers) = ModelLoader.LoadWithTokenizers(path);
            var pictures = model switch
            {
                Gpt gpt => OfGpt(gpt, tokenizers, input),
                Bert bert => OfBert(bert, path, input),
                Seq2Seq seq2seq => OfTranslation(seq2seq, tokenizers, input),
                Vit vit => OfVit(vit, input),
                _ => throw new ArgumentException($"`attention` does not know {model.Config.Kind} models."),
            };
            var names = pictures.Files.Select(f => f.Name).ToList();
            OutputFolder.EnsureWritable(folder, names, r.GetValue(overwrite), input.Image is null ? [path] : [path, input.Image]);
            OutputFolder.Write(folder, staging =>
            {
                Directory.CreateDirectory(staging);
                foreach (var file in pictures.Files) file.Write(Path.Combine(staging, file.Name));
            });
            Console.WriteLine($"{pictures.Summary}: {string.Join(", ", names)} written to {folder}");
            return Cli.Ok;
        }));
        return command;
    }

    static Pictures OfGpt(Gpt gpt, IReadOnlyDictionary<string, TokenizerSpec> tokenizers, Input input)
    {
        var cfg = gpt.Config;
        string text = TextOf(input, "gpt");
        var (layers, heads) = Selection(input, cfg.NLayer, cfg.NHead);
        var tokenizer = tokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec) ? spec.Create() : throw new ArgumentException("The checkpoint holds a GPT without a text tokenizer.");
        int[] ids = tokenizer.Encode(text);
        if (ids.Length == 0) throw new ArgumentException("The text is empty.");
        if (ids.Length > cfg.BlockSize)
        {
            Console.WriteLine($"the text is {ids.Length} tokens, longer than the model's block size {cfg.BlockSize}: showing its last {cfg.BlockSize}");
            ids = ids[^cfg.BlockSize..];
        }
        string[] labels = ids.Select(id => Printable(tokenizer.Decode([id]))).ToArray();
        var maps = AttentionRecorder.Record(gpt, () => gpt.Logits(ids, 1, ids.Length));
        return SelfAttention(maps, layers, heads, labels, ids, "gpt", $"GPT, {labels.Length} tokens");
    }

    static Pictures OfBert(Bert bert, string path, Input input)
    {
        var cfg = bert.Config;
        string text = TextOf(input, "bert");
        var (layers, heads) = Selection(input, cfg.NumHiddenLayers, cfg.NumAttentionHeads);
        string folder = Checkpoint.Resolve(path);
        if (!File.Exists(Path.Combine(folder, WordPieceTokenizer.VocabFileName)))
            throw new ArgumentException($"'{folder}' has no {WordPieceTokenizer.VocabFileName} beside the BERT model.");
        var tokenizer = WordPieceTokenizer.Load(folder);
        int[] pieces = tokenizer.Encode(text);
        if (pieces.Length == 0) throw new ArgumentException("The text is empty.");
        int room = cfg.MaxPositionEmbeddings - 2; // [CLS] and [SEP] take two positions
        if (pieces.Length > room)
        {
            Console.WriteLine($"the text is {pieces.Length} word pieces, more than the model's {cfg.MaxPositionEmbeddings} positions hold with [CLS] and [SEP]: showing its last {room} between [CLS] and [SEP]");
            pieces = pieces[^room..];
        }
        int[] ids = [tokenizer.ClsId, .. pieces, tokenizer.SepId];
        string[] labels = ids.Select(tokenizer.Token).ToArray();
        var maps = AttentionRecorder.Record(bert, () => bert.HiddenStates(ids, default, [ids.Length], 1, ids.Length));
        return SelfAttention(maps, layers, heads, labels, ids, "bert", $"BERT, {labels.Length} tokens with [CLS] and [SEP]");
    }

    /// <summary>A GPT's or BERT's self-attention: a grid of heads per layer and the weights as JSON.</summary>
    static Pictures SelfAttention(List<Map> maps, List<int> layers, List<int> heads, string[] labels, int[] ids, string kind, string what)
    {
        var files = layers.Select(l => new Output($"attention-layer-{l}.png",
            p => AttentionPlots.Grid(HeadPanels(maps[l], heads, $"layer {l}"), labels, labels, "attends to (keys)", "token (queries)", p))).ToList();
        files.Add(Json(w =>
        {
            w.WriteString("model", kind);
            Strings(w, "tokens", labels);
            w.WriteStartArray("ids"); foreach (int id in ids) w.WriteNumberValue(id); w.WriteEndArray();
            w.WriteString("layout", "layers[i].heads[h][query][key]");
            Layers(w, "layers", layers.Select(l => (l, maps[l])), heads);
        }));
        return new Pictures(files, Describe(what, layers, heads));
    }

    static Pictures OfTranslation(Seq2Seq model, IReadOnlyDictionary<string, TokenizerSpec> tokenizers, Input input)
    {
        var cfg = model.Config;
        if (input.Image is not null) throw new ArgumentException("This checkpoint holds a translation model, which reads text: give --source \"...\", not --image.");
        if (input.Source is not null && input.Text is not null) throw new ArgumentException("Give the sentence once, with --source (--text means the same for a translation model).");
        string sentence = input.Source ?? input.Text ?? throw new ArgumentException("A translation model needs the sentence to translate: give --source \"...\".");
        var (layers, heads) = Selection(input, Math.Max(cfg.EncoderLayers, cfg.DecoderLayers), cfg.Heads);
        var sourceTokenizer = Subword(tokenizers, "source");
        var targetTokenizer = tokenizers.ContainsKey("target") ? Subword(tokenizers, "target") : sourceTokenizer;
        int[] source = sourceTokenizer.Encode(sentence.Trim());
        if (source.Length == 0) throw new ArgumentException("The source sentence is empty.");
        if (source.Length > cfg.MaxLength)
        {
            Console.WriteLine($"the source is {source.Length} tokens, longer than the model's {cfg.MaxLength} positions: showing its last {cfg.MaxLength} and their translation");
            source = source[^cfg.MaxLength..];
        }
        int[] translation = model.Translate([source])[0];
        // Teacher forcing on the model's own greedy output: the decoder reads <s> y1 .. yn and, row by row, produces y1 .. yn </s>.
        int[] inputs = [SubwordTokenizer.BosId, .. translation];
        if (inputs.Length > cfg.MaxLength) inputs = inputs[..cfg.MaxLength];
        int[] produced = [.. translation, SubwordTokenizer.EosId];
        produced = produced[..inputs.Length];
        var maps = AttentionRecorder.Record(model, () => model.Logits(source, [source.Length], inputs, 1, source.Length, inputs.Length));

        string[] sourceLabels = Labels(sourceTokenizer, source), inputLabels = Labels(targetTokenizer, inputs), producedLabels = Labels(targetTokenizer, produced);
        var encoder = Stack(maps, "encoder.", cross: false, layers);
        var decoder = Stack(maps, "decoder.", cross: false, layers);
        var cross = Stack(maps, "decoder.", cross: true, layers);
        var alignment = Average(cross.Select(c => c.Map).ToList(), heads);
        string averaged = cross.Count > 1 && heads.Count > 1 ? "all layers & heads"
            : $"{(cross.Count == 1 ? $"layer {cross[0].Layer}" : "all layers")}, {(heads.Count == 1 ? $"head {heads[0]}" : "all heads")}";

        var files = new List<Output>();
        foreach (var (l, map) in encoder)
            files.Add(new($"encoder-layer-{l}.png", p => AttentionPlots.Grid(HeadPanels(map, heads, $"encoder layer {l}"), sourceLabels, sourceLabels, "attends to (source)", "source token", p)));
        foreach (var (l, map) in decoder)
            files.Add(new($"decoder-layer-{l}.png", p => AttentionPlots.Grid(HeadPanels(map, heads, $"decoder layer {l}"), inputLabels, inputLabels, "attends to (target so far)", "decoder input", p)));
        foreach (var (l, map) in cross)
            files.Add(new($"cross-layer-{l}.png", p => AttentionPlots.Grid(HeadPanels(map, heads, $"cross-attention, layer {l}"), producedLabels, sourceLabels, "source", "target (token produced)", p)));
        files.Add(new("alignment.png", p => AttentionPlots.Grid([new Panel(alignment, $"alignment, {averaged}")], producedLabels, sourceLabels, "source", "target", p)));
        files.Add(Json(w =>
        {
            w.WriteString("model", "seq2seq");
            w.WriteString("translation", targetTokenizer.Decode(translation));
            Strings(w, "source_tokens", sourceLabels);
            Ids(w, "source_ids", source);
            Strings(w, "target_tokens", inputLabels);
            Ids(w, "target_ids", inputs);
            Strings(w, "produced_tokens", producedLabels);
            w.WriteString("layout", "encoder|decoder_self|cross[i].heads[h][query][key]; encoder: source x source, decoder_self: target x target, cross: target x source (row t produces produced_tokens[t]); alignment: target x source");
            Layers(w, "encoder", encoder, heads);
            Layers(w, "decoder_self", decoder, heads);
            Layers(w, "cross", cross, heads);
            Matrix(w, "alignment", alignment);
        }));
        Console.WriteLine($"translation: {targetTokenizer.Decode(translation)}");
        return new Pictures(files, Describe($"translation, {source.Length} source and {inputs.Length} target tokens", layers, heads));
    }

    static Pictures OfVit(Vit vit, Input input)
    {
        var cfg = vit.Config;
        if (input.Text is not null || input.Source is not null)
            throw new ArgumentException("This checkpoint holds a ViT, which looks at images: give --image FILE, not text.");
        string file = input.Image ?? throw new ArgumentException("A ViT needs an image: give --image FILE (PNG or JPEG).");
        if (!File.Exists(file)) throw new FileNotFoundException($"The image '{file}' does not exist.");
        var (layers, heads) = Selection(input, cfg.NumHiddenLayers, cfg.NumAttentionHeads);
        var pixels = ImageFolder.ReadImage(file, cfg.ImageSize, cfg.ImageSize, cfg.NumChannels);
        var normalised = new float[pixels.Length];
        ImageBatch.Normalize(pixels, normalised, cfg.ImageSize * cfg.ImageSize, cfg.ImageMean, cfg.ImageStd);
        var maps = AttentionRecorder.Record(vit, () => vit.Logits(normalised, 1));
        var probabilities = vit.Probabilities(pixels, 1);
        int best = Array.IndexOf(probabilities, probabilities.Max());
        string prediction = $"{cfg.ClassNames[best]} {probabilities[best]:P0}";

        int side = cfg.ImageSize / cfg.PatchSize;
        string[] labels = ["[CLS]", .. Enumerable.Range(0, cfg.Patches).Select(i => $"p{i / side},{i % side}")];
        var grey = Grey(pixels, cfg.NumChannels, cfg.ImageSize);
        var rollout = AttentionRollout.Compute(Enumerable.Range(0, layers[^1] + 1).Select(l => maps[l]).ToList(), heads);
        string throughLayers = layers[^1] == 0 ? "layer 0" : $"layers 0-{layers[^1]}", ofHeads = heads.Count == 1 ? $"head {heads[0]}" : "heads averaged";

        var files = new List<Output>();
        foreach (int l in layers)
        {
            var panels = heads.Select(h => new Panel(Patches(Row(maps[l], h), side), $"layer {l}, head {h}")).ToList();
            if (heads.Count > 1) panels.Add(new Panel(Patches(Average([maps[l]], heads), side), $"layer {l}, mean of heads"));
            files.Add(new($"attention-layer-{l}.png", p => AttentionPlots.OverImage(grey, panels, Math.Min(panels.Count, 5), p)));
        }
        files.Add(new("rollout.png", p => AttentionPlots.OverImage(grey,
            [new Panel(new double[0, 0], $"input ({prediction})"), new Panel(Patches(rollout, side), $"rollout, {throughLayers}, {ofHeads}")], 2, p)));
        files.Add(Json(w =>
        {
            w.WriteString("model", "vit");
            w.WriteString("prediction", cfg.ClassNames[best]);
            w.WriteNumber("probability", probabilities[best]);
            Strings(w, "tokens", labels);
            w.WriteStartArray("patch_grid"); w.WriteNumberValue(side); w.WriteNumberValue(side); w.WriteEndArray();
            w.WriteString("layout", "layers[i].heads[h][query][key] over tokens ([CLS], then patches row by row); rollout[query][key] through layers 0.." + layers[^1]);
            Layers(w, "layers", layers.Select(l => (l, maps[l])), heads);
            Matrix(w, "rollout", rollout);
        }));
        Console.WriteLine($"prediction: {prediction}");
        return new Pictures(files, Describe($"ViT, [CLS] and {cfg.Patches} patches", layers, heads));
    }

    static string TextOf(Input input, string kind)
    {
        if (input.Image is not null) throw new ArgumentException($"This checkpoint holds a {kind} model, which reads text: give --text \"...\", not --image.");
        if (input.Source is not null) throw new ArgumentException($"--source is for translation models; this checkpoint holds a {kind} model: give --text \"...\".");
        return input.Text ?? throw new ArgumentException($"A {kind} model needs a text: give --text \"...\".");
    }

    /// <summary>The layers and heads to show: all, or the one asked for, which must exist.</summary>
    static (List<int> Layers, List<int> Heads) Selection(Input input, int layers, int heads) => (Select(input.Layer, layers, "layer"), Select(input.Head, heads, "head"));

    static List<int> Select(int? only, int count, string name)
    {
        if (only is not { } v) return Enumerable.Range(0, count).ToList();
        Settings.InRange(v, 0, count - 1, name);
        return [v];
    }

    /// <summary>The selected layers of one stack ("encoder." or "decoder." blocks), self- or cross-attention.</summary>
    static List<(int Layer, Map Map)> Stack(List<Map> maps, string prefix, bool cross, List<int> layers)
    {
        var stack = maps.Where(m => m.Block.StartsWith(prefix, StringComparison.Ordinal) && m.Cross == cross).ToList();
        return layers.Where(l => l < stack.Count).Select(l => (l, stack[l])).ToList();
    }

    static SubwordTokenizer Subword(IReadOnlyDictionary<string, TokenizerSpec> tokenizers, string role) =>
        tokenizers.TryGetValue(role, out var spec) && spec.Create() is SubwordTokenizer tokenizer
            ? tokenizer
            : throw new ArgumentException($"The translation checkpoint holds no BPE {role} tokenizer.");

    static string[] Labels(ITokenizer tokenizer, int[] ids) => ids.Select(id => id switch
    {
        SubwordTokenizer.BosId => "<s>",
        SubwordTokenizer.EosId => "</s>",
        _ => Printable(tokenizer.Decode([id])),
    }).ToArray();

    static List<Panel> HeadPanels(Map map, List<int> heads, string title) =>
        heads.Select(h => new Panel(Matrix(map, h), $"{title}, head {h}", new ScottPlot.Range(0, 1))).ToList();

    /// <summary>Head h of the first sequence as [queries, keys].</summary>
    static double[,] Matrix(Map map, int h)
    {
        var m = new double[map.Queries, map.Keys];
        for (int q = 0; q < map.Queries; q++)
        {
            var row = map.Row(0, h, q);
            for (int k = 0; k < map.Keys; k++) m[q, k] = row[k];
        }
        return m;
    }

    /// <summary>The mean over maps (layers of one size) and heads, [queries, keys].</summary>
    static double[,] Average(List<Map> maps, List<int> heads)
    {
        var sum = new double[maps[0].Queries, maps[0].Keys];
        foreach (var map in maps)
            foreach (int h in heads)
            {
                var m = Matrix(map, h);
                for (int q = 0; q < m.GetLength(0); q++)
                    for (int k = 0; k < m.GetLength(1); k++) sum[q, k] += m[q, k] / (maps.Count * heads.Count);
            }
        return sum;
    }

    /// <summary>Row 0 ([CLS]) of head h as [1, tokens].</summary>
    static double[,] Row(Map map, int h)
    {
        var m = new double[1, map.Keys];
        var row = map.Row(0, h, 0);
        for (int k = 0; k < map.Keys; k++) m[0, k] = row[k];
        return m;
    }

    /// <summary>What [CLS] (row 0) gives each patch (columns 1..N), laid out as the [side, side] patch grid.</summary>
    static double[,] Patches(double[,] attention, int side)
    {
        var grid = new double[side, side];
        for (int i = 0; i < side * side; i++) grid[i / side, i % side] = attention[0, 1 + i];
        return grid;
    }

    /// <summary>The image as the model saw it, [height, width] brightness (the mean of its channels).</summary>
    static double[,] Grey(byte[] pixels, int channels, int size)
    {
        var grey = new double[size, size];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < size * size; i++) grey[i / size, i % size] += pixels[c * size * size + i] / (double)channels;
        return grey;
    }

    static string Describe(string what, List<int> layers, List<int> heads) =>
        $"{what}, {layers.Count} layer{(layers.Count > 1 ? "s" : "")} x {heads.Count} head{(heads.Count > 1 ? "s" : "")}";

    static Output Json(Action<Utf8JsonWriter> body) => new(JsonName, path =>
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        body(w);
        w.WriteEndObject();
    });

    static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var s in values) w.WriteStringValue(s);
        w.WriteEndArray();
    }

    static void Ids(Utf8JsonWriter w, string name, int[] ids)
    {
        w.WriteStartArray(name);
        foreach (int id in ids) w.WriteNumberValue(id);
        w.WriteEndArray();
    }

    /// <summary>[{layer, block, head_index, heads: [head][query][key]}] for the first sequence of each map.</summary>
    static void Layers(Utf8JsonWriter w, string name, IEnumerable<(int Layer, Map Map)> layers, List<int> heads)
    {
        w.WriteStartArray(name);
        foreach (var (l, map) in layers)
        {
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
    }

    static void Matrix(Utf8JsonWriter w, string name, double[,] m)
    {
        w.WriteStartArray(name);
        for (int i = 0; i < m.GetLength(0); i++)
        {
            w.WriteStartArray();
            for (int j = 0; j < m.GetLength(1); j++) w.WriteNumberValue(m[i, j]);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    static string Printable(string token) => token.Replace("\n", "\\n").Replace("\t", "\\t").Replace(" ", "·");
}
