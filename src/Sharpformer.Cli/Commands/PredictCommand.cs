using System.CommandLine;
using Sharpformer.Cli.Tasks;
using Sharpformer.Data;
using Sharpformer.Kernels;

namespace Sharpformer.Cli.Commands;

/// <summary>`predict`: a classifier's top classes for one image file (ViT), or for texts (BERT): --text, or one text per stdin line.</summary>
static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "ViT or BERT classifier checkpoint folder, or out-dir holding one", Required = true };
        var image = new Option<string?>("--image") { Description = "PNG or JPEG file (resized to the model's size, grey or RGB as it was trained)" };
        var text = new Option<string?>("--text") { Description = "Text to classify with a BERT classifier (without --text or --image: one text per line of standard input)" };
        var pair = new Option<string?>("--text-pair") { Description = "Second text of a pair, for a classifier trained on text pairs" };
        var top = new Option<int>("--top-k") { Description = "Classes to show", DefaultValueFactory = _ => 5 };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("predict", "Classify an image (ViT) or texts (BERT): the label and the top-k classes with their probabilities") { checkpoint, image, text, pair, top, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            Models.Settings.InRange(r.GetValue(top), 1, 1 << 20, "top-k");
            string? imagePath = r.GetValue(image), single = r.GetValue(text), second = r.GetValue(pair);
            if (imagePath is not null && (single is not null || second is not null)) throw new ArgumentException("Give --image or --text, not both.");
            if (imagePath is not null)
            {
                var model = ImageEvaluation.LoadVit(r.GetValue(checkpoint)!, "predict");
                var c = model.Config;
                var pixels = ImageFolder.ReadImage(imagePath, c.ImageSize, c.ImageSize, c.NumChannels);
                PrintTop(model.Probabilities(pixels, 1), c.ClassNames, r.GetValue(top));
                return Cli.Ok;
            }
            if (second is not null && single is null) throw new ArgumentException("--text-pair goes with --text.");
            if (single is null && !Console.IsInputRedirected)
                throw new ArgumentException("predict needs --image FILE, --text TEXT, or texts on standard input (one per line).");
            var (bert, tokenizer) = TextEvaluation.LoadClassifier(r.GetValue(checkpoint)!, "predict --text");
            var names = Enumerable.Range(0, bert.Config.NumLabels).Select(bert.Config.LabelName).ToArray();
            int length = bert.Config.MaxPositionEmbeddings;
            if (single is not null)
            {
                var encoding = tokenizer.EncodeForModel(single, second, length);
                if (encoding.TruncatedTokens > 0) Console.Error.WriteLine($"truncated: the text is {encoding.TruncatedTokens:N0} word pieces longer than the model's {length} positions; its end was cut");
                PrintTop(bert.ClassProbabilities(encoding.Ids, encoding.SegmentIds, [encoding.Ids.Length], 1, encoding.Ids.Length), names, r.GetValue(top));
                return Cli.Ok;
            }
            // One line out per line in: the label, then the top-k classes with their probabilities, tab-separated.
            var lines = new List<string>();
            for (string? line; (line = Console.In.ReadLine()) is not null;) lines.Add(line);
            var encodings = lines.Select(l => tokenizer.EncodeForModel(l, null, length)).ToList();
            int cut = encodings.Count(e => e.TruncatedTokens > 0);
            var inputs = encodings.Select(e => (e.Ids, e.SegmentIds)).ToList();
            foreach (var ((start, n), probabilities) in ClassificationData.Classify(bert, inputs))
                for (int i = 0; i < n; i++)
                {
                    var p = probabilities.AsSpan(i * names.Length, names.Length).ToArray();
                    var ranked = Ranked(p, r.GetValue(top));
                    Console.WriteLine(string.Join('\t', ranked.Select(c => $"{names[c]} {p[c]:F4}").Prepend(names[ranked[0]])));
                }
            if (cut > 0) Console.Error.WriteLine($"truncated: {cut:N0} of {lines.Count:N0} texts were longer than the model's {length} positions; their ends were cut");
            return Cli.Ok;
        }));
        return command;
    }

    static int[] Ranked(float[] probabilities, int k) =>
        [.. Enumerable.Range(0, probabilities.Length).OrderByDescending(i => probabilities[i]).ThenBy(i => i).Take(k)];

    /// <summary>The top-k classes, most likely first, one per line with its probability.</summary>
    static void PrintTop(float[] probabilities, IReadOnlyList<string> names, int k)
    {
        int width = names.Max(n => n.Length);
        foreach (int label in Ranked(probabilities, k)) Console.WriteLine($"{names[label].PadRight(width)}  {probabilities[label]:P2}");
    }
}
