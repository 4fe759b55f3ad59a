using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// Block-level incremental decoding: a decoder stack (causal self-attention, cross-attention to a padded encoder
/// output, pre- or post-LN) stepped through a <see cref="KvCache"/> equals the full forward pass at every position,
/// with and without packed weights; reordering streams by parent moves their cached keys and values.
/// </summary>
[Collection("Simd")]
public class KvCacheTests
{
    const int C = 16, Heads = 2, T = 6, S = 4, Streams = 2;

    static TransformerBlock[] Stack(NormPlacement norm, bool cross, int layers = 2)
    {
        var options = new TransformerBlockOptions { Width = C, Heads = Heads, Norm = norm, Activation = Activation.GeluErf, Causal = true, CrossAttention = cross };
        var blocks = Enumerable.Range(0, layers).Select(i => new TransformerBlock($"h.{i}", options)).ToArray();
        var rng = new InitRng(7);
        foreach (var b in blocks)
        {
            b.Eval();
            foreach (var p in b.Parameters)
            {
                rng.Normal(p.Value.Span, 0.3);
                if (p.Name.Contains("ln") && p.Name.EndsWith("weight")) foreach (ref var v in p.Value.Span) v += 1;
            }
        }
        return blocks;
    }

    static float[] Random(int n, ulong seed)
    {
        var values = new float[n];
        new InitRng(seed).Normal(values, 1.0);
        return values;
    }

    [Theory]
    [InlineData(NormPlacement.PreLN, true, false)]
    [InlineData(NormPlacement.PostLN, true, false)]
    [InlineData(NormPlacement.PostLN, true, true)]
    [InlineData(NormPlacement.PreLN, false, true)]
    public void SteppedDecodingEqualsTheFullForwardPass(NormPlacement norm, bool cross, bool packed)
    {
        var blocks = Stack(norm, cross);
        float[] input = Random(Streams * T * C, 1), memoryValues = Random(Streams * S * C, 2);
        int[] memoryLengths = [S, 2];

        float[] expected;
        using (Graph.NoGrad())
        {
            var x = Tensor.FromArray(input, [Streams, T, C]);
            var memory = cross ? Tensor.FromArray(memoryValues, [Streams, S, C]) : null;
            foreach (var b in blocks) x = b.Forward(x, default, memory, cross ? memoryLengths : default);
            expected = x.ToArray();
        }

        using var weights = packed ? new DecodeWeights(blocks) : null;
        using var cache = new KvCache(blocks, Streams, capacity: 8, memoryLength: cross ? S : 0, weights);
        if (cross)
        {
            memoryLengths.CopyTo(cache.MemoryLengths, 0);
            for (int l = 0; l < blocks.Length; l++) blocks[l].PrepareMemory(cache, l, memoryValues);
        }
        // A prompt of 3 positions per stream, then one position at a time.
        foreach (var (start, n) in new[] { (0, 3), (3, 1), (4, 1), (5, 1) })
        {
            cache.EnsureScratch(Streams * n);
            for (int s = 0; s < Streams; s++)
                input.AsSpan((s * T + start) * C, n * C).CopyTo(cache.X.Slice(s * n * C, n * C));
            for (int l = 0; l < blocks.Length; l++) blocks[l].DecodeStep(cache, l, n);
            cache.Length += n;
            for (int s = 0; s < Streams; s++)
                for (int i = 0; i < n * C; i++)
                {
                    float want = expected[(s * T + start) * C + i], got = cache.X[s * n * C + i];
                    Assert.True(Math.Abs(want - got) <= 1e-4f * (1 + Math.Abs(want)), $"stream {s}, position {start + i / C}: {got} vs {want}");
                }
        }
        Assert.Equal(T, cache.Length);
    }

    [Fact]
    public void ReorderGivesEachStreamItsParentsKeysAndValuesAndNextStep()
    {
        var blocks = Stack(NormPlacement.PreLN, cross: true);
        using var cache = new KvCache(blocks, 3, capacity: 8, memoryLength: S);
        using var reference = new KvCache(blocks, 3, capacity: 8, memoryLength: S);
        float[] memory = Random(3 * S * C, 3), prompt = Random(3 * 2 * C, 4), next = Random(3 * C, 5);
        foreach (var c in new[] { cache, reference })
        {
            new[] { 4, 3, 2 }.CopyTo(c.MemoryLengths, 0);
            for (int l = 0; l < blocks.Length; l++) blocks[l].PrepareMemory(c, l, memory);
            Step(c, prompt, 2);
        }
        int[] parents = [2, 0, 2];
        cache.Reorder(parents);
        Assert.Equal([2, 4, 2], cache.MemoryLengths);
        for (int l = 0; l < blocks.Length; l++)
            for (int s = 0; s < 3; s++)
            {
                Assert.Equal(reference.Kv(l).Slice(parents[s] * 8 * 2 * C, 2 * 2 * C).ToArray(), cache.Kv(l).Slice(s * 8 * 2 * C, 2 * 2 * C).ToArray());
                Assert.Equal(reference.MemoryKv(l).Slice(parents[s] * S * 2 * C, S * 2 * C).ToArray(), cache.MemoryKv(l).Slice(s * S * 2 * C, S * 2 * C).ToArray());
            }

        // The next step of stream s after the reorder is the parent's next step on the same input (streams 0 and 2
        // share a parent, so they get the same input).
        next.AsSpan(2 * C, C).CopyTo(next.AsSpan(0, C));
        var permuted = new float[next.Length];
        for (int s = 0; s < 3; s++) next.AsSpan(s * C, C).CopyTo(permuted.AsSpan(parents[s] * C, C));
        Step(cache, next, 1);
        float[] reordered = cache.X[..(3 * C)].ToArray();
        Step(reference, permuted, 1);
        for (int s = 0; s < 3; s++) Assert.Equal(reference.X.Slice(parents[s] * C, C).ToArray(), reordered.AsSpan(s * C, C).ToArray());
        Assert.Throws<ArgumentException>(() => cache.Reorder([0, 1]));
        Assert.Throws<ArgumentException>(() => cache.Reorder([0, 1, 3]));
    }

    static void Step(KvCache cache, float[] rows, int n)
    {
        cache.EnsureScratch(rows.Length / C);
        rows.CopyTo(cache.X);
        for (int l = 0; l < cache.Blocks.Count; l++) cache.Blocks[l].DecodeStep(cache, l, n);
        cache.Length += n;
    }
}
