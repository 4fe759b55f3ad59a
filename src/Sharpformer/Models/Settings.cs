namespace Sharpformer.Models;

/// <summary>
/// The valid range of every kind of setting, checked in one place: model configs and run settings call these,
/// so a huge, negative, NaN or infinite value is one line naming the setting and its range, before anything
/// is allocated.
/// </summary>
public static class Settings
{
    public const int MaxVocabulary = 1 << 24, MaxContext = 1 << 20, MaxLayers = 1024, MaxWidth = 1 << 16;

    public static void InRange(long value, long min, long max, string name)
    {
        if (value < min || value > max) throw new ArgumentException($"{name} must be between {min:N0} and {max:N0}, got {value:N0}.");
    }

    public static void Probability(float value, string name)
    {
        if (!(value >= 0 && value < 1)) throw new ArgumentException($"{name} must be in [0, 1), got {value}.");
    }

    public static void PositiveFinite(double value, string name)
    {
        if (!(value > 0 && double.IsFinite(value))) throw new ArgumentException($"{name} must be positive and finite, got {value}.");
    }

    public static void NonNegativeFinite(double value, string name)
    {
        if (!(value >= 0 && double.IsFinite(value))) throw new ArgumentException($"{name} must be a finite number of at least 0, got {value}.");
    }

    /// <summary>Refuses a model whose weights alone would not fit this machine's memory (training needs about four times that).</summary>
    public static void FitsInMemory(long parameterElements, string what)
    {
        long bytes = parameterElements * sizeof(float), available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (parameterElements < 0 || bytes > available)
            throw new ArgumentException($"{what} would hold {parameterElements:N0} parameters ({bytes / 1e9:F1} GB), more than this machine's {available / 1e9:F1} GB of memory.");
    }
}
