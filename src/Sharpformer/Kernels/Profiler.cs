using System.Diagnostics;

namespace Sharpformer.Kernels;

/// <summary>The kernel families <see cref="Profiler"/> keeps time for.</summary>
public enum KernelKind { Gemm, Attention, LayerNorm, Activation, CrossEntropy, Embedding, Dropout, Optimizer }

/// <summary>
/// Wall time and calls per kernel family, kept only while <see cref="Enabled"/> (`sharpformer bench --profile`).
/// Each kernel entry point opens a <see cref="Scope"/>; off, that costs one static read.
/// </summary>
public static class Profiler
{
    static readonly long[] ticks = new long[Enum.GetValues<KernelKind>().Length];
    static readonly long[] calls = new long[ticks.Length];

    public static bool Enabled { get; set; }

    public static void Reset()
    {
        Array.Clear(ticks);
        Array.Clear(calls);
    }

    /// <summary>Seconds spent in each kernel family since the last reset, and the number of calls.</summary>
    public static IReadOnlyList<(KernelKind Kind, double Seconds, long Calls)> Totals() =>
        Enum.GetValues<KernelKind>().Select(k => (k, (double)Volatile.Read(ref ticks[(int)k]) / Stopwatch.Frequency, Volatile.Read(ref calls[(int)k]))).ToArray();

    internal static Scope Time(KernelKind kind) => new(kind, Enabled ? Stopwatch.GetTimestamp() : 0);

    internal readonly ref struct Scope(KernelKind kind, long start)
    {
        public void Dispose()
        {
            if (start == 0) return;
            Interlocked.Add(ref ticks[(int)kind], Stopwatch.GetTimestamp() - start);
            Interlocked.Increment(ref calls[(int)kind]);
        }
    }
}
