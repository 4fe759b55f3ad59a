namespace Sharpformer.Kernels;

/// <summary>Shape of one fused multi-head attention call. Scale is 1/sqrt(HeadDim).</summary>
/// <param name="Causal">Query i (of QueryLength) sees key j only if j &lt;= i + (KeyLength - QueryLength):
/// bottom-right aligned, so a KV-cached decode step (QueryLength 1) sees every cached key.</param>
public readonly record struct AttentionShape(int Batch, int Heads, int QueryLength, int KeyLength, int HeadDim, bool Causal)
{
    public int Width => Heads * HeadDim;
}

/// <summary>
/// Fused multi-head attention (flash-style in the optimised version). Layout: row (b, t) of q starts at
/// (b*QueryLength + t)*qStride, row (b, t) of k and v at (b*KeyLength + t)*kvStride; head h occupies
/// [h*HeadDim, (h+1)*HeadDim) of a row. So self-attention passes the packed [B,T,3C] QKV buffer as
/// qkv, qkv[C..], qkv[2C..] with both strides 3C. Output is [B, QueryLength, C] (stride C);
/// logSumExp is [B, Heads, QueryLength]. keyLengths (optional, per batch row) masks keys j &gt;= length;
/// a query row with no visible key outputs zeros.
/// CONTRACT STUB: naive and correct; the optimised kernel replaces the bodies, not the signatures.
/// </summary>
public static class Attention
{
    public static void Forward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        Span<float> output, Span<float> logSumExp,
        ReadOnlySpan<int> keyLengths = default)
    {
        int D = s.HeadDim, C = s.Width;
        float scale = 1f / MathF.Sqrt(D);
        var p = new double[s.KeyLength];
        for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.Heads; h++)
                for (int i = 0; i < s.QueryLength; i++)
                {
                    int visible = Visible(s, keyLengths, b, i);
                    int qo = (b * s.QueryLength + i) * qStride + h * D;
                    int oo = (b * s.QueryLength + i) * C + h * D;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < visible; j++)
                    {
                        int ko = (b * s.KeyLength + j) * kvStride + h * D;
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
                        p[j] = dot * scale;
                        max = Math.Max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < visible; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
                    for (int d = 0; d < D; d++)
                    {
                        double acc = 0;
                        for (int j = 0; j < visible; j++) acc += p[j] * v[(b * s.KeyLength + j) * kvStride + h * D + d];
                        output[oo + d] = visible == 0 ? 0f : (float)(acc / sum);
                    }
                    logSumExp[(b * s.Heads + h) * s.QueryLength + i] = visible == 0 ? float.NegativeInfinity : (float)(max + Math.Log(sum));
                }
    }

    /// <summary>Adds the gradients into dq, dk, dv (same layouts and strides as q, k, v).</summary>
    public static void Backward(
        in AttentionShape s,
        ReadOnlySpan<float> q, int qStride,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOutput,
        Span<float> dq, Span<float> dk, Span<float> dv,
        ReadOnlySpan<int> keyLengths = default)
    {
        int D = s.HeadDim, C = s.Width;
        float scale = 1f / MathF.Sqrt(D);
        for (int b = 0; b < s.Batch; b++)
            for (int h = 0; h < s.Heads; h++)
                for (int i = 0; i < s.QueryLength; i++)
                {
                    int visible = Visible(s, keyLengths, b, i);
                    int qo = (b * s.QueryLength + i) * qStride + h * D;
                    int oo = (b * s.QueryLength + i) * C + h * D;
                    float lse = logSumExp[(b * s.Heads + h) * s.QueryLength + i];
                    double di = 0;
                    for (int d = 0; d < D; d++) di += dOutput[oo + d] * output[oo + d];
                    for (int j = 0; j < visible; j++)
                    {
                        int ko = (b * s.KeyLength + j) * kvStride + h * D;
                        double dot = 0, dp = 0;
                        for (int d = 0; d < D; d++) { dot += q[qo + d] * k[ko + d]; dp += dOutput[oo + d] * v[ko + d]; }
                        double pij = Math.Exp(dot * scale - lse);
                        double ds = pij * (dp - di) * scale;
                        for (int d = 0; d < D; d++)
                        {
                            dv[ko + d] += (float)(pij * dOutput[oo + d]);
                            dq[qo + d] += (float)(ds * k[ko + d]);
                            dk[ko + d] += (float)(ds * q[qo + d]);
                        }
                    }
                }
    }

    internal static int Visible(in AttentionShape s, ReadOnlySpan<int> keyLengths, int b, int i)
    {
        int visible = keyLengths.IsEmpty ? s.KeyLength : Math.Min(keyLengths[b], s.KeyLength);
        if (s.Causal) visible = Math.Min(visible, i + s.KeyLength - s.QueryLength + 1);
        return Math.Max(visible, 0);
    }
}
