using System.CommandLine;
using Sharpformer.Data;

namespace Sharpformer.Cli.Commands;

/// <summary>`prepare fashion-mnist | mnist | images`: labelled images → an <see cref="ImageDataFolder"/>.</summary>
static class ImagePreparation
{
    public const string FashionMnist = "fashion-mnist", Mnist = "mnist", Images = "images";

    public static bool Handles(string kind) => kind is FashionMnist or Mnist or Images;

    public sealed record Settings(int Size, int Channels, double ValFraction, bool Flip);

    /// <summary>The image-only options of `prepare`.</summary>
    public sealed class Options
    {
        readonly Option<int?> size = new("--size") { Description = "Images: resize to SIZE x SIZE pixels (required for `prepare images`)" };
        readonly Option<int?> channels = new("--channels") { Description = "Images: 1 (grey) or 3 (RGB); default 3" };
        readonly Option<double> valFraction = new("--val-fraction") { Description = "Images: share of the training images kept for validation", DefaultValueFactory = _ => 0.1 };
        readonly Option<bool?> flip = new("--flip") { Description = "Images: random horizontal flips in training (default: on, off for mnist digits)" };

        public void AddTo(Command command)
        {
            channels.AcceptOnlyFromAmong("1", "3");
            foreach (var o in new Option[] { size, channels, valFraction, flip }) command.Options.Add(o);
        }

        public Settings Read(ParseResult r, string kind)
        {
            int? s = r.GetValue(size);
            if (kind == Images && s is null) throw new ArgumentException("prepare images needs --size N (the model's image size).");
            if (kind != Images && (s is not null || r.GetValue(channels) is not null))
                throw new ArgumentException($"--size and --channels are for `prepare images`; {kind} images are 28x28 grey.");
            if (s is not null) Models.Settings.InRange(s.Value, 1, 4096, "size");
            return new Settings(s ?? 28, r.GetValue(channels) ?? (kind == Images ? 3 : 1), r.GetValue(valFraction), r.GetValue(flip) ?? kind != Mnist);
        }

        public void EnsureUnused(ParseResult r, string kind)
        {
            if (r.GetValue(size) is not null || r.GetValue(channels) is not null || r.GetValue(flip) is not null || r.GetResult(valFraction) is { Implicit: false })
                throw new ArgumentException($"--size, --channels, --val-fraction and --flip are for images, not for prepare {kind}.");
        }
    }

    public static string DefaultFolder(string kind) => kind switch
    {
        FashionMnist => "data/fashion_mnist",
        Mnist => "data/mnist",
        _ => "data/images",
    };

    public static void Run(string kind, string? input, string? output, Settings settings)
    {
        string outDir = output ?? DefaultFolder(kind);
        var (train, test) = kind switch
        {
            FashionMnist => MnistFolder.LoadFashionMnist(input),
            Mnist => MnistFolder.LoadMnist(input ?? throw new ArgumentException("prepare mnist needs --input DIR with the four IDX files (no Debian package ships MNIST).")),
            _ => (ImageFolder.Load(input ?? throw new ArgumentException("prepare images needs --input DIR (one sub-folder of images per class)."),
                settings.Size, settings.Size, settings.Channels), (ImageSet?)null),
        };
        // torchvision's CIFAR/MNIST recipes pad by 4 of 32 and 2 of 28: about an eighth of the side.
        int padding = Math.Max(1, settings.Size / 12);
        var meta = ImageDataFolder.Write(outDir, train, test, input ?? kind, settings.ValFraction, padding, settings.Flip);
        Console.WriteLine($"{outDir}: {meta.Classes.Length} classes, images [{meta.Channels}, {meta.Height}, {meta.Width}], " +
            string.Join(", ", meta.Splits.Select(s => $"{s.Key} {s.Value:N0}")) +
            $"; mean {string.Join(' ', meta.Mean.Select(m => m.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}, " +
            $"std {string.Join(' ', meta.Std.Select(m => m.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}; " +
            $"augmentation: {meta.Augmentation}");
    }
}
