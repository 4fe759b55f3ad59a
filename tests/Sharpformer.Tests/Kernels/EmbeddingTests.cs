using Sharpformer.Kernels;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Embedding lookup is an exact copy; the scatter-add backward equals the serial in-order float loop bit for
/// bit (the contract's order of i) on every path and thread count, and a double reference within 1e-6.
/// </summary>
[Collection("Simd")]
public class EmbeddingTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        // ids, dim, table rows
        { 1, 1, 1 }, { 3, 3, 2 }, { 17, 17, 5 }, { 65, 65, 65 }, { 17, 257, 3 }, { 3, 768, 50 },
        { 1024, 384, 65 },  // parallel: many repeated ids
        { 300, 768, 1000 }, // parallel: mostly distinct ids
    };

    static int[] Ids(int count, int rows, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => r.Next(rows)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardCopiesAndBackwardAddsInOrder(int count, int dim, int rows)
    {
        var ids = Ids(count, rows, count + dim);
        var table = Random(rows * dim, 1);
        var dy = Random(count * dim, 2);
        var dTable0 = Random(rows * dim, 3);

        // The contract's order: dTable[ids[i]] += dy[i] for i = 0, 1, ... in float.
        var serial = (float[])dTable0.Clone();
        var exact = dTable0.Select(v => (double)v).ToArray();
        for (int i = 0; i < count; i++)
            for (int c = 0; c < dim; c++)
            {
                serial[ids[i] * dim + c] += dy[i * dim + c];
                exact[ids[i] * dim + c] += dy[i * dim + c];
            }

        ForEachConfig((path, threads) =>
        {
            var y = new float[count * dim];
            Embedding.Forward(ids, table, y, dim);
            for (int i = 0; i < count; i++)
                BitEqual(table.AsSpan(ids[i] * dim, dim), y.AsSpan(i * dim, dim), $"y[{i}] ({path}, {threads} threads)");

            var dTable = (float[])dTable0.Clone();
            Embedding.Backward(ids, dy, dTable, dim);
            BitEqual(serial, dTable, $"dTable vs the in-order loop ({path}, {threads} threads)");
            for (int j = 0; j < dTable.Length; j++)
                Assert.True(Math.Abs(dTable[j] - exact[j]) <= 1e-6 * (1 + count), $"dTable[{j}] = {dTable[j]}, expected {exact[j]}");
        });
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        // L = sum w * y(table); central differences in double with eps = 1e-2 (y is a copy, so the
        // difference is exact up to the float rounding of the perturbed entry: tolerance 1e-4).
        const int dim = 3, rows = 4; const float eps = 1e-2f;
        int[] ids = [2, 0, 2, 3, 2];
        var table = Random(rows * dim, 1); var w = Random(ids.Length * dim, 2);
        var y = new float[ids.Length * dim];
        double Loss()
        {
            Embedding.Forward(ids, table, y, dim);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)w[i] * y[i];
            return s;
        }
        var dTable = new float[rows * dim];
        Embedding.Backward(ids, w, dTable, dim);
        for (int j = 0; j < table.Length; j++)
        {
            float saved = table[j];
            table[j] = saved + eps; double up = Loss();
            table[j] = saved - eps; double down = Loss();
            table[j] = saved;
            double fd = (up - down) / (2.0 * eps);
            Assert.True(Math.Abs(dTable[j] - fd) <= 1e-4, $"dTable[{j}] = {dTable[j]}, finite difference {fd}");
        }
        Assert.Equal(0f, dTable[1 * dim]); // row 1 is never looked up
    }

    [Fact]
    public void BadArgumentsThrowBeforeWriting()
    {
        var table = Random(5 * 4, 1);
        var y = Enumerable.Repeat(7f, 3 * 4).ToArray();
        var ex = Assert.Throws<ArgumentException>(() => Embedding.Forward([0, 5, 1], table, y, 4));
        Assert.Contains("5 rows", ex.Message);
        Assert.Throws<ArgumentException>(() => Embedding.Forward([0, -1, 1], table, y, 4));
        Assert.All(y, v => Assert.Equal(7f, v));
        ex = Assert.Throws<ArgumentException>(() => Embedding.Forward([0, 1, 2], table, y, 3));
        Assert.Contains("dim 3", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Embedding.Forward([0, 1], table, y, 4));
        Assert.Contains("12", ex.Message);
        var dTable = Enumerable.Repeat(7f, 5 * 4).ToArray();
        Assert.Throws<ArgumentException>(() => Embedding.Backward([0, 9, 1], y, dTable, 4));
        Assert.Throws<ArgumentException>(() => Embedding.Backward([0, 1], y, dTable, 4));
        Assert.Throws<ArgumentException>(() => Embedding.Backward([0, 1, 2], y, dTable, 0));
        Assert.All(dTable, v => Assert.Equal(7f, v));
    }
}
