using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>
/// General matrix multiply, row-major: C[m,n] = op(A)·op(B) (+ bias[n]) (+ C when accumulating).
/// A is [m,k], or [k,m] when transA; B is [k,n], or [n,k] when transB.
/// Blocked as Goto/BLIS: B is packed into zero-padded column panels of NR floats per k (so the
/// micro-kernel reads it contiguously whatever its layout), A is read in place through (row, column)
/// strides (a broadcast costs the same from either layout), and a register-blocked micro-kernel
/// (12x32 with Vector512, 6x16 with Vector256) accumulates a tile over a KC slice of k.
/// Each C element sums its k slices in a fixed order, so results do not depend on the thread count.
/// </summary>
public static unsafe class Gemm
{
    const int KC = 384;     // k slice: long, so C tiles are loaded and stored few times; a 12-row A strip (18 KB) still fits L1
    const int NC = 256;     // columns per work item: its packed B (KC x NC) stays in L2
    const int WideKC = 768; // k slice of products with rows of C of WideN floats or more
    const int WideN = 8192;
    /// <summary>Products of at most this many rows (decode steps, a few streams at once) take the dot-product path.</summary>
    public const int SkinnyRows = 16;
    /// <summary>A one-row product's B above this many bytes (half of L2) is streamed row by row (see SkinnyJob.ByDots).</summary>
    const long StreamedB = 512 * 1024;
    const int MaxMC = 384;  // rows per work item: large, so each packed B block serves many rows ...

    public static void Multiply(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        int m, int k, int n,
        bool transA = false, bool transB = false,
        ReadOnlySpan<float> bias = default, bool accumulate = false)
    {
        Check(a.Length, b.Length, c.Length, bias.Length, m, k, n, transA, transB);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
            Multiply(pa, pb, pc, m, k, n, transA, transB, bias.IsEmpty ? null : pbias, accumulate);
    }

