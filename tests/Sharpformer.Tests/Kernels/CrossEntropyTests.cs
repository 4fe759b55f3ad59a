using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Fused log-softmax + cross-entropy against a double-precision reference on awkward shapes (both SIMD paths,
/// 1 and 2 threads, ignored rows), finite differences of the kernel's own loss, and argument checks.
/// </summary>
[Collection("Simd")]
public class CrossEntropyTests
{
    static (float[] logits, int[] targets) Case(int rows, int vocab, int seed)
    {
        var logits = Random(rows * vocab, seed, scale: 4);
        if (rows > 1) for (int c = 0; c < vocab; c++) logits[vocab + c] += 100f; // exp would overflow float: the max must be subtracted
        var r = new Random(seed + 1);
        var targets = new int[rows];
        for (int i = 0; i < rows; i++) targets[i] = i % 5 == 2 ? CrossEntropy.IgnoreIndex : r.Next(vocab);
        return (logits, targets);
    }

    /// <summary>Double-precision log-sum-exp per row, mean loss over counted rows.</summary>
    static (double[] lse, double loss, int count) Reference(float[] logits, int[] targets, int rows, int vocab)
    {
        var lse = new double[rows];
        double total = 0; int count = 0;
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < vocab; c++) max = Math.Max(max, logits[r * vocab + c]);
            double s = 0;
            for (int c = 0; c < vocab; c++) s += Math.Exp(logits[r * vocab + c] - max);
            lse[r] = max + Math.Log(s);
            if (targets[r] == CrossEntropy.IgnoreIndex) continue;
            total += lse[r] - logits[r * vocab + targets[r]];
            count++;
        }
        return (lse, count == 0 ? 0 : total / count, count);
    }

    public static TheoryData<int, int> Shapes => new()
    {
        { 1, 1 }, { 1, 65 }, { 3, 1 }, { 3, 3 }, { 3, 17 }, { 17, 65 }, { 65, 257 }, { 65, 3 }, { 17, 768 },
        { 2048, 65 },  // crosses the parallel threshold with many small rows
        { 40, 50304 }, // GPT-2's padded vocabulary
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesDoubleReference(int rows, int vocab)
    {
        var (logits, targets) = Case(rows, vocab, rows * 31 + vocab);
        var (refLse, refLoss, refCount) = Reference(logits, targets, rows, vocab);
        const float dLoss = 1.75f;
        var firstOfPath = new Dictionary<SimdPath, (float loss, float[] lse, float[] d)>();
        ForEachConfig((path, threads) =>
        {
            var lse = new float[rows];
            float loss = CrossEntropy.Forward(logits, targets, lse, rows, vocab, out int count);
            Assert.Equal(refCount, count);
            Assert.True(Math.Abs(loss - refLoss) <= 2e-6 * (1 + Math.Abs(refLoss)), $"loss {loss}, expected {refLoss} ({path}, {threads} threads)");
            for (int r = 0; r < rows; r++)
                Assert.True(Math.Abs(lse[r] - refLse[r]) <= 2e-6 * (1 + Math.Abs(refLse[r])), $"lse[{r}] = {lse[r]}, expected {refLse[r]} ({path})");

            var d = Enumerable.Repeat(float.NaN, rows * vocab).ToArray(); // overwritten, never read
            CrossEntropy.Backward(logits, targets, lse, d, rows, vocab, count, dLoss);
            double scale = (double)dLoss / count;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < vocab; c++)
                {
                    double expected = targets[r] == CrossEntropy.IgnoreIndex ? 0
                        : (Math.Exp(logits[r * vocab + c] - refLse[r]) - (c == targets[r] ? 1 : 0)) * scale;
                    Assert.True(Math.Abs(d[r * vocab + c] - expected) <= 1e-5 * scale, $"dlogits[{r},{c}] = {d[r * vocab + c]}, expected {expected} ({path}, {threads} threads)");
                }

            // Rows are independent, so nothing may change with the thread count or on a repeat.
            if (firstOfPath.TryGetValue(path, out var first))
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(first.loss), BitConverter.SingleToInt32Bits(loss));
                BitEqual(first.lse, lse, "lse across thread counts");
                BitEqual(first.d, d, "dlogits across thread counts");
            }
            else firstOfPath[path] = (loss, lse, d);
            var again = new float[rows];
            Assert.Equal(BitConverter.SingleToInt32Bits(loss), BitConverter.SingleToInt32Bits(CrossEntropy.Forward(logits, targets, again, rows, vocab, out _)));
            BitEqual(lse, again, "lse on a repeat");
        });
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        // Central differences of the kernel's float loss, taken in double: with eps = 1e-2 the float rounding
        // of the loss (~3e-7) contributes ~3e-5 and the truncation error ~1e-5; tolerance 2e-4.
        const int rows = 4, vocab = 17;
        var (logits, targets) = Case(rows, vocab, 7);
        for (int c = 0; c < vocab; c++) logits[vocab + c] -= 100f; // keep the values small for the float loss
        targets[1] = CrossEntropy.IgnoreIndex;
        const float dLoss = 2.5f, eps = 1e-2f;
        ForEachConfig((path, _) =>
        {
            var lse = new float[rows];
            CrossEntropy.Forward(logits, targets, lse, rows, vocab, out int count);
            var d = new float[rows * vocab];
            CrossEntropy.Backward(logits, targets, lse, d, rows, vocab, count, dLoss);
            for (int i = 0; i < logits.Length; i++)
            {
                float saved = logits[i];
                logits[i] = saved + eps;
                double up = CrossEntropy.Forward(logits, targets, new float[rows], rows, vocab, out _);
                logits[i] = saved - eps;
                double down = CrossEntropy.Forward(logits, targets, new float[rows], rows, vocab, out _);
                logits[i] = saved;
                double fd = dLoss * (up - down) / (2.0 * eps);
                Assert.True(Math.Abs(d[i] - fd) <= 2e-4, $"dlogits[{i}] = {d[i]}, finite difference {fd} ({path})");
            }
        }, threadCounts: [1]);
    }

    [Fact]
    public void AllIgnoredRowsGiveZeroLossAndZeroGradient()
    {
        var logits = Random(3 * 17, 3);
        int[] targets = [-1, -1, -1];
        var lse = new float[3];
        Assert.Equal(0f, CrossEntropy.Forward(logits, targets, lse, 3, 17, out int count));
        Assert.Equal(0, count);
        var d = Enumerable.Repeat(5f, logits.Length).ToArray();
        CrossEntropy.Backward(logits, targets, lse, d, 3, 17, count);
        Assert.All(d, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void BadArgumentsThrowNamingShapesBeforeWriting()
    {
        var logits = Random(3 * 17, 1);
        var lse = new float[] { 9, 9, 9 };
        var ex = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(logits, new[] { 0, 17, 1 }, lse, 3, 17, out _));
        Assert.Contains("17", ex.Message);
        Assert.All(lse, v => Assert.Equal(9f, v));
        Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(logits, new[] { 0, -2, 1 }, lse, 3, 17, out _));
        ex = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(logits, new[] { 0, 1 }, lse, 3, 17, out _));
        Assert.Contains("[3, 17]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(logits, new[] { 0, 1, 2 }, lse, 3, 16, out _));
        Assert.Contains("[3, 16]", ex.Message);
        Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(logits, new[] { 0, 1, 2 }, new float[2], 3, 17, out _));
        var d = Enumerable.Repeat(9f, logits.Length).ToArray();
        ex = Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(logits, new[] { 0, 1, 2 }, lse, d.AsSpan(1), 3, 17, 3));
        Assert.Contains("dlogits", ex.Message);
        Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(logits, new[] { 0, 99, 2 }, lse, d, 3, 17, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Backward(logits, new[] { 0, 1, 2 }, lse, d, 3, 17, 4));
        Assert.All(d, v => Assert.Equal(9f, v));
    }

    /// <summary>Label smoothing against the naive definition: target q = ε/V everywhere plus 1 - ε on the gold class, loss = -Σ q·log softmax.</summary>
    [Theory]
    [InlineData(3, 17, 0.1f)]
    [InlineData(65, 257, 0.1f)]
    [InlineData(17, 1, 0.3f)]
    [InlineData(2048, 65, 0.25f)]
    public void LabelSmoothingMatchesNaiveReference(int rows, int vocab, float eps)
    {
        var (logits, targets) = Case(rows, vocab, rows + vocab);
        var (refLse, _, refCount) = Reference(logits, targets, rows, vocab);
        double total = 0;
        var expected = new double[rows * vocab];
        const float dLoss = 1.5f;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == CrossEntropy.IgnoreIndex) continue;
            for (int c = 0; c < vocab; c++)
            {
                double q = eps / vocab + (c == targets[r] ? 1 - eps : 0), logp = logits[r * vocab + c] - refLse[r];
                total -= q * logp;
                expected[r * vocab + c] = (Math.Exp(logp) - q) * dLoss / refCount;
            }
        }
        double refLoss = total / refCount;
        ForEachConfig((path, threads) =>
        {
            var lse = new float[rows];
            float loss = CrossEntropy.Forward(logits, targets, lse, rows, vocab, out int count, eps);
            Assert.Equal(refCount, count);
            Assert.True(Math.Abs(loss - refLoss) <= 1e-5 * (1 + Math.Abs(refLoss)), $"loss {loss}, expected {refLoss} ({path}, {threads} threads)");
            var d = Enumerable.Repeat(float.NaN, rows * vocab).ToArray();
            CrossEntropy.Backward(logits, targets, lse, d, rows, vocab, count, dLoss, eps);
            double scale = (double)dLoss / count;
            for (int i = 0; i < d.Length; i++)
                Assert.True(Math.Abs(d[i] - expected[i]) <= 1e-5 * scale, $"dlogits[{i}] = {d[i]}, expected {expected[i]} ({path})");
        });
    }

    [Fact]
    public void LabelSmoothingBackwardMatchesFiniteDifferences()
    {
        const int rows = 4, vocab = 17;
        const float eps = 0.1f, dLoss = 2.5f, h = 1e-2f;
        var (logits, targets) = Case(rows, vocab, 11);
        for (int c = 0; c < vocab; c++) logits[vocab + c] -= 100f;
        targets[1] = CrossEntropy.IgnoreIndex;
        var lse = new float[rows];
        CrossEntropy.Forward(logits, targets, lse, rows, vocab, out int count, eps);
        var d = new float[rows * vocab];
        CrossEntropy.Backward(logits, targets, lse, d, rows, vocab, count, dLoss, eps);
        for (int i = 0; i < logits.Length; i++)
        {
            float saved = logits[i];
            logits[i] = saved + h;
            double up = CrossEntropy.Forward(logits, targets, new float[rows], rows, vocab, out _, eps);
            logits[i] = saved - h;
            double down = CrossEntropy.Forward(logits, targets, new float[rows], rows, vocab, out _, eps);
            logits[i] = saved;
            double fd = dLoss * (up - down) / (2.0 * h);
            Assert.True(Math.Abs(d[i] - fd) <= 2e-4, $"dlogits[{i}] = {d[i]}, finite difference {fd}");
        }
    }

    [Fact]
    public void LabelSmoothingOutsideZeroToOneIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(new float[3], [0], new float[1], 1, 3, out _, 1f));
}
