using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// A linear layer's weight W [n, k] and bias, repacked for products with a few rows (y = x·Wᵀ + b, the decode
/// steps of a sampler): panels of <see cref="PanelWidth"/> output columns, each stored [k][PanelWidth], so a
/// register-blocked kernel broadcasts one input element and multiplies it into a whole row of a panel, as
/// GEMM's micro-kernel does, with the weights streaming past in order and packed only once.
/// Every output element is one FMA chain along k, in order and from zero, then plus its bias: the same
/// arithmetic whatever the number of rows, the kernel, the vector width or the thread count, so a stream
/// decoded with others gets the bits it would get alone.
/// A snapshot: pack again after the weights change. Its panels live in an array from the shared array pool (a
/// sampling run packs every block's weights; pooled, the next run's packing touches no fresh pages), its own
/// or one it shares with the other weights of a model (<see cref="Nn.DecodeWeights"/>): dispose the
/// owner to return it.
/// </summary>
public sealed unsafe class PackedWeight : IDisposable
{
    /// <summary>Output columns per panel (two Vector512 or four Vector256).</summary>
    public const int PanelWidth = 32;
    const int StripRows = 12, SmallRows = 4, StripRows256 = 6;

    float[]? storage;     // null once disposed
    readonly int offset;  // where the panels start in storage
    readonly bool owned;
    readonly float[] bias;

    /// <param name="weight">W, [n, k] row-major (nn.Linear's layout).</param>
    /// <param name="bias">b, [n], or empty for none.</param>
    public PackedWeight(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int n, int k)
        : this(weight, bias, n, k, System.Buffers.ArrayPool<float>.Shared.Rent(Floats(n, k)), 0, owned: true) { }

    /// <summary>Packs into storage[offset..offset + Floats(n, k)], which the caller owns and returns.</summary>
    internal PackedWeight(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int n, int k, float[] storage, int offset, bool owned = false)
    {
        if (n <= 0 || k <= 0 || weight.Length != (long)n * k || (!bias.IsEmpty && bias.Length != n))
            throw new ArgumentException($"PackedWeight: a [{n}, {k}] weight needs {(long)n * k} floats (got {weight.Length}) and a bias of {n} or none (got {bias.Length}).");
        Columns = n;
        Depth = k;
        Panels = (n + PanelWidth - 1) / PanelWidth;
        (this.storage, this.offset, this.owned) = (storage, offset, owned);
        this.bias = new float[Panels * PanelWidth];
        HasBias = !bias.IsEmpty;
        bias.CopyTo(this.bias);
        fixed (float* w = weight, dst = &storage[offset])
        {
            // Panels in equal runs per thread: a sampling run packs every block's weights before its first token.
            // Small weights are packed on the calling thread, where waking a worker would cost more.
            int threads = (long)n * k < 1 << 18 ? 1 : Parallelism.ThreadCount;
            var packer = new Packer(this, w, dst, (Panels + threads - 1) / threads);
            Parallelism.For((Panels + packer.Run - 1) / packer.Run, packer.Pack);
        }
    }

    sealed class Packer(PackedWeight owner, float* w, float* dst, int run)
    {
        public int Run => run;

        public void Pack(int item)
        {
            for (int p = item * run, end = Math.Min(owner.Panels, p + run); p < end; p++)
                owner.Pack(w, p, dst + (long)p * owner.Depth * PanelWidth);
        }
    }

    /// <summary>Floats the packed panels of an [n, k] weight take.</summary>
    internal static int Floats(int n, int k) => checked((n + PanelWidth - 1) / PanelWidth * k * PanelWidth);

    /// <summary>n: output columns.</summary>
    public int Columns { get; }
    /// <summary>k: inputs per output.</summary>
    public int Depth { get; }
    public bool HasBias { get; }
    int Panels { get; }

    /// <summary>panel[q * 32 + j] = W[p * 32 + j, q]; zeros past the last column.</summary>
    void Pack(float* w, int p, float* panel)
    {
        int j0 = p * PanelWidth;
        MatrixBlocks.PackRowsAsPanel(w + (long)j0 * Depth, Depth, Math.Min(PanelWidth, Columns - j0), Depth, panel, PanelWidth);
    }

