using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// Collects the attention probabilities of every block it is attached to, one forward pass at a time (PyTorch's
/// <c>need_weights</c>, vit-pytorch's recorder). Attached blocks compute them beside the fused kernel with
/// <see cref="AttentionWeights"/>, only while a recorder is attached, so the normal path never pays for them.
/// </summary>
public sealed class AttentionRecorder
{
    /// <summary>One block's attention: self-attention over its own positions, or cross-attention over the encoder's.</summary>
    /// <param name="Probabilities">[Batch, Heads, Queries, Keys].</param>
    public sealed record Map(string Block, bool Cross, int Batch, int Heads, int Queries, int Keys, float[] Probabilities)
    {
        /// <summary>Row q of head h of sequence b: the weights over the keys.</summary>
        public ReadOnlySpan<float> Row(int b, int h, int q) => Probabilities.AsSpan(((b * Heads + h) * Queries + q) * Keys, Keys);
    }

    public List<Map> Maps { get; } = new();

    /// <summary>Attaches the recorder to every block of a model (or detaches with null); returns the blocks.</summary>
    public static IReadOnlyList<TransformerBlock> Attach(Module model, AttentionRecorder? recorder)
    {
        var blocks = model.Descendants<TransformerBlock>().ToList();
        foreach (var b in blocks) b.Recorder = recorder;
        return blocks;
    }

    /// <summary>
    /// Runs <paramref name="forward"/> (one forward pass of <paramref name="model"/>) in evaluation mode without a tape,
    /// recording the attention of every block, and returns the maps in the order the blocks ran.
    /// </summary>
    public static List<Map> Record(Module model, Action forward)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(forward);
        var recorder = new AttentionRecorder();
        bool training = model.IsTraining;
        model.Eval();
        Attach(model, recorder);
        try
        {
            using (Graph.NoGrad()) forward();
        }
        finally
        {
            Attach(model, null);
            model.Train(training);
        }
        return recorder.Maps;
    }

    internal void Record(string block, bool cross, in AttentionShape shape, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, int kvStride, ReadOnlySpan<int> keyLengths)
    {
        var probabilities = new float[shape.Batch * shape.Heads * shape.QueryLength * shape.KeyLength];
        AttentionWeights.Compute(shape, q, qStride, k, kvStride, probabilities, keyLengths);
        Maps.Add(new Map(block, cross, shape.Batch, shape.Heads, shape.QueryLength, shape.KeyLength, probabilities));
    }

    /// <summary>Records self-attention from a packed qkv [B, T, 3C].</summary>
    internal void RecordSelf(string block, Tensor qkv, int heads, bool causal, ReadOnlySpan<int> keyLengths)
    {
        int b = qkv.Dim(0), t = qkv.Dim(1), c = qkv.Dim(2) / 3;
        Record(block, false, new AttentionShape(b, heads, t, t, c / heads, causal), qkv.Span, 3 * c, qkv.Span[c..], 3 * c, keyLengths);
    }
}
