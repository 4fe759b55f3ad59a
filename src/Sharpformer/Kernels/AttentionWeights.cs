using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Kernels;

/// <summary>
/// The attention probabilities softmax(Q·Kᵀ/√D + mask) themselves, for looking inside a model (PyTorch's
/// <c>need_weights</c>): an inference-only path beside <see cref="Attention.Forward"/>, which never forms them, so
/// the training and decoding path is untouched. Same layouts and masks as the fused kernel: row (b, t) of q at
/// (b·QueryLength + t)·qStride, of k at (b·KeyLength + t)·kvStride, head h in [h·D, (h+1)·D); causal masks are
/// bottom-right aligned; keys at or past keyLengths[b] are masked; a row with no visible key is all zeros.
/// Output [B, H, QueryLength, KeyLength].
/// </summary>
public static class AttentionWeights
{
    public static void Compute(in AttentionShape s, ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, int kvStride,
        Span<float> probabilities, ReadOnlySpan<int> keyLengths = default)
    {
        int B = s.Batch, H = s.Heads, Tq = s.QueryLength, Tk = s.KeyLength, D = s.HeadDim;
        if (B <= 0 || H <= 0 || Tq <= 0 || Tk <= 0 || D <= 0 || qStride < s.Width || kvStride < s.Width)
            throw new ArgumentException($"AttentionWeights: shape {s} with strides q {qStride}, kv {kvStride} cannot work.");
        if (q.Length < ((long)B * Tq - 1) * qStride + s.Width || k.Length < ((long)B * Tk - 1) * kvStride + s.Width)
            throw new ArgumentException($"AttentionWeights: q holds {q.Length} and k {k.Length} floats, too few for {s}.");
        if (probabilities.Length != (long)B * H * Tq * Tk)
            throw new ArgumentException($"AttentionWeights: probabilities hold {probabilities.Length} floats, not [{B}, {H}, {Tq}, {Tk}].");
        if (!keyLengths.IsEmpty && keyLengths.Length != B)
            throw new ArgumentException($"AttentionWeights: {keyLengths.Length} key lengths for a batch of {B}.");

        float scale = 1f / MathF.Sqrt(D);
        int offset = Tk - Tq; // bottom-right alignment: query i sees keys up to i + offset
        for (int b = 0; b < B; b++)
        {
            int length = keyLengths.IsEmpty ? Tk : Math.Clamp(keyLengths[b], 0, Tk);
            for (int h = 0; h < H; h++)
                for (int i = 0; i < Tq; i++)
                {
                    var row = probabilities.Slice((((b * H) + h) * Tq + i) * Tk, Tk);
                    row.Clear();
                    int visible = s.Causal ? Math.Min(length, Math.Max(0, i + offset + 1)) : length;
                    if (visible == 0) continue;
                    var qi = q.Slice((b * Tq + i) * qStride + h * D, D);
                    for (int j = 0; j < visible; j++)
                        row[j] = TensorPrimitives.Dot(qi, k.Slice((b * Tk + j) * kvStride + h * D, D)) * scale;
                    Softmax.Apply(row[..visible], row[..visible]);
                }
        }
    }
}