    /// <summary>
    /// y[m, n] = x[m, k]·Wᵀ + b. Rows go in strips of 12 through GEMM's 12x32 micro-kernel (k whole, no slices),
    /// the last four or fewer through a 4-row kernel over two panels at once, a single row through a one-row
    /// kernel; the Vector256 path takes strips of 6 through GEMM's 6x16 micro-kernel, half a panel at a time, and
    /// three rows or fewer one at a time. The panels are split over the threads in equal runs, each streamed in
    /// order.
    /// </summary>
    public void Multiply(ReadOnlySpan<float> x, int m, Span<float> y) => Multiply(x, m, y, null, default);

    /// <summary>An element-wise function applied to y's values as they are stored (output the same length as input).</summary>
    public delegate void Epilogue(ReadOnlySpan<float> values, Span<float> output);

    /// <summary>
    /// y = x·Wᵀ + b as <see cref="Multiply(ReadOnlySpan{float}, int, Span{float})"/>, and z = then(y), applied by
    /// the thread that computed each piece of y while it is in that core's cache (a decode step's MLP
    /// activation: read by one thread afterwards, half of y would come from the other core's cache).
    /// </summary>
    public void Multiply(ReadOnlySpan<float> x, int m, Span<float> y, Epilogue? then, Span<float> z)
    {
        int k = Depth, n = Columns;
        if (m < 0 || x.Length < (long)m * k || y.Length < (long)m * n)
            throw new ArgumentException($"PackedWeight.Multiply: {m} rows need x of {(long)m * k} floats (got {x.Length}) and y of {(long)m * n} (got {y.Length}).");
        if (then is not null && z.Length < (long)m * n)
            throw new ArgumentException($"PackedWeight.Multiply: z holds {z.Length} floats, needs {(long)m * n}.");
        ObjectDisposedException.ThrowIf(storage is null, this);
        if (m == 0) return;
        using var timing = Profiler.Time(KernelKind.Gemm);
        // Several rows are copied, zero-padded to whole strips, so no kernel reads past the rows it is given;
        // one row is read in place by the one-row kernel.
        // Vector512: strips of 12 rows, the last four or fewer as a strip of 4. Vector256: strips of 6, a last
        // one of 4 or 5 rows padded to 6; three rows or fewer go one at a time (a strip of 6 for them costs more).
        int big = 0, rest = m, stripRows = Simd.Use512 ? StripRows : StripRows256;
        if (Simd.Use512)
            while (rest > SmallRows) { big++; rest -= Math.Min(rest, StripRows); }
        else
        {
            big = m / StripRows256 + (m % StripRows256 >= 4 ? 1 : 0);
            rest = Math.Max(0, m - big * StripRows256);
        }
        int padded = big * stripRows + (Simd.Use512 ? (rest > 0 ? SmallRows : 0) : rest);
        float[]? rows = m > 1 ? System.Buffers.ArrayPool<float>.Shared.Rent(padded * k) : null;
        try
        {
            if (rows is not null)
            {
                x[..(m * k)].CopyTo(rows);
                Array.Clear(rows, m * k, (padded - m) * k);
            }
            int threads = (long)m * n * k < 1 << 15 ? 1 : Parallelism.ThreadCount;
            int chunk = ((Panels + threads - 1) / threads + 1) / 2 * 2; // even: the small kernels take panels in pairs
            int chunks = (Panels + chunk - 1) / chunk;
            fixed (float* px = x, pr = rows, ps = storage, pb = bias, py = y, pz = z)
            {
                float* pp = ps + offset;
                float* a = rows is null ? px : pr;
                var job = new Job(this, a, m, big, stripRows, pp, pb, py, chunk, then, pz);
                if (chunks == 1) job.Run(0);
                else Parallelism.For(chunks, new Box(job).Run);
            }
        }
        finally
        {
            if (rows is not null) System.Buffers.ArrayPool<float>.Shared.Return(rows);
        }
    }

    public void Dispose()
    {
        if (owned && storage is not null) System.Buffers.ArrayPool<float>.Shared.Return(storage);
        storage = null;
    }

    sealed class Box(Job job)
    {
        public void Run(int item) => job.Run(item);
    }

