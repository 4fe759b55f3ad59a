using Sharpformer.Kernels;
using Sharpformer.Nn;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Models;

/// <summary>GPT's KV-cached incremental step: embeddings, each block's <see cref="TransformerBlock"/> step, ln_f and the tied head.</summary>
public sealed partial class Gpt
{
    int ITokenDecoder.VocabSize => Config.VocabSize;
    int ITokenDecoder.ContextLength => Config.BlockSize;

    public long PackedBytes => DecodeWeights.Bytes(blocks);

    /// <summary>
    /// The block weights packed for decode steps (<see cref="PackedWeight"/>): a second copy of them, and a
    /// snapshot — pack again after the weights change. Share one between the caches of a sampling run, and
    /// dispose it (after them) to return its memory to the array pool.
    /// </summary>
    public DecodeWeights PackForDecode() => new(blocks);

    /// <summary>
    /// A key/value cache holding up to BlockSize positions per stream. With <paramref name="weights"/> (from
    /// <see cref="PackForDecode"/>), decode steps of up to <see cref="Gemm.SkinnyRows"/> rows multiply by the packed
    /// block weights.
    /// </summary>
    public KvCache NewCache(int streams = 1, DecodeWeights? weights = null) => new(blocks, streams, Config.BlockSize, weights: weights);

    /// <summary>
    /// Appends tokens to the cache and returns the logits of the last new position: [V] for one stream, or
    /// [streams, V] flattened when the cache has several (tokens then holds streams·n ids, n per stream, stream
    /// by stream). Several tokens at once feed a prompt. Runs without a tape, in evaluation mode (no dropout),
    /// allocating no managed memory once the cache's scratch has grown to the largest prompt. The span stays
    /// valid until the next call with the same cache.
    /// </summary>
    public ReadOnlySpan<float> Decode(ReadOnlySpan<int> tokens, KvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache.Blocks != blocks) throw new ArgumentException("Gpt.Decode: this cache was made by another model.", nameof(cache));
        int batch = cache.Streams;
        if (tokens.IsEmpty || tokens.Length % batch != 0)
            throw new ArgumentException($"Gpt.Decode: {tokens.Length} tokens cannot be split over {batch} streams.", nameof(tokens));
        int n = tokens.Length / batch, past = cache.Length, total = past + n;
        if (total > Config.BlockSize)
            throw new ArgumentException($"Gpt.Decode: {n} new tokens after {past} cached exceed the block size {Config.BlockSize}; reset the cache and feed the last window.", nameof(tokens));
        for (int i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"Gpt.Decode: token {tokens[i]} at position {i} is outside the vocabulary of {Config.VocabSize}.", nameof(tokens));

        int c = Config.NEmbd, rows = batch * n;
        cache.EnsureScratch(rows);
        Span<float> x = cache.X[..(rows * c)];

        // x = wte[token] + wpe[position]
        ReadOnlySpan<float> wte = Wte.Weight.Value.Span, wpe = Wpe.Weight!.Value.Span;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < n; t++)
            {
                int r = b * n + t;
                TensorPrimitives.Add(wte.Slice(tokens[r] * c, c), wpe.Slice((past + t) * c, c), x.Slice(r * c, c));
            }
        for (int l = 0; l < blocks.Length; l++) blocks[l].DecodeStep(cache, l, n);

        // logits of each stream's last position: ln_f, then the tied head
        Span<float> last = cache.H[..(batch * c)], normed = cache.Tmp[..(batch * c)];
        for (int b = 0; b < batch; b++) x.Slice((b * n + n - 1) * c, c).CopyTo(last.Slice(b * c, c));
        TransformerBlock.LayerNormRows(LnF, last, normed, cache.Stats, cache.Stats.Slice(batch, batch), batch, Config.LayerNormEpsilon);
        Span<float> logits = cache.Logits(Config.VocabSize);
        Gemm.Multiply(normed, wte, logits, batch, c, Config.VocabSize, transB: true);
        cache.Length = total;
        return logits;
    }
}
