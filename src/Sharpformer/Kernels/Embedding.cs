using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Embedding lookup y[i] = table[ids[i]] and its scatter-add backward. The backward splits the table's rows
/// over threads; each walks every id in order and adds the dy rows whose id it owns, so each table row sums
/// its gradients in order of i however the rows are split: the result is bit-identical to the serial loop
/// for any thread count.
/// </summary>
public static unsafe class Embedding
{
    const int ParallelThreshold = 1 << 15;
    const int ForwardChunkElements = 1 << 14;

    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> y, int dim)
    {
        using var timing = Profiler.Time(KernelKind.Embedding);
        Check(ids, table.Length, y.Length, dim, "Forward", "table", "y");
        if (ids.IsEmpty) return;
        fixed (int* pi = ids)
        fixed (float* pt = table, py = y)
            Run(pi, ids.Length, pt, table.Length / dim, py, dim, backward: false);
    }

    /// <summary>dTable[ids[i]] += dy[i], in order of i (deterministic).</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dy, Span<float> dTable, int dim)
    {
        using var timing = Profiler.Time(KernelKind.Embedding);
        Check(ids, dTable.Length, dy.Length, dim, "Backward", "dTable", "dy");
        if (ids.IsEmpty) return;
        fixed (int* pi = ids)
        fixed (float* pt = dTable, pdy = dy)
            Run(pi, ids.Length, pt, dTable.Length / dim, pdy, dim, backward: true);
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
    static void Run(int* ids, int count, float* table, int tableRows, float* rows, int dim, bool backward)
    {
        int perItem, items;
        if (backward)
        {
            // Work items own ranges of table rows; each walks all ids in order and adds those in its range, so
            // every row sums its gradients in order of i however the rows are split. Four items per thread
            // balance skewed id frequencies.
            int split = 4 * Parallelism.ThreadCount;
            perItem = Math.Max(1, (tableRows + split - 1) / split);
            items = (tableRows + perItem - 1) / perItem;
        }
        else
        {
            perItem = Math.Max(1, ForwardChunkElements / dim);
            items = (count + perItem - 1) / perItem;
        }
        if ((long)count * dim < ParallelThreshold || items == 1 || Parallelism.ThreadCount == 1)
        {
            if (backward) AddRows(ids, count, table, rows, dim, 0, tableRows);
            else CopyRows(ids, 0, count, table, rows, dim);
            return;
        }
        var job = Job.Current;
        job.Set(ids, count, table, tableRows, rows, dim, perItem, backward);
        Parallelism.For(items, job.Body);
        job.Set(null, 0, null, 0, null, 0, 0, false);
    }

    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public readonly Action<int> Body;
        int* ids;
        float* table, rows;
        int count, tableRows, dim, perItem;
        bool backward;

        Job() => Body = Execute;

        public void Set(int* ids, int count, float* table, int tableRows, float* rows, int dim, int perItem, bool backward)
        {
            this.ids = ids; this.count = count; this.table = table; this.tableRows = tableRows; this.rows = rows;
            this.dim = dim; this.perItem = perItem; this.backward = backward;
        }

        void Execute(int item)
        {
            int start = item * perItem;
            if (backward) AddRows(ids, count, table, rows, dim, start, Math.Min(tableRows, start + perItem));
            else CopyRows(ids, start, Math.Min(count, start + perItem), table, rows, dim);
        }
    }

    static void CopyRows(int* ids, int i0, int i1, float* table, float* y, int dim)
    {
        long bytes = (long)dim * sizeof(float);
        for (int i = i0; i < i1; i++)
            Buffer.MemoryCopy(table + (long)ids[i] * dim, y + (long)i * dim, bytes, bytes);
    }

    /// <summary>dTable[ids[i]] += dy[i] for every i, in order, whose id lies in [row0, row1).</summary>
    static void AddRows(int* ids, int count, float* dTable, float* dy, int dim, int row0, int row1)
    {
        bool use512 = Simd.Use512 && Vector512.IsHardwareAccelerated;
        uint span = (uint)(row1 - row0);
        for (int i = 0; i < count; i++)
        {
            if ((uint)(ids[i] - row0) >= span) continue;
            float* d = dTable + (long)ids[i] * dim;
            float* s = dy + (long)i * dim;
            int c = 0;
            if (use512)
                for (; c + 16 <= dim; c += 16) Vector512.Store(Vector512.Load(d + c) + Vector512.Load(s + c), d + c);
            for (; c + 8 <= dim; c += 8) Vector256.Store(Vector256.Load(d + c) + Vector256.Load(s + c), d + c);
            for (; c < dim; c++) d[c] += s[c];
        }
    }
}