    /// <summary>One run of panels for every strip of rows; kernels write a tile, <see cref="Put"/> adds the bias and stores.</summary>
    readonly struct Job(PackedWeight w, float* a, int m, int bigStrips, int stripRows, float* panels, float* bias, float* y, int chunk, Epilogue? then, float* z)
    {
        public void Run(int item)
        {
            int k = w.Depth, p0 = item * chunk, p1 = Math.Min(w.Panels, p0 + chunk);
            long panelFloats = (long)k * PanelWidth;
            float* tile = stackalloc float[StripRows * PanelWidth];
            // Panels outer, strips of rows inner: a panel comes from memory once and serves every strip from
            // cache (strips outer, a thread's run of panels would be read from memory again for each strip).
            // Two panels at a time with Vector512, whose small kernels take them in pairs.
            int step = Simd.Use512 ? 2 : 1;
            for (int p = p0; p < p1; p += step)
            {
                // The last panel of an odd run is paired with itself, and its copy not stored.
                bool pair = Simd.Use512 && p + 1 < p1;
                float* b0 = panels + p * panelFloats, b1 = panels + (pair ? p + 1 : p) * panelFloats;
                for (int r0 = 0, strip = 0; r0 < m; r0 += strip < bigStrips ? stripRows : SmallRows, strip++)
                {
                    float* rows = a + (long)r0 * k;
                    int count = Math.Min(m - r0, strip < bigStrips ? stripRows : SmallRows);
                    if (!Simd.Use512)
                    {
                        if (strip < bigStrips)
                        {
                            // Each half of the panel through GEMM's 6x16 micro-kernel, its rows a panel's width apart.
                            Gemm.Kernel6x16(rows, k, 1, b0, PanelWidth, k, tile, PanelWidth, Gemm.StoreC, null);
                            Gemm.Kernel6x16(rows, k, 1, b0 + 16, PanelWidth, k, tile + 16, PanelWidth, Gemm.StoreC, null);
                        }
                        else
                            for (int r = 0; r < count; r++) Row256(rows + (long)r * k, k, b0, tile + r * PanelWidth);
                        Put(tile, PanelWidth, r0, count, p);
                    }
                    else if (strip < bigStrips)
                    {
                        Gemm.Kernel12x32(rows, k, 1, b0, k, tile, PanelWidth, Gemm.StoreC, null);
                        Put(tile, PanelWidth, r0, count, p);
                        if (!pair) continue;
                        Gemm.Kernel12x32(rows, k, 1, b1, k, tile, PanelWidth, Gemm.StoreC, null);
                        Put(tile, PanelWidth, r0, count, p + 1);
                    }
                    else
                    {
                        if (count == 1) Row1x64(rows, k, b0, b1, tile);
                        else Small4x64(rows, k, b0, b1, tile);
                        Put(tile, 2 * PanelWidth, r0, count, p);
                        if (pair) Put(tile + PanelWidth, 2 * PanelWidth, r0, count, p + 1);
                    }
                }
            }
            if (then is null) return;
            int n = w.Columns, j0 = p0 * PanelWidth, cols = Math.Min(n, p1 * PanelWidth) - j0;
            for (int r = 0; r < m; r++) then(new ReadOnlySpan<float>(y + (long)r * n + j0, cols), new Span<float>(z + (long)r * n + j0, cols));
        }

        /// <summary>y rows r0.. of panel p's columns = tile rows + bias (each chain's one last rounding).</summary>
        void Put(float* tile, int ld, int r0, int count, int p)
        {
            int n = w.Columns, j0 = p * PanelWidth, cols = Math.Min(PanelWidth, n - j0);
            if (cols == PanelWidth && Simd.Use512)
            {
                // A whole panel: two vectors a row, without a library call per row (a decode step stores thousands).
                var b0 = Vector512.Load(bias + j0);
                var b1 = Vector512.Load(bias + j0 + 16);
                for (int r = 0; r < count; r++)
                {
                    float* src = tile + r * ld, dst = y + (long)(r0 + r) * n + j0;
                    var v0 = Vector512.Load(src);
                    var v1 = Vector512.Load(src + 16);
                    if (w.HasBias) { v0 += b0; v1 += b1; }
                    Vector512.Store(v0, dst);
                    Vector512.Store(v1, dst + 16);
                }
                return;
            }
            for (int r = 0; r < count; r++)
            {
                var src = new ReadOnlySpan<float>(tile + r * ld, cols);
                var dst = new Span<float>(y + (long)(r0 + r) * n + j0, cols);
                if (w.HasBias) System.Numerics.Tensors.TensorPrimitives.Add(src, new ReadOnlySpan<float>(bias + j0, cols), dst);
                else src.CopyTo(dst);
            }
        }
    }

