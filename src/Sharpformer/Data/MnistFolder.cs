namespace Sharpformer.Data;

/// <summary>
/// A folder holding MNIST or Fashion-MNIST's four IDX files under their standard names
/// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), each
/// plain or gzipped (".gz"). Debian's dataset-fashion-mnist package installs the gzipped ones in
/// <see cref="FashionMnistDefaultFolder"/>.
/// </summary>
public static class MnistFolder
{
    public const string FashionMnistDefaultFolder = "/usr/share/datasets/fashion-mnist/";

    /// <summary>Fashion-MNIST's ten classes in label order (Zalando's README).</summary>
    public static readonly string[] FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static readonly string[] MnistClasses = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>Fashion-MNIST's training (60,000) and test (10,000) images from <paramref name="folder"/>, by default the Debian package's.</summary>
    public static (ImageSet Train, ImageSet Test) LoadFashionMnist(string? folder = null) =>
        Load(folder ?? FashionMnistDefaultFolder, FashionMnistClasses, "Fashion-MNIST",
            "install it with `apt-get update && apt-get install dataset-fashion-mnist`, or give --input DIR with the four IDX files");

    /// <summary>MNIST's training and test images from <paramref name="folder"/> (no Debian package ships MNIST).</summary>
    public static (ImageSet Train, ImageSet Test) LoadMnist(string folder) =>
        Load(folder, MnistClasses, "MNIST", "give --input DIR with the four IDX files (from http://yann.lecun.com/exdb/mnist/ or a mirror)");

    static (ImageSet Train, ImageSet Test) Load(string folder, string[] classes, string dataset, string howToGet)
    {
        string[] names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
        var paths = new string[names.Length];
        for (int i = 0; i < names.Length; i++)
            paths[i] = Find(folder, names[i])
                ?? throw new FileNotFoundException($"{dataset} not found: {folder} has no {names[i]} (or {names[i]}.gz); {howToGet}.",
                    Path.Combine(folder, names[i]));
        return (Read(paths[0], paths[1], classes), Read(paths[2], paths[3], classes));
    }

    /// <summary>The file <paramref name="name"/> or <paramref name="name"/>.gz in the folder, or null.</summary>
    static string? Find(string folder, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            var path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>An image file and its label file as one set: counts must agree and labels name a class.</summary>
    public static ImageSet Read(string imagesPath, string labelsPath, string[] classNames)
    {
        var (count, rows, cols, pixels) = Idx.ReadImages(imagesPath);
        var bytes = Idx.ReadLabels(labelsPath);
        if (bytes.Length != count)
            throw new InvalidDataException($"{imagesPath} holds {count} images but {labelsPath} holds {bytes.Length} labels.");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (bytes[i] >= classNames.Length)
                throw new InvalidDataException($"{labelsPath}: label {bytes[i]} of image {i} is not one of the {classNames.Length} classes.");
            labels[i] = bytes[i];
        }
        return new ImageSet(pixels, labels, 1, rows, cols, classNames);
    }
}
