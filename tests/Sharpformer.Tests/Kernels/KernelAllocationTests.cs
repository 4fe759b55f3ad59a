using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Once warm, the layer kernels allocate no managed memory per call, on the inline and the parallel paths.
/// Runs alone (the "Pool" collection): another test changing the process-wide thread count mid-measurement
/// would grow the worker pool and be counted here.
/// </summary>
[Collection("Pool")]
public class KernelAllocationTests
{
    [Theory]
    [InlineData(3, 17)]    // inline
    [InlineData(2048, 384)] // parallel, with rented LayerNorm partials
    public void SteadyStateCallsAllocateNothing(int rows, int cols)
    {
        int n = rows * cols;
        var x = Random(n, 1); var dy = Random(n, 2); var y = new float[n]; var dx = new float[n];
        var g = Random(cols, 3); var b = Random(cols, 4); var dg = new float[cols]; var db = new float[cols];
        var mean = new float[rows]; var rstd = new float[rows]; var keep = new byte[n];
        var ids = Enumerable.Range(0, rows).Select(i => i % 7).ToArray(); var table = Random(7 * cols, 5);
        var targets = Enumerable.Range(0, rows).Select(i => i % 5 == 0 ? -1 : i % cols).ToArray();
        var lse = new float[rows]; var m = new float[n]; var v = new float[n];
        int step = 0;
        Action[] calls =
        [
            () => LayerNorm.Forward(x, g, b, y, mean, rstd, rows, cols),
            () => LayerNorm.Backward(dy, x, g, mean, rstd, dx, dg, db, rows, cols),
            () => Activations.GeluForward(x, y),
            () => Activations.GeluErfBackward(x, dy, dx),
            () => Dropout.Forward(x, y, keep, 0.1f, 5),
            () => Dropout.Backward(dy, keep, dx, 0.1f),
            () => Embedding.Forward(ids, table, y.AsSpan(0, rows * cols), cols),
            () => Embedding.Backward(ids, dy, table, cols),
            () => CrossEntropy.Forward(x, targets, lse, rows, cols, out _),
            () => CrossEntropy.Backward(x, targets, lse, dx, rows, cols, rows, 1f),
            () => Optim.AdamW(y, dy, m, v, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, ++step),
            () => Optim.SumOfSquares(x),
        ];
        ForEachConfig((path, threads) =>
        {
            for (int k = 0; k < calls.Length; k++)
            {
                calls[k](); calls[k](); // warm: per-thread jobs, pooled buffers, JIT tiers
                // A systematic allocation shows in every attempt; a one-off (the runtime re-jitting a method, the
                // shared ArrayPool trimming after a GC) does not, so one clean attempt of three suffices.
                long allocated = long.MaxValue;
                for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    for (int rep = 0; rep < 5; rep++) calls[k]();
                    allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                }
                Assert.True(allocated == 0, $"call {k} allocated {allocated} bytes over 5 calls, in each of 3 attempts ({path}, {threads} threads, [{rows}, {cols}])");
            }
        });
    }
}