    /// <summary>tile[4 x 64] = rows[4 x k]·[panel0 | panel1]: sixteen accumulators, four broadcasts and four loads per step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Small4x64(float* a, long k, float* b0, float* b1, float* tile)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default,
            c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
        float* a0 = a, a2 = a + 2 * k;
        for (long q = 0; q < k; q++)
        {
            var w0 = Vector512.Load(b0); var w1 = Vector512.Load(b0 + 16); var w2 = Vector512.Load(b1); var w3 = Vector512.Load(b1 + 16);
            b0 += PanelWidth; b1 += PanelWidth;
            Vector512<float> x;
            x = Vector512.Create(*a0); c00 = Vector512.FusedMultiplyAdd(x, w0, c00); c01 = Vector512.FusedMultiplyAdd(x, w1, c01); c02 = Vector512.FusedMultiplyAdd(x, w2, c02); c03 = Vector512.FusedMultiplyAdd(x, w3, c03);
            x = Vector512.Create(a0[k]); c10 = Vector512.FusedMultiplyAdd(x, w0, c10); c11 = Vector512.FusedMultiplyAdd(x, w1, c11); c12 = Vector512.FusedMultiplyAdd(x, w2, c12); c13 = Vector512.FusedMultiplyAdd(x, w3, c13);
            x = Vector512.Create(*a2); c20 = Vector512.FusedMultiplyAdd(x, w0, c20); c21 = Vector512.FusedMultiplyAdd(x, w1, c21); c22 = Vector512.FusedMultiplyAdd(x, w2, c22); c23 = Vector512.FusedMultiplyAdd(x, w3, c23);
            x = Vector512.Create(a2[k]); c30 = Vector512.FusedMultiplyAdd(x, w0, c30); c31 = Vector512.FusedMultiplyAdd(x, w1, c31); c32 = Vector512.FusedMultiplyAdd(x, w2, c32); c33 = Vector512.FusedMultiplyAdd(x, w3, c33);
            a0++; a2++;
        }
        Vector512.Store(c00, tile); Vector512.Store(c01, tile + 16); Vector512.Store(c02, tile + 32); Vector512.Store(c03, tile + 48);
        Vector512.Store(c10, tile + 64); Vector512.Store(c11, tile + 80); Vector512.Store(c12, tile + 96); Vector512.Store(c13, tile + 112);
        Vector512.Store(c20, tile + 128); Vector512.Store(c21, tile + 144); Vector512.Store(c22, tile + 160); Vector512.Store(c23, tile + 176);
        Vector512.Store(c30, tile + 192); Vector512.Store(c31, tile + 208); Vector512.Store(c32, tile + 224); Vector512.Store(c33, tile + 240);
    }

    /// <summary>tile[64] = row[k]·[panel0 | panel1]: four accumulators, so four FMA chains overlap (one row: a decode step of one stream).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row1x64(float* a, int k, float* b0, float* b1, float* tile)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int q = 0; q < k; q++, b0 += PanelWidth, b1 += PanelWidth)
        {
            var x = Vector512.Create(a[q]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + 16), c1);
            c2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1), c2);
            c3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + 16), c3);
        }
        Vector512.Store(c0, tile); Vector512.Store(c1, tile + 16); Vector512.Store(c2, tile + 32); Vector512.Store(c3, tile + 48);
    }

    /// <summary>tile[32] = row[k]·panel, four Vector256 accumulators: the Vector256 path, one row at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row256(float* a, int k, float* b, float* tile)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int q = 0; q < k; q++, b += PanelWidth)
        {
            var x = Vector256.Create(a[q]);
            c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), c0);
            c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), c1);
            c2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), c2);
            c3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), c3);
        }
        Vector256.Store(c0, tile); Vector256.Store(c1, tile + 8); Vector256.Store(c2, tile + 16); Vector256.Store(c3, tile + 24);
    }
}