    /// <summary>Pointer form for callers that hold pinned buffers; no checks beyond what the span form does.</summary>
    public static void Multiply(float* a, float* b, float* c, int m, int k, int n, bool transA, bool transB, float* bias, bool accumulate)
    {
        using var timing = Profiler.Time(KernelKind.Gemm);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            InitializeC(c, m, n, bias, accumulate);
            return;
        }
        // Element (i, p) of op(A) is at a[i*rowStride + p*colStride].
        long aRow = transA ? 1 : k, aCol = transA ? m : 1;
        if (m <= SkinnyRows)
        {
            InitializeC(c, m, n, bias, accumulate);
            Skinny(a, b, c, m, k, n, aRow, aCol, transB);
            return;
        }
        // Accumulating: add the bias first and let every k slice add. Otherwise the first slice stores (with the bias).
        if (accumulate && bias != null) InitializeC(c, m, n, bias, accumulate);
        // Work items: at least two per thread; row blocks share the micro-tiles as evenly as whole tiles allow,
        // and the item count is a multiple of the thread count where there are tiles enough, so the threads
        // finish together instead of one waiting on a last big block. With few row tiles (weight gradients of
        // narrow layers: m = 128 is 11 tiles) the columns are split instead, in whole panels.
        int nr = Simd.Use512 ? 32 : 16, mr = Simd.Use512 ? 12 : 6;
        int tiles = (m + mr - 1) / mr, threads = Parallelism.ThreadCount, panels = (n + nr - 1) / nr;
        int colBlocks = (n + NC - 1) / NC;
        if (tiles < 8 * threads) colBlocks = Math.Min(panels, Math.Max(colBlocks, 2 * threads));
        int nc = (panels + colBlocks - 1) / colBlocks * nr;
        colBlocks = (n + nc - 1) / nc;
        // A is read in place, except: rows a multiple of 4 KB apart would alias in L1, and a transposed A (weight
        // gradients, Xᵀ·dY) steps k by whole rows of m floats, which alias whenever m is a multiple of 512. Those
        // are copied per k slice and item (see Job.PackA); not with few row tiles, whose column split balances
        // better. A copied A can serve every column block of its row block in one item; that is chosen when it
        // moves less memory: A once and B once per row block, against A once per column block and B once per
        // row block of the usual split (counted in rows of k floats).
        bool copyA = (aCol == 1 ? aRow % 1024 == 0 : aRow == 1) && tiles >= 8 * threads;
        int split = RowBlocks(tiles, mr, threads, colBlocks), merged = RowBlocks(tiles, mr, threads, 1);
        bool wholeRows = copyA && m + (long)merged * n <= (long)colBlocks * m + (long)split * n;
        int rowBlocks = wholeRows ? merged : split, itemsPerRow = wholeRows ? 1 : colBlocks;
        var job = new Job(a, b, c, m, k, n, aRow, aCol, transB, nr, mr, tiles, rowBlocks, nc, copyA, wholeRows, accumulate ? null : bias, !accumulate);
        // Every row block needs all of B. Rather than each item packing its own copy, B is packed once per
        // product, panel by panel by whichever thread needs a panel first, into a buffer every item reads: all
        // of B where it fits in SharedB, else groups of column blocks in turn (the widest products, a GPT-2
        // head), or, where one column block's B is too large (weight gradients over many tokens, k = 16384),
        // groups of k slices in turn. Each group is one parallel region, so the buffer is free again when the
        // next begins; slice groups run in order, so every element still adds its slices in order.
        var (slices, sliceLength) = job.Slices;
        int blockPanels = nc / nr, groupBlocks = colBlocks, groupSlices = slices;
        long blockFloats = (long)k * nc, sharedFloats = SharedB / sizeof(float);
        if (blockFloats <= sharedFloats) groupBlocks = (int)Math.Min(sharedFloats / blockFloats, colBlocks);
        else groupSlices = (int)Math.Min(sharedFloats / ((long)sliceLength * colBlocks * nc), slices);
        if (rowBlocks == 1 || groupSlices == 0)
        {
            job.Group(0, colBlocks, 0, slices, null, null, 0);
            Parallelism.For(rowBlocks * itemsPerRow, job.Run);
            return;
        }
        int groupPanels = groupBlocks * blockPanels;
        float[] sharedB = System.Buffers.ArrayPool<float>.Shared.Rent(groupSlices * sliceLength * groupPanels * nr);
        int[] states = System.Buffers.ArrayPool<int>.Shared.Rent(groupSlices * groupPanels);
        Action<int> run = job.Run; // one delegate for every group's region
        try
        {
            fixed (float* pb = sharedB)
            fixed (int* ps = states)
                for (int s0 = 0; s0 < slices; s0 += groupSlices)
                    for (int g0 = 0; g0 < colBlocks; g0 += groupBlocks)
                    {
                        int blocks = Math.Min(groupBlocks, colBlocks - g0);
                        Array.Clear(states, 0, groupSlices * groupPanels);
                        job.Group(g0, blocks, s0, Math.Min(s0 + groupSlices, slices), pb, ps, groupPanels);
                        Parallelism.For(rowBlocks * (wholeRows ? 1 : blocks), run);
                    }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(sharedB);
            System.Buffers.ArrayPool<int>.Shared.Return(states);
        }
    }

    /// <summary>Most bytes of packed B shared by every row block at once (see Multiply): well inside L3. Tests lower it to reach the grouped path.</summary>
    internal static long SharedB = 8L << 20;

    /// <summary>
    /// k slices of (nearly) equal length, each at most kc and a multiple of 8 (the transposing pack's block) but
    /// the last: k = 1024 runs as 344 + 344 + 336, not 384 + 384 + 256 (a short slice costs a full C load and
    /// store for few FMAs). The slicing depends on the shape alone, never on the thread count or which rows
    /// run together, so neither changes a result.
    /// </summary>
    static (int Count, int Length) SlicesOf(int k, int kc)
    {
        int slices = (k + kc - 1) / kc;
        return (slices, ((k + slices - 1) / slices + 7) / 8 * 8);
    }

    /// <summary>Row blocks of at most MaxMC rows, at least two items per thread, items a multiple of the thread count where tiles allow.</summary>
    static int RowBlocks(int tiles, int mr, int threads, int itemsPerRow)
    {
        int rowBlocks = Math.Max((tiles + MaxMC / mr - 1) / (MaxMC / mr), (2 * threads + itemsPerRow - 1) / itemsPerRow);
        while (rowBlocks * itemsPerRow % threads != 0 && rowBlocks < tiles) rowBlocks++;
        return Math.Min(rowBlocks, tiles);
    }

    /// <summary>C = bias (or 0), or C += bias when accumulating; the blocked loop then only adds.</summary>
    static void InitializeC(float* c, int m, int n, float* bias, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * n, n);
            if (bias == null)
            {
                if (!accumulate) row.Clear();
            }
            else if (accumulate) TensorPrimitives.Add(row, new ReadOnlySpan<float>(bias, n), row);
            else new ReadOnlySpan<float>(bias, n).CopyTo(row);
        }
    }

    /// <summary>Matrix-vector-like products (decode steps): rows of C from dot products or axpy sweeps.</summary>
    static void Skinny(float* a, float* b, float* c, int m, int k, int n, long aRow, long aCol, bool transB)
    {
        // One chunk of columns per thread: a decode step is bound by reading B, so each thread reads an equal
        // share of it. Chunks are whole multiples of 16 columns, so every column is computed the same way
        // (one dot product each, or the same axpy lane) whatever the thread count. Tiny products stay
        // on one thread, where waking a worker would cost more than it saves.
        int threads = (long)m * n * k < 1 << 15 ? 1 : Parallelism.ThreadCount;
        int chunk = ((n + threads - 1) / threads + 15) / 16 * 16;
        int chunks = (n + chunk - 1) / chunk;
        // A transposed (rows strided) is gathered once into contiguous rows, for every chunk to read.
        float[]? rented = aCol != 1 ? System.Buffers.ArrayPool<float>.Shared.Rent(m * k) : null;
        try
        {
            fixed (float* gathered = rented)
            {
                float* x = a;
                if (rented is not null)
                {
                    for (int i = 0; i < m; i++)
                        for (int p = 0; p < k; p++) gathered[i * k + p] = a[i * aRow + p * aCol];
                    x = gathered;
                }
                var job = new SkinnyJob(x, b, c, m, k, n, transB, chunk);
                if (chunks == 1) job.Run(0);
                else Parallelism.For(chunks, new SkinnyBox(job).Run);
            }
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    sealed class SkinnyBox(SkinnyJob job)
    {
        public void Run(int item) => job.Run(item);
    }

    /// <summary>One chunk of columns of a dot-product-path product; x holds A's rows, k floats apart.</summary>
    readonly struct SkinnyJob(float* x, float* b, float* c, int m, int k, int n, bool transB, int chunk)
    {
        public void Run(int item)
        {
            int j0 = item * chunk, j1 = Math.Min(n, j0 + chunk);
            if (transB) ByDots(j0, j1);
            else BySweeps(j0, j1);
        }

        /// <summary>
        /// B is [n, k]: each C element is one dot product, summed the same way on every path (one vector
        /// accumulator along k, then its lanes, then the scalar tail), so the path taken never changes a result.
        /// One row of A against a B larger than L2 (a big model's weights at a decode step, read from memory)
        /// streams B in order, a row at a time: one sequential stream reads 45-50 GB/s here, four rows
        /// interleaved 27-30. Otherwise four rows of B at a time meet every row of A, two rows of A at a time,
        /// so each load serves several FMAs (the cost there is arithmetic, not memory).
        /// </summary>
        void ByDots(int j0, int j1)
        {
            if (Simd.Use512) ByDots<Vector512<float>, Lanes512>(j0, j1);
            else ByDots<Vector256<float>, Lanes256>(j0, j1);
        }

        void ByDots<V, L>(int j0, int j1) where V : struct where L : struct, ILanes<V>
        {
            int j = j0;
            if (m > 1 || (long)n * k * sizeof(float) <= StreamedB)
                for (; j + 4 <= j1; j += 4)
                {
                    float* bj = b + (long)j * k;
                    int i = 0;
                    for (; i + 2 <= m; i += 2) Dots.TwoByFour<V, L>(x + i * k, x + (i + 1) * k, bj, k, c + (long)i * n + j, c + (long)(i + 1) * n + j);
                    if (i < m) Dots.Four<V, L>(x + i * k, bj, k, k, c + (long)i * n + j);
                }
            for (; j < j1; j++)
                for (int i = 0; i < m; i++)
                    c[(long)i * n + j] += Dots.One<V, L>(x + i * k, b + (long)j * k, k);
        }

        /// <summary>B is [k, n]: each row of C is k axpy sweeps over this chunk's columns of B.</summary>
        void BySweeps(int j0, int j1)
        {
            for (int i = 0; i < m; i++)
            {
                var dst = new Span<float>(c + (long)i * n + j0, j1 - j0);
                for (int p = 0; p < k; p++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * n + j0, j1 - j0), x[i * k + p], dst, dst);
            }
        }
    }

    /// <summary>
    /// One blocked GEMM: work item = a row block of whole micro-tiles (at most MaxMC rows) times one column block
    /// of NCB ≤ NC columns, or times all of them (wholeRows); k slices in order inside.
    /// </summary>
    sealed class Job(float* a, float* b, float* c, int m, int k, int n, long aRow, long aCol, bool transB, int nr, int mr, int tiles, int rowBlocks, int NCB, bool copyA, bool wholeRows, float* bias, bool overwrite)
    {
        [ThreadStatic] static float* packed;
        [ThreadStatic] static float* packedA;
        [ThreadStatic] static float* tile;
        [ThreadStatic] static float* strip;
        // The column blocks and k slices of the current parallel region, and (with several row blocks) their
        // packed B, shared.
        int groupFirst, groupBlocks, sliceFirst, sliceEnd;
        float* sharedB;
        int* panelStates;   // per (slice, panel) of the shared B: 0 not packed, 1 being packed, 2 packed
        int sharedPanels;

        /// <summary>
        /// The k slices. Rows of C of WideN floats or more (vocabulary heads) make a C far larger than L3, read
        /// back from memory for every slice after the first, so such products take slices of up to WideKC (a
        /// GPT-2 head's k = 768 in one). Decided by n, not by the size of C, so a row's result never depends on
        /// how many rows run with it (batched sampling relies on that).
        /// </summary>
        public (int Count, int Length) Slices => SlicesOf(k, n >= WideN ? WideKC : KC);

        public void Group(int firstBlock, int blocks, int firstSlice, int endSlice, float* packedB, int* states, int panels)
        {
            (groupFirst, groupBlocks, sliceFirst, sliceEnd) = (firstBlock, blocks, firstSlice, endSlice);
            sharedB = packedB;
            panelStates = states;
            sharedPanels = panels;
        }

        /// <summary>
        /// Makes panels first..first+count of a k slice packed in the shared B: claims and packs every one not yet
        /// claimed, then waits for those another thread is packing. A thread waits only on a panel another is
        /// packing, which it finishes without waiting on anything, so this cannot deadlock, and one thread alone
        /// packs everything itself.
        /// </summary>
        float* SharedPanels(int sliceIndex, int p0, int kc, int first, int count)
        {
            int base0 = groupFirst * NCB / nr;
            first -= base0;
            int inGroup = sliceIndex - sliceFirst;
            float* slice = sharedB + (long)inGroup * Slices.Length * sharedPanels * nr;
            int* states = panelStates + inGroup * sharedPanels;
            for (int panel = first; panel < first + count; panel++)
                if (Volatile.Read(ref states[panel]) == 0 && Interlocked.CompareExchange(ref states[panel], 1, 0) == 0)
                {
                    int j = (base0 + panel) * nr;
                    try { PackB(slice + (long)panel * kc * nr, p0, kc, j, Math.Min(nr, n - j), 1); }
                    finally { Volatile.Write(ref states[panel], 2); } // never leave another thread waiting
                }
            for (int panel = first; panel < first + count; panel++)
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref states[panel]) != 2) spin.SpinOnce(-1);
            }
            return slice + (long)first * kc * nr;
        }
        const int APad = 16; // packed A rows are kc + 16 floats apart, never a multiple of 4 KB (L1 set aliasing)

        public void Run(int item)
        {
            // An item is one row block and one column block of the group, or all of them (wholeRows); row block
            // by row block, so a thread's next item often reuses the A rows it has in cache.
            int rowBlock = wholeRows ? item : item / groupBlocks;
            int firstBlock = groupFirst + (wholeRows ? 0 : item % groupBlocks), lastBlock = wholeRows ? groupFirst + groupBlocks : firstBlock + 1;
            int i0 = (int)((long)rowBlock * tiles / rowBlocks) * mr;
            int mc = Math.Min((int)((long)(rowBlock + 1) * tiles / rowBlocks) * mr, m) - i0;
            if (packed == null)
            {
                packed = (float*)NativeMemory.AlignedAlloc((nuint)(WideKC * NC * sizeof(float)), 64);
                packedA = (float*)NativeMemory.AlignedAlloc((nuint)(MaxMC * (WideKC + APad) * sizeof(float)), 64);
                tile = (float*)NativeMemory.AlignedAlloc((nuint)(12 * 32 * sizeof(float)), 64);
                strip = (float*)NativeMemory.AlignedAlloc((nuint)(12 * WideKC * sizeof(float)), 64);
            }
            float* bp = packed, ap = packedA, t = tile;
            int slice = Slices.Length;
            for (int s = sliceFirst; s < sliceEnd; s++)
            {
                int p0 = s * slice, kc = Math.Min(slice, k - p0);
                // The first k slice of a non-accumulating product stores C (plus bias); later slices add to it.
                int mode = !overwrite || p0 > 0 ? AddToC : bias == null ? StoreC : StoreCPlusBias;
                // A copied row-major goes to rows kc + 16 floats apart, so no two rows share an L1 set; transposed,
                // to one contiguous strip per micro-tile, mr floats per k (BLIS's packed A), so a strip is mr·kc
                // floats in a row rather than mr floats from each of kc cache lines. strips: one strip to the next.
                long rs = aRow, cs = aCol, strips = 0;
                if (copyA && aCol == 1) (rs, cs, strips) = (kc + APad, 1, mr * (kc + APad));
                else if (copyA) (rs, cs, strips) = (1, mr, (long)mr * kc);
                if (copyA) PackA(ap, i0, mc, p0, kc, rs, cs);
                // A last tile of fewer than mr rows is gathered once per slice into a full strip (its missing
                // rows repeat the last real one; their results are discarded), then serves every panel.
                int edgeRows = mc % mr;
                if (edgeRows > 0)
                {
                    float* src = copyA ? ap + (mc - edgeRows) / mr * strips : a + (i0 + mc - edgeRows) * aRow + p0 * aCol;
                    GatherStrip(src, rs, cs, edgeRows, kc);
                }
                for (int block = firstBlock; block < lastBlock; block++)
                {
                    int j0 = block * NCB, nc = Math.Min(NCB, n - j0), panels = (nc + nr - 1) / nr;
                    float* bBlock = bp;
                    if (sharedB != null) bBlock = SharedPanels(s, p0, kc, j0 / nr, panels);
                    else PackB(bp, p0, kc, j0, nc, panels);
                    // A strip outer, B panels inner (BLIS's order): the strip (12 x kc, 16 KB at kc = 344) stays in
                    // L1 while the block's panels stream from L2, rather than both streaming from L2 every call.
                    for (int i = i0; i < i0 + mc; i += mr)
                    {
                        int rows = Math.Min(mr, i0 + mc - i);
                        float* aStrip = copyA ? ap + (i - i0) / mr * strips : a + i * aRow + p0 * aCol;
                        for (int panel = 0; panel < panels; panel++)
                        {
                            float* bPanel = bBlock + (long)panel * kc * nr;
                            int j = j0 + panel * nr, cols = Math.Min(nr, n - j);
                            float* cTile = c + (long)i * n + j;
                            if (rows == mr && cols == nr)
                            {
                                Kernel(aStrip, rs, cs, bPanel, kc, cTile, n, mode, bias + j);
                                continue;
                            }
                            // Edge tile: compute a full tile into scratch (missing A rows repeat the last one), then store or add the valid part.
                            if (rows == mr) Kernel(aStrip, rs, cs, bPanel, kc, t, nr, StoreC, null);
                            else Kernel(strip, kc, 1, bPanel, kc, t, nr, StoreC, null);
                            for (int r = 0; r < rows; r++)
                            {
                                var result = new ReadOnlySpan<float>(t + r * nr, cols);
                                var cRow = new Span<float>(cTile + (long)r * n, cols);
                                if (mode == AddToC) TensorPrimitives.Add(cRow, result, cRow);
                                else if (mode == StoreC) result.CopyTo(cRow);
                                else TensorPrimitives.Add(result, new ReadOnlySpan<float>(bias + j, cols), cRow);
                            }
                        }
                    }
                }
            }
        }

        /// <summary>Copies rows i0..i0+mc, columns p0..p0+kc of op(A): row-major to dst[r·rs + p], transposed to strips of mr rows, dst[(r / mr)·mr·kc + p·mr + r % mr].</summary>
        void PackA(float* dst, int i0, int mc, int p0, int kc, long rs, long cs)
        {
            if (cs == 1)
                for (int r = 0; r < mc; r++)
                    new ReadOnlySpan<float>(a + (i0 + r) * aRow + p0, kc).CopyTo(new Span<float>(dst + r * rs, kc));
            else // transposed A to strips: column p of op(A) is contiguous, and each strip takes mr floats of it
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (p0 + p) * aCol + i0, d = dst + p * mr;
                    int r = 0;
                    for (; r + mr <= mc; r += mr, d += (long)mr * kc)
                    {
                        if (mr == 12) { Vector256.Store(Vector256.Load(src + r), d); Vector128.Store(Vector128.Load(src + r + 8), d + 8); }
                        else { Vector128.Store(Vector128.Load(src + r), d); d[4] = src[r + 4]; d[5] = src[r + 5]; }
                    }
                    for (int q = 0; r + q < mc; q++) d[q] = src[r + q];
                }
        }

        /// <summary>Packs B[p0..p0+kc, j0..j0+nc] as panels of nr columns: panel-major, then k, then column; zero-padded.</summary>
        void PackB(float* dst, int p0, int kc, int j0, int nc, int panels)
        {
            for (int panel = 0; panel < panels; panel++)
            {
                float* d = dst + (long)panel * kc * nr;
                int j = j0 + panel * nr, cols = Math.Min(nr, j0 + nc - j);
                if (!transB)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(p0 + p) * n + j;
                        float* row = d + p * nr;
                        if (cols == nr)
                        {
                            if (nr == 32) { Vector512.Store(Vector512.Load(src), row); Vector512.Store(Vector512.Load(src + 16), row + 16); }
                            else { Vector256.Store(Vector256.Load(src), row); Vector256.Store(Vector256.Load(src + 8), row + 8); }
                        }
                        else
                        {
                            for (int q = 0; q < cols; q++) row[q] = src[q];
                            for (int q = cols; q < nr; q++) row[q] = 0;
                        }
                    }
                }
                else MatrixBlocks.PackRowsAsPanel(b + (long)j * k + p0, k, cols, kc, d, nr); // B is [n, k]
            }
        }

        void Kernel(float* a, long rs, long cs, float* b, int kc, float* c, long ldc, int mode, float* bias)
        {
            if (nr == 32) Kernel12x32(a, rs, cs, b, kc, c, ldc, mode, bias);
            else Kernel6x16(a, rs, cs, b, 16, kc, c, ldc, mode, bias);
        }

        /// <summary>Copies a tile of fewer than mr rows to the strip, kc floats per row, repeating its last row to mr rows.</summary>
        void GatherStrip(float* a, long rs, long cs, int rows, int kc)
        {
            for (int r = 0; r < mr; r++)
            {
                float* src = a + Math.Min(r, rows - 1) * rs;
                float* dst = strip + r * kc;
                if (cs == 1) new ReadOnlySpan<float>(src, kc).CopyTo(new Span<float>(dst, kc));
                else for (int p = 0; p < kc; p++) dst[p] = src[p * cs];
            }
        }
    }

    internal const int AddToC = 0, StoreC = 1, StoreCPlusBias = 2;

    /// <summary>C[12x32] += A[12 x kc]·B[kc x 32]: 24 accumulators, two B vectors, one broadcast per row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel12x32(float* a, long rs, long cs, float* b, int kc, float* c, long ldc, int mode, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
            c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        // Four row pointers walk k; the other rows are one or two row strides past them. Twelve pointers
        // would not fit in x64's general registers, and the JIT would reload the spilled ones every step.
        float* a0 = a, a3 = a + 3 * rs, a6 = a + 6 * rs, a9 = a + 9 * rs;
        long r2 = 2 * rs;
        if (Sse.IsSupported)
            for (int r = 0; r < 12; r++) { Sse.Prefetch0(c + r * ldc); Sse.Prefetch0(c + r * ldc + 16); }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            b += 32;
            Vector512<float> x;
            x = Vector512.Create(*a0); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a0[rs]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a0[r2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(*a3); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a3[rs]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a3[r2]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(*a6); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a6[rs]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            x = Vector512.Create(a6[r2]); c80 = Vector512.FusedMultiplyAdd(x, b0, c80); c81 = Vector512.FusedMultiplyAdd(x, b1, c81);
            x = Vector512.Create(*a9); c90 = Vector512.FusedMultiplyAdd(x, b0, c90); c91 = Vector512.FusedMultiplyAdd(x, b1, c91);
            x = Vector512.Create(a9[rs]); ca0 = Vector512.FusedMultiplyAdd(x, b0, ca0); ca1 = Vector512.FusedMultiplyAdd(x, b1, ca1);
            x = Vector512.Create(a9[r2]); cb0 = Vector512.FusedMultiplyAdd(x, b0, cb0); cb1 = Vector512.FusedMultiplyAdd(x, b1, cb1);
            a0 += cs; a3 += cs; a6 += cs; a9 += cs;
        }
        // Add C (or the bias row), then store: every load of C comes before any store, because with rows 4 KB
        // apart (n a multiple of 1024) a load behind a store to the row above would wait on a false dependency.
        if (mode == AddToC)
        {
            c00 += Vector512.Load(c); c01 += Vector512.Load(c + 16);
            c10 += Vector512.Load(c + ldc); c11 += Vector512.Load(c + ldc + 16);
            c20 += Vector512.Load(c + 2 * ldc); c21 += Vector512.Load(c + 2 * ldc + 16);
            c30 += Vector512.Load(c + 3 * ldc); c31 += Vector512.Load(c + 3 * ldc + 16);
            c40 += Vector512.Load(c + 4 * ldc); c41 += Vector512.Load(c + 4 * ldc + 16);
            c50 += Vector512.Load(c + 5 * ldc); c51 += Vector512.Load(c + 5 * ldc + 16);
            c60 += Vector512.Load(c + 6 * ldc); c61 += Vector512.Load(c + 6 * ldc + 16);
            c70 += Vector512.Load(c + 7 * ldc); c71 += Vector512.Load(c + 7 * ldc + 16);
            c80 += Vector512.Load(c + 8 * ldc); c81 += Vector512.Load(c + 8 * ldc + 16);
            c90 += Vector512.Load(c + 9 * ldc); c91 += Vector512.Load(c + 9 * ldc + 16);
            ca0 += Vector512.Load(c + 10 * ldc); ca1 += Vector512.Load(c + 10 * ldc + 16);
            cb0 += Vector512.Load(c + 11 * ldc); cb1 += Vector512.Load(c + 11 * ldc + 16);
        }
        else if (mode == StoreCPlusBias)
        {
            Vector512<float> y0 = Vector512.Load(bias), y1 = Vector512.Load(bias + 16);
            c00 += y0; c01 += y1; c10 += y0; c11 += y1; c20 += y0; c21 += y1; c30 += y0; c31 += y1;
            c40 += y0; c41 += y1; c50 += y0; c51 += y1; c60 += y0; c61 += y1; c70 += y0; c71 += y1;
            c80 += y0; c81 += y1; c90 += y0; c91 += y1; ca0 += y0; ca1 += y1; cb0 += y0; cb1 += y1;
        }
        Store2(c, c00, c01); Store2(c + ldc, c10, c11); Store2(c + 2 * ldc, c20, c21); Store2(c + 3 * ldc, c30, c31);
        Store2(c + 4 * ldc, c40, c41); Store2(c + 5 * ldc, c50, c51); Store2(c + 6 * ldc, c60, c61); Store2(c + 7 * ldc, c70, c71);
        Store2(c + 8 * ldc, c80, c81); Store2(c + 9 * ldc, c90, c91); Store2(c + 10 * ldc, ca0, ca1); Store2(c + 11 * ldc, cb0, cb1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store2(float* c, Vector512<float> x0, Vector512<float> x1)
    {
        Vector512.Store(x0, c);
        Vector512.Store(x1, c + 16);
    }

    /// <summary>C[6x16] += A[6 x kc]·B[kc x 16], B's rows ldb floats apart (GEMM's panels: 16; half of a PackedWeight panel: 32): the Vector256 fallback (12 accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel6x16(float* a, long rs, long cs, float* b, long ldb, int kc, float* c, long ldc, int mode, float* bias)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + rs, a2 = a + 2 * rs, a3 = a + 3 * rs, a4 = a + 4 * rs, a5 = a + 5 * rs;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            b += ldb;
            long o = p * cs;
            Vector256<float> x;
            x = Vector256.Create(a0[o]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[o]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[o]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[o]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[o]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[o]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        // As in Kernel12x32: every load of C before any store.
        if (mode == AddToC)
        {
            c00 += Vector256.Load(c); c01 += Vector256.Load(c + 8);
            c10 += Vector256.Load(c + ldc); c11 += Vector256.Load(c + ldc + 8);
            c20 += Vector256.Load(c + 2 * ldc); c21 += Vector256.Load(c + 2 * ldc + 8);
            c30 += Vector256.Load(c + 3 * ldc); c31 += Vector256.Load(c + 3 * ldc + 8);
            c40 += Vector256.Load(c + 4 * ldc); c41 += Vector256.Load(c + 4 * ldc + 8);
            c50 += Vector256.Load(c + 5 * ldc); c51 += Vector256.Load(c + 5 * ldc + 8);
        }
        else if (mode == StoreCPlusBias)
        {
            Vector256<float> y0 = Vector256.Load(bias), y1 = Vector256.Load(bias + 8);
            c00 += y0; c01 += y1; c10 += y0; c11 += y1; c20 += y0; c21 += y1;
            c30 += y0; c31 += y1; c40 += y0; c41 += y1; c50 += y0; c51 += y1;
        }
        Store2(c, c00, c01); Store2(c + ldc, c10, c11); Store2(c + 2 * ldc, c20, c21);
        Store2(c + 3 * ldc, c30, c31); Store2(c + 4 * ldc, c40, c41); Store2(c + 5 * ldc, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store2(float* c, Vector256<float> x0, Vector256<float> x1)
    {
        Vector256.Store(x0, c);
        Vector256.Store(x1, c + 8);
    }

    internal static void Check(int aLength, int bLength, int cLength, int biasLength, int m, int k, int n, bool transA, bool transB)
    {
        if (m < 0 || k < 0 || n < 0)
            throw new ArgumentException($"GEMM dimensions must be non-negative: m={m}, k={k}, n={n}.");
        if (aLength < (long)m * k)
            throw new ArgumentException($"GEMM: A holds {aLength} floats but op(A) is [{m}x{k}] ({(transA ? "transposed, stored [" + k + "x" + m + "]" : "stored [" + m + "x" + k + "]")}).", "a");
        if (bLength < (long)k * n)
            throw new ArgumentException($"GEMM: B holds {bLength} floats but op(B) is [{k}x{n}] ({(transB ? "transposed, stored [" + n + "x" + k + "]" : "stored [" + k + "x" + n + "]")}).", "b");
        if (cLength < (long)m * n)
            throw new ArgumentException($"GEMM: C holds {cLength} floats but must hold [{m}x{n}].", "c");
        if (biasLength != 0 && biasLength != n)
            throw new ArgumentException($"GEMM: bias holds {biasLength} floats but C has {n} columns.", "bias");
    }
}
