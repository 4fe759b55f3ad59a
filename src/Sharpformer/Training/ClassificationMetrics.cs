namespace Sharpformer.Training;

/// <summary>
/// Accuracy, per-class precision / recall / F1 and their unweighted (macro) mean, from a confusion matrix whose rows
/// are true classes and columns predicted ones. A class never predicted has precision 0, one never present recall 0
/// (scikit-learn's zero_division=0).
/// </summary>
public sealed class ClassificationMetrics
{
    public ClassificationMetrics(int classes) => Confusion = new long[classes, classes];

    public long[,] Confusion { get; }
    public int Classes => Confusion.GetLength(0);
    public long Count { get; private set; }

    public void Add(int actual, int predicted)
    {
        if ((uint)actual >= (uint)Classes || (uint)predicted >= (uint)Classes)
            throw new ArgumentOutOfRangeException(nameof(actual), $"Classes must be in [0, {Classes}); got actual {actual}, predicted {predicted}.");
        Confusion[actual, predicted]++;
        Count++;
    }

    public static ClassificationMetrics From(ReadOnlySpan<int> actual, ReadOnlySpan<int> predicted, int classes)
    {
        if (actual.Length != predicted.Length) throw new ArgumentException($"{actual.Length} labels but {predicted.Length} predictions.");
        var metrics = new ClassificationMetrics(classes);
        for (int i = 0; i < actual.Length; i++) metrics.Add(actual[i], predicted[i]);
        return metrics;
    }

    public double Accuracy => Count == 0 ? 0 : Enumerable.Range(0, Classes).Sum(c => Confusion[c, c]) / (double)Count;

    public double Precision(int c)
    {
        long predicted = Enumerable.Range(0, Classes).Sum(a => Confusion[a, c]);
        return predicted == 0 ? 0 : Confusion[c, c] / (double)predicted;
    }

    public double Recall(int c)
    {
        long actual = Enumerable.Range(0, Classes).Sum(p => Confusion[c, p]);
        return actual == 0 ? 0 : Confusion[c, c] / (double)actual;
    }

    public double F1(int c)
    {
        double p = Precision(c), r = Recall(c);
        return p + r == 0 ? 0 : 2 * p * r / (p + r);
    }

    public double MacroF1 => Enumerable.Range(0, Classes).Average(F1);
}
