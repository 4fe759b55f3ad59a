using Sharpformer.Autograd;
using Sharpformer.Kernels;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Nn;

/// <summary>
/// The block's incremental step for decoding with a <see cref="KvCache"/>: the same maths as
/// <see cref="Forward"/> in evaluation mode, called on the cache's buffers with no tape and no allocation.
/// </summary>
public sealed partial class TransformerBlock
{
    PackedWeight.Epilogue? activation; // applied as c_fc's output is stored, each thread on its own share

    /// <summary>
    /// Computes the cross-attention keys and values of the encoder's output <paramref name="memory"/>
    /// [streams, S, C] into layer <paramref name="layer"/> of the cache (once per source, before decoding).
    /// </summary>
    public void PrepareMemory(KvCache cache, int layer, ReadOnlySpan<float> memory)
    {
        if (Cross is null) throw new InvalidOperationException($"TransformerBlock '{Name}' has no cross-attention.");
        int rows = cache.Streams * cache.MemoryLength, c = Options.Width;
        if (memory.Length != (long)rows * c)
            throw new ArgumentException($"TransformerBlock '{Name}': memory holds {memory.Length} floats, not [{cache.Streams}, {cache.MemoryLength}, {c}].", nameof(memory));
        var kv = Cross.KvProj;
        Gemm.Multiply(memory, kv.Weight.Value.Span, cache.MemoryKv(layer), rows, c, 2 * c, transB: true, bias: BiasOf(kv));
    }

    /// <summary>
    /// Runs the block on the cache's X (<c>n</c> new positions per stream, stream by stream) in place, appending
    /// their keys and values to layer <paramref name="layer"/> after the <see cref="KvCache.Length"/> cached ones.
    /// Several new positions (a prompt) attend causally, stream by stream; one new position per stream (a decode
    /// step) sees every cached key: all streams go in one call, each over its own keys.
    /// </summary>
    internal void DecodeStep(KvCache cache, int layer, int n)
    {
        int batch = cache.Streams, rows = batch * n, c = Options.Width, hidden = Options.HiddenWidth, past = cache.Length, total = past + n;
        int capacity = cache.Capacity, heads = Options.Heads, headDim = c / heads;
        float eps = Options.LayerNormEpsilon;
        bool pre = Options.Norm == NormPlacement.PreLN;
        Span<float> x = cache.X[..(rows * c)], h = cache.H[..(rows * c)], tmp = cache.Tmp[..(rows * c)];
        Span<float> qkv = cache.Qkv[..(rows * 3 * c)], att = cache.Att[..(rows * c)];
        Span<float> fc = cache.Fc[..(rows * hidden)], act = cache.Act[..(rows * hidden)];
        Span<float> mean = cache.Stats[..rows], rstd = cache.Stats.Slice(rows, rows), lse = cache.Lse;
        var packed = cache.Weights?.Layer(layer);
        Span<float> kv = cache.Kv(layer);

        // x = x + attn(ln_1(x)) (pre-LN) or ln_1(x + attn(x)) (post-LN), new keys and values appended to the cache
        if (pre) LayerNormRows(Ln1, x, h, mean, rstd, rows, eps);
        Linear(Attn.QkvProj, packed?.Qkv, pre ? h : x, qkv, rows);
        var prompt = new AttentionShape(1, heads, n, total, headDim, Causal: true);
        for (int b = 0; b < batch; b++)
        {
            var stream = kv.Slice(b * capacity * 2 * c, capacity * 2 * c);
            for (int t = 0; t < n; t++)
                qkv.Slice((b * n + t) * 3 * c + c, 2 * c).CopyTo(stream.Slice((past + t) * 2 * c, 2 * c));
            if (n > 1) Attention.Forward(prompt, qkv[(b * n * 3 * c)..], 3 * c, stream, stream[c..], 2 * c, att.Slice(b * n * c, n * c), lse);
        }
        if (n == 1)
        {
            cache.KeyLengths.AsSpan().Fill(total);
            var step = new AttentionShape(batch, heads, 1, capacity, headDim, Causal: false);
            Attention.Forward(step, qkv, 3 * c, kv, kv[c..], 2 * c, att, lse, cache.KeyLengths);
        }
        Linear(Attn.OutProj, packed?.Out, att, tmp, rows);
        Residual(Ln1, x, tmp, mean, rstd, rows, eps, pre);

        // x = x + cross_attn(ln_cross(x)) over the encoder's keys and values, computed once
        if (Cross is not null)
        {
            if (pre) LayerNormRows(LnCross!, x, h, mean, rstd, rows, eps);
            Linear(Cross.QProj, packed?.CrossQ, pre ? h : x, tmp, rows);
            Span<float> memory = cache.MemoryKv(layer);
            var shape = new AttentionShape(batch, heads, n, cache.MemoryLength, headDim, Causal: false);
            Attention.Forward(shape, tmp, c, memory, memory[c..], 2 * c, att, lse, cache.MemoryLengths);
            Linear(Cross.OutProj, packed?.CrossOut, att, tmp, rows);
            Residual(LnCross!, x, tmp, mean, rstd, rows, eps, pre);
        }

        // x = x + mlp(ln_2(x)) or ln_2(x + mlp(x))
        if (pre) LayerNormRows(Ln2, x, h, mean, rstd, rows, eps);
        activation ??= (values, output) => Ops.ActivationForward(Options.Activation, values, output);
        Linear(Mlp.Fc, packed?.Fc, pre ? h : x, fc, rows, activation, act);
        Linear(Mlp.Proj, packed?.Proj, act, tmp, rows);
        Residual(Ln2, x, tmp, mean, rstd, rows, eps, pre);
    }

    /// <summary>x += branch (pre-LN), or x = ln(x + branch) (post-LN).</summary>
    static void Residual(LayerNorm ln, Span<float> x, Span<float> branch, Span<float> mean, Span<float> rstd, int rows, float eps, bool pre)
    {
        if (pre)
        {
            TensorPrimitives.Add(x, branch, x);
            return;
        }
        TensorPrimitives.Add(x, branch, branch);
        LayerNormRows(ln, branch, x, mean, rstd, rows, eps);
    }

    static ReadOnlySpan<float> BiasOf(Linear l) => l.Bias is null ? default : l.Bias.Value.Span;

    /// <summary>
    /// y = x·Wᵀ + b for a decode step, and z = then(y) if given: through the packed copy for rows the
    /// dot-product path would take (so the path still changes only where GEMM's does, which the sampler's
    /// rebuilds rely on), which applies then as each thread stores its share of y; else through GEMM.
    /// </summary>
    internal static void Linear(Linear layer, PackedWeight? packed, ReadOnlySpan<float> x, Span<float> y, int rows, PackedWeight.Epilogue? then = null, Span<float> z = default)
    {
        if (packed is not null && rows <= Gemm.SkinnyRows)
        {
            packed.Multiply(x, rows, y, then, z);
            return;
        }
        Gemm.Multiply(x, layer.Weight.Value.Span, y, rows, layer.InFeatures, layer.OutFeatures, transB: true, bias: BiasOf(layer));
        then?.Invoke(y, z);
    }

    internal static void LayerNormRows(LayerNorm ln, ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd, int rows, float eps) =>
        Kernels.LayerNorm.Forward(x, ln.Weight.Value.Span, ln.Bias is null ? default : ln.Bias.Value.Span, y, mean[..rows], rstd[..rows], rows, ln.Weight.Value.Length, eps);
}
