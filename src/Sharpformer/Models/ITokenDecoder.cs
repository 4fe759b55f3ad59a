using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>
/// A model that continues token sequences one step at a time over a <see cref="KvCache"/>: a GPT, or (later) a
/// translator's decoder bound to its encoded sources. The sampler and beam search talk to this, never to a
/// concrete model; beam search reorders the cache's streams by parent with <see cref="KvCache.Reorder"/>.
/// </summary>
public interface ITokenDecoder
{
    /// <summary>Rows of the output distribution (the embedding table; padded rows included).</summary>
    int VocabSize { get; }

    /// <summary>Positions a cache holds per stream; past it the caller resets and re-feeds a window.</summary>
    int ContextLength { get; }

    /// <summary>Bytes a packed copy of the decoder's block weights takes (<see cref="PackForDecode"/>).</summary>
    long PackedBytes { get; }

    /// <summary>The block weights packed for decode steps: a snapshot, shared by the caches of one run; dispose after them.</summary>
    DecodeWeights PackForDecode();

    /// <summary>A cache for <paramref name="streams"/> independent streams.</summary>
    KvCache NewCache(int streams = 1, DecodeWeights? weights = null);

    /// <summary>
    /// Appends tokens to the cache (tokens.Length / streams per stream, stream by stream) and returns the logits of
    /// each stream's last new position, [streams, VocabSize] flattened. Valid until the next call with the cache.
    /// </summary>
    ReadOnlySpan<float> Decode(ReadOnlySpan<int> tokens, KvCache cache);
}
