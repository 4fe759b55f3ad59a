using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>GEMM against a naive double-accumulating reference; relative tolerance 1e-5 of the row's magnitude.</summary>
[Collection("Simd")]
public class GemmTests
{
    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }

    static double[] Reference(float[] a, float[] b, float[]? c0, float[]? bias, int m, int k, int n, bool ta, bool tb, out double[] scale)
    {
        var c = new double[m * n];
        scale = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, mag = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                    s += t; mag += Math.Abs(t);
                }
                if (bias is not null) { s += bias[j]; mag += Math.Abs(bias[j]); }
                if (c0 is not null) { s += c0[i * n + j]; mag += Math.Abs(c0[i * n + j]); }
                c[i * n + j] = s;
                scale[i * n + j] = mag + 1e-6;
            }
        return c;
    }

    /// <summary>C = op(A)·op(B) (+ bias) (+ c0 when accumulating) against the reference, within 1e-5 of each element's magnitude.</summary>
    static void AssertMatchesReference(float[] a, float[] b, float[]? bias, float[] c0, int m, int k, int n, bool ta, bool tb, bool accumulate, string label)
    {
        var c = (float[])c0.Clone();
        Gemm.Multiply(a, b, c, m, k, n, ta, tb, bias, accumulate);
        var expected = Reference(a, b, accumulate ? c0 : null, bias, m, k, n, ta, tb, out var scale);
        for (int i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-5 * scale[i],
                $"[{m}x{k}x{n}] ta={ta} tb={tb} bias={bias is not null} acc={accumulate} {label}: C[{i}] = {c[i]}, expected {expected[i]}");
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 1, 65, 17 }, { 3, 17, 65 }, { 17, 3, 257 }, { 65, 257, 3 }, { 5, 64, 32 },
        { 12, 192, 32 }, { 13, 193, 33 }, { 257, 65, 17 }, { 300, 513, 129 }, { 29, 1024, 45 }, { 100, 0, 7 }, { 2, 385, 1153 },
        { 15, 130, 70 }, { 16, 33, 9 }, { 17, 130, 70 }, // the most rows of the dot-product path (odd and even), and one past it
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesReferenceForEveryLayoutAndPath(int m, int k, int n)
    {
        var saved = (Simd.Path, Parallelism.ThreadCount);
        try
        {
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
                foreach (int threads in new[] { 1, 2 })
                    foreach (bool ta in new[] { false, true })
                        foreach (bool tb in new[] { false, true })
                        {
                            Simd.Path = path;
                            Parallelism.ThreadCount = threads;
                            var a = Random(m * k, 1); var b = Random(k * n, 2); var bias = Random(n, 3); var c0 = Random(m * n, 4);
                            foreach (var (useBias, accumulate) in new[] { (false, false), (true, false), (true, true) })
                                AssertMatchesReference(a, b, useBias ? bias : null, c0, m, k, n, ta, tb, accumulate, $"{path} threads={threads}");
                        }
        }
        finally { (Simd.Path, Parallelism.ThreadCount) = saved; }
    }

    [Theory]
    [InlineData(200, 1024, 600)] // copied per item: three column blocks, each its own item
    [InlineData(600, 1024, 300)] // copied once per row block: an item runs both column blocks over it
    public void CopiedAMatchesReference(int m, int k, int n)
    {
        // Rows 4 KB apart (k = 1024), or a transposed A, with enough row tiles: A is copied per k slice.
        var saved = (Simd.Path, Parallelism.ThreadCount);
        try
        {
            Parallelism.ThreadCount = 2;
            var a = Random(m * k, 11); var b = Random(k * n, 12); var bias = Random(n, 13); var c0 = Random(m * n, 14);
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
                foreach (bool ta in new[] { false, true })
                    foreach (bool accumulate in new[] { false, true })
                    {
                        Simd.Path = path;
                        AssertMatchesReference(a, b, bias, c0, m, k, n, ta, tb: true, accumulate, $"{path}");
                    }
        }
        finally { (Simd.Path, Parallelism.ThreadCount) = saved; }
    }

    [Theory]
    [InlineData(400, 100, 700, false)]  // row block by column block
    [InlineData(800, 1024, 300, true)]  // A copied, one item per row block over a group's column blocks
    public void PackedBSharedInGroupsMatchesReferenceAndWholeB(int m, int k, int n, bool transA)
    {
        // Several row blocks share one packed B; with too little room for all of it, it goes in groups of column blocks.
        var saved = (Simd.Path, Parallelism.ThreadCount, Gemm.SharedB);
        try
        {
            var a = Random(m * k, 21); var b = Random(k * n, 22); var bias = Random(n, 23);
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    (Simd.Path, Parallelism.ThreadCount, Gemm.SharedB) = (path, threads, saved.SharedB);
                    var whole = new float[m * n];
                    Gemm.Multiply(a, b, whole, m, k, n, transA, transB: true, bias);
                    Gemm.SharedB = 64 * 1024; // a few panels per group
                    var grouped = new float[m * n];
                    Gemm.Multiply(a, b, grouped, m, k, n, transA, transB: true, bias);
                    KernelCases.BitEqual(whole, grouped, $"{path}, {threads} threads");
                    if (threads == 2) AssertMatchesReference(a, b, bias, new float[m * n], m, k, n, transA, tb: true, accumulate: false, $"{path} grouped");
                }
        }
        finally { (Simd.Path, Parallelism.ThreadCount, Gemm.SharedB) = saved; }
    }

    [Theory]
    [InlineData(400, 3000, 200, false)] // eight k slices of 376: groups of three, three and two
    [InlineData(400, 3000, 200, true)]  // the same with A transposed (weight gradients), copied to strips
    public void PackedBSharedInGroupsOfKSlicesMatchesReferenceAndPerItemB(int m, int k, int n, bool transA)
    {
        // Where one column block's packed B over all of k is too large to share (weight gradients over many
        // tokens), it is shared a group of k slices at a time; where not even a slice fits, every item packs its own.
        var saved = (Simd.Path, Parallelism.ThreadCount, Gemm.SharedB);
        try
        {
            var a = Random(m * k, 31); var b = Random(k * n, 32); var bias = Random(n, 33); var c0 = Random(m * n, 34);
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
                foreach (int threads in new[] { 1, 2, 3 })
                    foreach (bool accumulate in new[] { false, true })
                    {
                        (Simd.Path, Parallelism.ThreadCount) = (path, threads);
                        var results = new List<float[]>();
                        foreach (long room in new[] { saved.SharedB, 1L << 20, 1 }) // all of B shared, slice groups, per item
                        {
                            Gemm.SharedB = room;
                            var c = (float[])c0.Clone();
                            Gemm.Multiply(a, b, c, m, k, n, transA, transB: false, bias, accumulate);
                            results.Add(c);
                        }
                        Gemm.SharedB = saved.SharedB;
                        KernelCases.BitEqual(results[0], results[1], $"{path}, {threads} threads, accumulate {accumulate}: slice groups");
                        KernelCases.BitEqual(results[0], results[2], $"{path}, {threads} threads, accumulate {accumulate}: per item");
                        if (threads == 2) AssertMatchesReference(a, b, bias, c0, m, k, n, transA, tb: false, accumulate, $"{path}");
                    }
        }
        finally { (Simd.Path, Parallelism.ThreadCount, Gemm.SharedB) = saved; }
    }

    [Fact]
    public void WideProductsWithLongKSlicesMatchReference()
    {
        // Rows of C of 8192 floats or more take k slices of up to 768: k = 776 runs as 392 + 384, not in three.
        int m = 30, k = 776, n = 8200;
        var a = Random(m * k, 41); var b = Random(k * n, 42); var bias = Random(n, 43); var c0 = Random(m * n, 44);
        AssertMatchesReference(a, b, bias, c0, m, k, n, ta: false, tb: true, accumulate: false, "wide");
        AssertMatchesReference(a, b, null, c0, m, k, n, ta: true, tb: false, accumulate: true, "wide, accumulating");
    }

    [Fact]
    public void RepeatRunsAreBitIdentical()
    {
        int m = 200, k = 300, n = 500;
        var a = Random(m * k, 5); var b = Random(k * n, 6);
        var first = new float[m * n]; var second = new float[m * n];
        Gemm.Multiply(a, b, first, m, k, n, transB: true);
        Gemm.Multiply(a, b, second, m, k, n, transB: true);
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData(1, 128, 384)]  // a decode step's projection: split over threads
    [InlineData(3, 512, 1000)] // several streams, a column tail
    [InlineData(1, 65, 17)]    // small enough to stay on one thread
    public void DecodeProductsAreBitIdenticalForAnyThreadCount(int m, int k, int n)
    {
        var saved = Parallelism.ThreadCount;
        try
        {
            var a = Random(m * k, 7); var b = Random(k * n, 8); var bias = Random(n, 9);
            foreach (bool tb in new[] { true, false })
            {
                var results = new List<float[]>();
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    Parallelism.ThreadCount = threads;
                    var c = new float[m * n];
                    Gemm.Multiply(a, b, c, m, k, n, transB: tb, bias: bias);
                    results.Add(c);
                }
                Assert.Equal(results[0], results[1]);
                Assert.Equal(results[0], results[2]);
            }
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    [Theory]
    [InlineData(200)] // B of 300 KB: four rows of B at a time
    [InlineData(403)] // B of 605 KB: streamed a row at a time, and a column tail
    public void DecodeRowsDoNotDependOnHowManyRowsRunTogether(int n)
    {
        // Batched sampling equals sampling each stream alone: a row of a product of up to 16 rows is bit-identical
        // to the same row computed by itself (paired rows sum in the same order as single ones).
        int k = 384;
        var a = Random(16 * k, 21); var b = Random(k * n, 22); var bias = Random(n, 23);
        foreach (int m in new[] { 2, 5, 16 })
        {
            var all = new float[m * n];
            Gemm.Multiply(a.AsSpan(0, m * k), b, all, m, k, n, transB: true, bias: bias);
            for (int i = 0; i < m; i++)
            {
                var one = new float[n];
                Gemm.Multiply(a.AsSpan(i * k, k), b, one, 1, k, n, transB: true, bias: bias);
                Assert.Equal(one, all[(i * n)..((i + 1) * n)]);
            }
        }
    }

    [Theory]
    [InlineData(48, 128, 384)]  // the streams of a rebuilt sampling cache: 48 rows alone, 480 together
    [InlineData(20, 1024, 100)] // edge tiles (20 and 200 rows are not multiples of 12), and A copied (rows 4 KB apart) when many
    [InlineData(40, 800, 8200)] // rows of C wide enough for the long k slices, and packed B shared in groups of column blocks
    public void BlockedRowsDoNotDependOnHowManyRowsRunTogether(int m, int k, int n)
    {
        // Sampling streams whose caches are rebuilt together equal streams rebuilt alone: a row of the blocked
        // path is computed the same way whatever the other rows are.
        var a = Random(10 * m * k, 31); var b = Random(k * n, 32); var bias = Random(n, 33);
        var all = new float[10 * m * n];
        Gemm.Multiply(a, b, all, 10 * m, k, n, transB: true, bias: bias);
        for (int s = 0; s < 10; s++)
        {
            var part = new float[m * n];
            Gemm.Multiply(a.AsSpan(s * m * k, m * k), b, part, m, k, n, transB: true, bias: bias);
            Assert.Equal(part, all[(s * m * n)..((s + 1) * m * n)]);
        }
    }

    [Fact]
    public void BadShapesThrowNamingThem()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[5], new float[6], new float[6], 2, 3, 2));
        Assert.Contains("[2x3]", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[6], new float[6], new float[4], 2, 3, 2, bias: new float[3]));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[6], new float[6], new float[3], 2, 3, 2));
    }
}
