namespace Sharpformer.Kernels;

/// <summary>Embedding lookup y[i] = table[ids[i]] and its scatter-add backward. CONTRACT STUB: naive and correct.</summary>
public static class Embedding
{
    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> y, int dim)
    {
        int rows = table.Length / dim;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)rows)
                throw new ArgumentException($"Embedding: id {ids[i]} at position {i} is outside the table of {rows} rows.", nameof(ids));
            table.Slice(ids[i] * dim, dim).CopyTo(y.Slice(i * dim, dim));
        }
    }

    /// <summary>dTable[ids[i]] += dy[i], in order of i (deterministic).</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dy, Span<float> dTable, int dim)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            var dst = dTable.Slice(ids[i] * dim, dim);
            var src = dy.Slice(i * dim, dim);
            for (int d = 0; d < dim; d++) dst[d] += src[d];
        }
    }
}
