using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Fused attention against a naive double-precision reference (full softmax per row), forward and
/// backward, on packed and separate layouts, causal and not, with padding; tolerance 2e-5 absolute + relative.
/// </summary>
[Collection("Simd")]
public class AttentionTests
{
    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Reference forward and backward; gradients are returned in the same strided layouts.</summary>
    static (double[] O, double[] Lse, double[] Dq, double[] Dk, double[] Dv) Reference(AttentionShape s, float[] q, int qs, int qo, float[] kv, int kvs, int ko, int vo, float[] dO, int[]? lengths)
    {
        int D = s.HeadDim, C = s.Width;
        double scale = 1 / Math.Sqrt(D);
        var o = new double[s.Batch * s.QueryLength * C];
        var lse = new double[s.Batch * s.Heads * s.QueryLength];
        var dq = new double[q.Length]; var dk = new double[kv.Length]; var dv = new double[kv.Length];
        for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.Heads; h++)
                for (int i = 0; i < s.QueryLength; i++)
                {
                    int vis = Attention.Visible(s, lengths, b, i);
                    if (vis == 0) { lse[(b * s.Heads + h) * s.QueryLength + i] = double.NegativeInfinity; continue; }
                    int qi = (b * s.QueryLength + i) * qs + qo + h * D, oi = (b * s.QueryLength + i) * C + h * D;
                    var p = new double[vis];
                    for (int j = 0; j < vis; j++)
                    {
                        int kj = (b * s.KeyLength + j) * kvs + ko + h * D;
                        for (int d = 0; d < D; d++) p[j] += (double)q[qi + d] * kv[kj + d] * scale;
                    }
                    double max = p.Max(), sum = p.Sum(x => Math.Exp(x - max));
                    lse[(b * s.Heads + h) * s.QueryLength + i] = max + Math.Log(sum);
                    for (int j = 0; j < vis; j++) p[j] = Math.Exp(p[j] - max) / sum;
                    for (int j = 0; j < vis; j++)
                        for (int d = 0; d < D; d++) o[oi + d] += p[j] * kv[(b * s.KeyLength + j) * kvs + vo + h * D + d];
                    double di = 0;
                    for (int d = 0; d < D; d++) di += dO[oi + d] * o[oi + d];
                    for (int j = 0; j < vis; j++)
                    {
                        int kj = (b * s.KeyLength + j) * kvs + ko + h * D, vj = (b * s.KeyLength + j) * kvs + vo + h * D;
                        double dp = 0;
                        for (int d = 0; d < D; d++) dp += dO[oi + d] * kv[vj + d];
                        double ds = p[j] * (dp - di) * scale;
                        for (int d = 0; d < D; d++)
                        {
                            dv[vj + d] += p[j] * dO[oi + d];
                            dq[qi + d] += ds * kv[kj + d];
                            dk[kj + d] += ds * q[qi + d];
                        }
                    }
                }
        return (o, lse, dq, dk, dv);
    }

    public static TheoryData<int, int, int, int, int, bool, bool> Cases => new()
    {
        // batch, heads, Tq, Tk, D, causal, padded
        { 1, 1, 1, 1, 8, true, false },
        { 2, 3, 17, 17, 16, true, false },
        { 3, 2, 65, 65, 24, false, true },
        { 1, 4, 130, 130, 64, true, false },
        { 2, 2, 13, 21, 16, false, true },   // cross-attention, Tq < Tk
        { 2, 2, 21, 13, 8, false, false },   // Tq > Tk
        { 1, 6, 1, 77, 64, true, false },    // KV-cached decode step
        { 3, 5, 2, 150, 24, false, true },   // decode steps of several streams: heads split into groups, tiles of keys and a tail
        { 2, 1, 3, 3, 5, true, true },
        { 2, 2, 19, 19, 12, true, false },   // head size not a multiple of 8: transposed K copies take whole 8x8 blocks and a tail
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReference(int batch, int heads, int tq, int tk, int d, bool causal, bool padded)
    {
        var s = new AttentionShape(batch, heads, tq, tk, d, causal);
        int C = s.Width;
        int[]? lengths = padded ? Enumerable.Range(0, batch).Select(b => Math.Max(1, tk - 5 * b - 2)).ToArray() : null;
        bool self = tq == tk;
        // Self-attention reads the packed [B, T, 3C] buffer; cross-attention q [B, Tq, C] and packed kv [B, Tk, 2C].
        int qs = self ? 3 * C : C, kvs = self ? 3 * C : 2 * C, ko = self ? C : 0, vo = self ? 2 * C : C;
        var kv = Random(batch * tk * kvs, 2);
        var q = self ? kv : Random(batch * tq * qs, 1);
        var dO = Random(batch * tq * C, 3);
        var saved = (Simd.Path, Parallelism.ThreadCount);
        try
        {
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256 })
                foreach (int threads in new[] { 1, 2 })
                {
                    Simd.Path = path; Parallelism.ThreadCount = threads;
                    var o = new float[batch * tq * C]; var lse = new float[batch * heads * tq];
                    Attention.Forward(s, q, qs, kv.AsSpan(ko), kv.AsSpan(vo), kvs, o, lse, lengths);
                    var dq = new float[q.Length]; var dkv = self ? dq : new float[kv.Length];
                    Attention.Backward(s, q, qs, kv.AsSpan(ko), kv.AsSpan(vo), kvs, o, lse, dO, dq, dkv.AsSpan(ko), dkv.AsSpan(vo), lengths);
                    var r = Reference(s, q, qs, 0, kv, kvs, ko, vo, dO, lengths);
                    AssertClose(r.O, o, "output");
                    AssertClose(r.Lse, lse, "log-sum-exp");
                    if (self)
                    {
                        var expected = r.Dq.Zip(r.Dk, (x, y) => x + y).Zip(r.Dv, (x, y) => x + y).ToArray();
                        AssertClose(expected, dq, "dqkv");
                    }
                    else
                    {
                        AssertClose(r.Dq, dq, "dq");
                        AssertClose(r.Dk.Zip(r.Dv, (x, y) => x + y).ToArray(), dkv, "dkv");
                    }
                }
        }
        finally { (Simd.Path, Parallelism.ThreadCount) = saved; }
    }

    static void AssertClose(double[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNegativeInfinity(expected[i])) { Assert.Equal(float.NegativeInfinity, actual[i]); continue; }
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 2e-5 * (1 + Math.Abs(expected[i])), $"{what}[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var s = new AttentionShape(1, 2, 5, 5, 4, true);
        int C = s.Width;
        var qkv = Random(5 * 3 * C, 7).Select(x => x * 2).ToArray();
        var w = Random(5 * C, 8);
        double Loss(float[] x)
        {
            var o = new float[5 * C]; var lse = new float[2 * 5];
            Attention.Forward(s, x, 3 * C, x.AsSpan(C), x.AsSpan(2 * C), 3 * C, o, lse);
            return o.Select((v, i) => (double)v * w[i]).Sum();
        }
        var out0 = new float[5 * C]; var lse0 = new float[10];
        Attention.Forward(s, qkv, 3 * C, qkv.AsSpan(C), qkv.AsSpan(2 * C), 3 * C, out0, lse0);
        var grad = new float[qkv.Length];
        Attention.Backward(s, qkv, 3 * C, qkv.AsSpan(C), qkv.AsSpan(2 * C), 3 * C, out0, lse0, w, grad, grad.AsSpan(C), grad.AsSpan(2 * C));
        const float h = 1e-2f;
        for (int i = 0; i < qkv.Length; i++)
        {
            var plus = (float[])qkv.Clone(); plus[i] += h;
            var minus = (float[])qkv.Clone(); minus[i] -= h;
            double numeric = (Loss(plus) - Loss(minus)) / (2 * h);
            Assert.True(Math.Abs(numeric - grad[i]) <= 2e-3 * (1 + Math.Abs(numeric)), $"d/dqkv[{i}]: analytic {grad[i]}, numeric {numeric}");
        }
    }

    /// <summary>
    /// A decode step's streams (each over its own cached keys) give bit for bit what each gives alone, whatever the
    /// thread count (which decides how each stream's heads are grouped): batched sampling relies on it.
    /// </summary>
    [Fact]
    public void DecodeStreamsMatchEachStreamAloneBitForBit()
    {
        const int batch = 3, heads = 5, keys = 150, D = 24, C = heads * D;
        var s = new AttentionShape(batch, heads, 1, keys, D, false);
        var q = Random(batch * 3 * C, 4);
        var kv = Random(batch * keys * 2 * C, 5);
        int[] lengths = [150, 67, 1];
        var saved = Parallelism.ThreadCount;
        try
        {
            var expected = new float[batch * C];
            Parallelism.ThreadCount = 1;
            for (int b = 0; b < batch; b++)
            {
                var alone = new AttentionShape(1, heads, 1, keys, D, false);
                var o = new float[C];
                Attention.Forward(alone, q.AsSpan(b * 3 * C, 3 * C), 3 * C, kv.AsSpan(b * keys * 2 * C), kv.AsSpan(b * keys * 2 * C + C), 2 * C, o, new float[heads], [lengths[b]]);
                o.CopyTo(expected, b * C);
            }
            foreach (int threads in new[] { 1, 2, 3, 7 })
            {
                Parallelism.ThreadCount = threads;
                var together = new float[batch * C];
                Attention.Forward(s, q, 3 * C, kv, kv.AsSpan(C), 2 * C, together, new float[batch * heads], lengths);
                Assert.Equal(expected, together);
            }
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    [Fact]
    public void BadShapesThrowNamingThem()
    {
        var s = new AttentionShape(2, 2, 4, 4, 8, true);
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(s, new float[10], 48, new float[10], new float[10], 48, new float[64], new float[16]));
        Assert.Contains("D=8", e.Message);
        Assert.Throws<ArgumentException>(() => Attention.Forward(s, new float[400], 48, new float[400], new float[400], 48, new float[64], new float[16], [4, 9]));
    }
}
