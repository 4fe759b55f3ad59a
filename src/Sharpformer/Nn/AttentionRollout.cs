namespace Sharpformer.Nn;

/// <summary>
/// Attention rollout (Abnar &amp; Zuidema 2020, "Quantifying Attention Flow in Transformers"): how much each input token
/// reaches each position through the whole stack, residual connections included. Per layer the heads are averaged,
/// the identity added for the residual path and the rows renormalised (Â = (A + I) / 2, as rows of A sum to 1); the
/// layers are multiplied from the first up, R = Â_L ··· Â_2 · Â_1. Row 0 of R is what a ViT's [CLS] output draws
/// from each patch.
/// </summary>
public static class AttentionRollout
{
    /// <summary>
    /// R [T, T] of sequence <paramref name="sequence"/> through <paramref name="layers"/> (self-attention maps in
    /// bottom-up order, all [T, T]), averaging <paramref name="heads"/> (all heads when null).
    /// </summary>
    public static double[,] Compute(IReadOnlyList<AttentionRecorder.Map> layers, IReadOnlyList<int>? heads = null, int sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new ArgumentException("Attention rollout needs at least one layer.", nameof(layers));
        int n = layers[0].Queries;
        var rollout = Identity(n);
        foreach (var map in layers)
        {
            if (map.Cross || map.Queries != n || map.Keys != n)
                throw new ArgumentException($"Attention rollout needs self-attention maps of one size [{n}, {n}]; block {map.Block} is [{map.Queries}, {map.Keys}].", nameof(layers));
            var used = heads ?? Enumerable.Range(0, map.Heads).ToArray();
            var layer = new double[n, n];
            for (int i = 0; i < n; i++)
            {
                foreach (int h in used)
                {
                    var row = map.Row(sequence, h, i);
                    for (int j = 0; j < n; j++) layer[i, j] += row[j] / (double)used.Count;
                }
                layer[i, i] += 1; // the residual path
                double sum = 0;
                for (int j = 0; j < n; j++) sum += layer[i, j];
                for (int j = 0; j < n; j++) layer[i, j] /= sum;
            }
            rollout = Multiply(layer, rollout);
        }
        return rollout;
    }

    static double[,] Identity(int n)
    {
        var m = new double[n, n];
        for (int i = 0; i < n; i++) m[i, i] = 1;
        return m;
    }

    static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0);
        var c = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                double aik = a[i, k];
                if (aik == 0) continue;
                for (int j = 0; j < n; j++) c[i, j] += aik * b[k, j];
            }
        return c;
    }
}
