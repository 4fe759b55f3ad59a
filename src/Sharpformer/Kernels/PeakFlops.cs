using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// The machine's fp32 peak, measured: independent FMA chains (enough to hide FMA latency) on every
/// thread for a fixed time. Benchmarks report achieved GFLOP/s as a fraction of this.
/// </summary>
public static class PeakFlops
{
    public static double Measure(int threads, TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Sink(Vector512.IsHardwareAccelerated ? Burst512() : Burst256()); // compile before timing
        var flops = new double[threads];
        var workers = new Thread[threads];
        long deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() => flops[id] = Vector512.IsHardwareAccelerated ? Run512(deadline) : Run256(deadline));
            workers[t].Start();
        }
        var watch = Stopwatch.StartNew();
        foreach (var w in workers) w.Join();
        return flops.Sum() / watch.Elapsed.TotalSeconds / 1e9;
    }

    const int Rounds = 1 << 16;

    static double Run512(long deadline)
    {
        double flops = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            Sink(Burst512());
            flops += Rounds * 12.0 * 16 * 2;
        }
        return flops;
    }

    static double Run256(long deadline)
    {
        double flops = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            Sink(Burst256());
            flops += Rounds * 12.0 * 8 * 2;
        }
        return flops;
    }

    // The bursts make no calls, so the twelve accumulators stay in registers (vector registers are not
    // preserved across calls, and a call in the loop would make the JIT keep them on the stack).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Burst512()
    {
        var a = Vector512.Create(0.999f); var b = Vector512.Create(1e-7f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Rounds; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b);
            c2 = Vector512.FusedMultiplyAdd(c2, a, b); c3 = Vector512.FusedMultiplyAdd(c3, a, b);
            c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
            c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b);
            c8 = Vector512.FusedMultiplyAdd(c8, a, b); c9 = Vector512.FusedMultiplyAdd(c9, a, b);
            c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).GetElement(0);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Burst256()
    {
        var a = Vector256.Create(0.999f); var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Rounds; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
            c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
            c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
            c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
            c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).GetElement(0);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void Sink(float _) { }
}
