using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Embedding lookup y[i] = table[ids[i]] and its scatter-add backward. The backward splits the columns into
/// fixed ranges and walks every id in order within a range, so each table element sums its gradients in
/// order of i whatever the thread count: the result is bit-identical to the serial loop.
/// </summary>
public static unsafe class Embedding
{
    const int ParallelThreshold = 1 << 15;
    const int ForwardChunkElements = 1 << 14;
    const int ColumnRange = 64; // a multiple of both vector widths

    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> y, int dim)
    {
        Check(ids, table.Length, y.Length, dim, "Forward", "table", "y");
        if (ids.IsEmpty) return;
        fixed (int* pi = ids)
        fixed (float* pt = table, py = y)
            Run(pi, ids.Length, pt, py, dim, backward: false);
    }

    /// <summary>dTable[ids[i]] += dy[i], in order of i (deterministic).</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dy, Span<float> dTable, int dim)
    {
        Check(ids, dTable.Length, dy.Length, dim, "Backward", "dTable", "dy");
        if (ids.IsEmpty) return;
        fixed (int* pi = ids)
        fixed (float* pt = dTable, pdy = dy)
            Run(pi, ids.Length, pt, pdy, dim, backward: true);
    }

    static void Check(ReadOnlySpan<int> ids, int table, int rowsLength, int dim, string which, string tableName, string rowsName)
    {
        if (dim <= 0 || table % dim != 0 || rowsLength != (long)ids.Length * dim)
            throw new ArgumentException($"Embedding.{which}: {ids.Length} ids of dim {dim}; {tableName} holds {table} floats (must be a multiple of dim), " +
                $"{rowsName} {rowsLength} (must be ids*dim = {(long)ids.Length * dim}).");
        int rows = table / dim;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new ArgumentException($"Embedding: id {ids[i]} at position {i} is outside the table of {rows} rows.", nameof(ids));
    }

    /// <summary>Forward: (table, y) copies rows; backward: (dTable, dy) adds rows.</summary>
    static void Run(int* ids, int count, float* table, float* rows, int dim, bool backward)
    {
        int items = backward
            ? (dim + ColumnRange - 1) / ColumnRange
            : (count + Math.Max(1, ForwardChunkElements / dim) - 1) / Math.Max(1, ForwardChunkElements / dim);
        if ((long)count * dim < ParallelThreshold || items == 1 || Parallelism.ThreadCount == 1)
        {
            if (backward) AddRows(ids, 0, count, table, rows, dim, 0, dim);
            else CopyRows(ids, 0, count, table, rows, dim);
            return;
        }
        var job = Job.Current;
        job.Set(ids, count, table, rows, dim, backward);
        Parallelism.For(items, job.Body);
        job.Set(null, 0, null, null, 0, false);
    }

    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public readonly Action<int> Body;
        int* ids;
        float* table, rows;
        int count, dim;
        bool backward;

        Job() => Body = Execute;

        public void Set(int* ids, int count, float* table, float* rows, int dim, bool backward)
        {
            this.ids = ids; this.count = count; this.table = table; this.rows = rows; this.dim = dim; this.backward = backward;
        }

        void Execute(int item)
        {
            if (backward)
            {
                int c0 = item * ColumnRange;
                AddRows(ids, 0, count, table, rows, dim, c0, Math.Min(dim, c0 + ColumnRange));
                return;
            }
            int per = Math.Max(1, ForwardChunkElements / dim), i0 = item * per;
            CopyRows(ids, i0, Math.Min(count, i0 + per), table, rows, dim);
        }
    }

    static void CopyRows(int* ids, int i0, int i1, float* table, float* y, int dim)
    {
        long bytes = (long)dim * sizeof(float);
        for (int i = i0; i < i1; i++)
            Buffer.MemoryCopy(table + (long)ids[i] * dim, y + (long)i * dim, bytes, bytes);
    }

    /// <summary>dTable[ids[i], c0..c1) += dy[i, c0..c1) for i in [i0, i1), in order of i.</summary>
    static void AddRows(int* ids, int i0, int i1, float* dTable, float* dy, int dim, int c0, int c1)
    {
        int w = c1 - c0;
        bool use512 = Simd.Use512 && Vector512.IsHardwareAccelerated;
        for (int i = i0; i < i1; i++)
        {
            float* d = dTable + (long)ids[i] * dim + c0;
            float* s = dy + (long)i * dim + c0;
            int c = 0;
            if (use512)
                for (; c + 16 <= w; c += 16) Vector512.Store(Vector512.Load(d + c) + Vector512.Load(s + c), d + c);
            for (; c + 8 <= w; c += 8) Vector256.Store(Vector256.Load(d + c) + Vector256.Load(s + c), d + c);
            for (; c < w; c++) d[c] += s[c];
        }
    }
}
