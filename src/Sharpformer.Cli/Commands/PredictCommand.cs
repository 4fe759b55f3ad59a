using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Kernels;

namespace Sharpformer.Cli.Commands;

/// <summary>`predict`: an image classifier's top classes for one image file.</summary>
static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "ViT checkpoint folder, or out-dir holding one", Required = true };
        var image = new Option<string>("--image") { Description = "PNG or JPEG file (resized to the model's size, grey or RGB as it was trained)", Required = true };
        var top = new Option<int>("--top-k") { Description = "Classes to show", DefaultValueFactory = _ => 5 };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("predict", "Classify an image with a ViT checkpoint: the top-k classes and their probabilities") { checkpoint, image, top, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            Models.Settings.InRange(r.GetValue(top), 1, 1 << 20, "top-k");
            var model = ImageEvaluation.LoadVit(r.GetValue(checkpoint)!, "predict");
            var c = model.Config;
            var pixels = ImageFolder.ReadImage(r.GetValue(image)!, c.ImageSize, c.ImageSize, c.NumChannels);
            var probabilities = model.Probabilities(pixels, 1);
            var names = c.ClassNames;
            int width = names.Max(n => n.Length);
            foreach (int label in Enumerable.Range(0, names.Length).OrderByDescending(i => probabilities[i]).ThenBy(i => i).Take(r.GetValue(top)))
                Console.WriteLine($"{names[label].PadRight(width)}  {probabilities[label]:P2}");
            return Cli.Ok;
        }));
        return command;
    }
}
