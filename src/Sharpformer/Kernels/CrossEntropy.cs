using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Fused log-softmax + cross-entropy over logits [rows, vocab]; targets equal to IgnoreIndex (-1) are skipped.
/// The loss is the mean over counted rows. With label smoothing ε the target of a row is ε/V on every class
/// and 1 - ε + ε/V on the gold one (PyTorch's label_smoothing): its loss is lse - (1-ε)·x_t - (ε/V)·Σx, its
/// gradient softmax - target. Each row is two SIMD passes (max, then the sum of exp(x - max)),
/// written once over <see cref="ILanes{V}"/> for both widths;
/// rows are independent, so chunks of rows (fixed by the shape) go to threads, each summing its rows' losses,
/// and the chunk sums are added in order: the result does not depend on the thread count.
/// </summary>
public static unsafe class CrossEntropy
{
    public const int IgnoreIndex = -1;

    /// <summary>Below this many logits a call runs inline on the caller's thread.</summary>
    const int ParallelThreshold = 1 << 15;
    const int ChunkElements = 1 << 14;

    /// <summary>Returns the mean loss; writes each row's log-sum-exp; returns the counted rows in <paramref name="count"/>.</summary>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> logSumExp, int rows, int vocab, out int count, float smoothing = 0f)
    {
        using var timing = Profiler.Time(KernelKind.CrossEntropy);
        Check(logits.Length, targets, logSumExp.Length, rows, vocab, "Forward", "logits", logits.Length);
        CheckSmoothing(smoothing);
        count = 0;
        if (rows == 0) return 0f;
        foreach (int t in targets) if (t != IgnoreIndex) count++;
        // Each chunk of rows sums its losses in double; the chunk sums are added in order, so the mean
        // depends only on the shape (the chunking), never on the thread count.
        int chunks = Chunks(rows, vocab, out _);
        double[]? rented = chunks > 256 ? System.Buffers.ArrayPool<double>.Shared.Rent(chunks) : null;
        double* stack = stackalloc double[rented is null ? chunks : 0];
        fixed (float* pl = logits, ps = logSumExp)
        fixed (int* pt = targets)
        fixed (double* pr = rented)
        {
            double* partial = rented is null ? stack : pr;
            Run(pl, pt, ps, null, partial, rows, vocab, 0f, smoothing);
            double total = 0;
            for (int c = 0; c < chunks; c++) total += partial[c];
            if (rented is not null) System.Buffers.ArrayPool<double>.Shared.Return(rented);
            return count == 0 ? 0f : (float)(total / count);
        }
    }

    /// <summary>Writes (overwrites) dlogits = (softmax - target) * dLoss / count; ignored rows get zeros.</summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp,
        Span<float> dlogits, int rows, int vocab, int count, float dLoss = 1f, float smoothing = 0f)
    {
        using var timing = Profiler.Time(KernelKind.CrossEntropy);
        Check(logits.Length, targets, logSumExp.Length, rows, vocab, "Backward", "dlogits", dlogits.Length);
        CheckSmoothing(smoothing);
        if (count < 0 || count > rows)
            throw new ArgumentOutOfRangeException(nameof(count), $"CrossEntropy.Backward: count {count} must lie in [0, rows {rows}].");
        if (rows == 0) return;
        float scale = count == 0 ? 0f : dLoss / count;
        fixed (float* pl = logits, ps = logSumExp, pd = dlogits)
        fixed (int* pt = targets)
            Run(pl, pt, ps, pd, null, rows, vocab, scale, smoothing);
    }

    static void CheckSmoothing(float smoothing)
    {
        if (!(smoothing >= 0 && smoothing < 1))
            throw new ArgumentOutOfRangeException(nameof(smoothing), $"CrossEntropy: label smoothing {smoothing} is outside [0, 1).");
    }

    static void Check(int logits, ReadOnlySpan<int> targets, int lse, int rows, int vocab, string which, string name, int length)
    {
        if (rows < 0 || vocab <= 0 || logits != (long)rows * vocab || length != logits || targets.Length != rows || lse < rows)
            throw new ArgumentException($"CrossEntropy.{which} over [{rows}, {vocab}]: logits hold {logits} floats, {name} {length}, targets {targets.Length}, " +
                $"logSumExp {lse}; logits{(name == "logits" ? "" : " and " + name)} must hold rows*vocab, targets rows, logSumExp at least rows.");
        for (int r = 0; r < targets.Length; r++)
            if (targets[r] != IgnoreIndex && (uint)targets[r] >= (uint)vocab)
                throw new ArgumentException($"CrossEntropy: target {targets[r]} at row {r} is outside the vocabulary of {vocab}.", nameof(targets));
    }

    static int Chunks(int rows, int vocab, out int rowsPerChunk)
    {
        rowsPerChunk = Math.Max(1, ChunkElements / vocab);
        return (rows + rowsPerChunk - 1) / rowsPerChunk;
    }

    /// <summary>Forward (each chunk's loss sum into <paramref name="partial"/>) when <paramref name="dlogits"/> is null, else backward.</summary>
    static void Run(float* logits, int* targets, float* lse, float* dlogits, double* partial, int rows, int vocab, float scale, float smoothing)
    {
        int chunks = Chunks(rows, vocab, out int rowsPerChunk);
        var job = Job.Current;
        job.Set(logits, targets, lse, dlogits, partial, rows, vocab, scale, rowsPerChunk, smoothing);
        if ((long)rows * vocab < ParallelThreshold || chunks == 1 || Parallelism.ThreadCount == 1)
            for (int c = 0; c < chunks; c++) job.Body(c);
        else
            Parallelism.For(chunks, job.Body);
        job.Set(null, null, null, null, null, 0, 0, 0, 0, 0);
    }

    /// <summary>One reusable job per calling thread, so a parallel call allocates nothing once warm.</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job Current => current ??= new Job();

        public readonly Action<int> Body;
        float* logits, lse, dlogits;
        double* partial;
        int* targets;
        int rows, vocab, rowsPerChunk;
        float scale, smoothing;

        Job() => Body = Execute;

        public void Set(float* logits, int* targets, float* lse, float* dlogits, double* partial, int rows, int vocab, float scale, int rowsPerChunk, float smoothing)
        {
            this.logits = logits; this.targets = targets; this.lse = lse; this.dlogits = dlogits; this.partial = partial;
            this.rows = rows; this.vocab = vocab; this.scale = scale; this.rowsPerChunk = rowsPerChunk; this.smoothing = smoothing;
        }

        void Execute(int chunk)
        {
            int r0 = chunk * rowsPerChunk;
            double loss = Rows(logits, targets, lse, dlogits, r0, Math.Min(rows, r0 + rowsPerChunk), vocab, scale, smoothing);
            if (partial != null) partial[chunk] = loss;
        }
    }

    /// <summary>Rows [r0, r1): forward writes each lse and returns the summed loss of the counted rows; backward writes dlogits.</summary>
    static double Rows(float* logits, int* targets, float* lse, float* dlogits, int r0, int r1, int vocab, float scale, float smoothing) =>
        Simd.Use512 && Vector512.IsHardwareAccelerated
            ? Rows<Vector512<float>, Lanes512>(logits, targets, lse, dlogits, r0, r1, vocab, scale, smoothing)
            : Rows<Vector256<float>, Lanes256>(logits, targets, lse, dlogits, r0, r1, vocab, scale, smoothing);

    static double Rows<V, L>(float* logits, int* targets, float* lse, float* dlogits, int r0, int r1, int vocab, float scale, float smoothing)
        where V : struct where L : struct, ILanes<V>
    {
        float uniform = smoothing / vocab; // ε/V, the smoothed target of every class
        double loss = 0;
        for (int r = r0; r < r1; r++)
        {
            float* x = logits + (long)r * vocab;
            int t = targets[r];
            if (dlogits == null)
            {
                float l = LogSumExp<V, L>(x, vocab);
                lse[r] = l;
                if (t == IgnoreIndex) continue;
                loss += smoothing == 0 ? (double)l - x[t]
                    : (double)l - (1 - smoothing) * (double)x[t] - uniform * (double)System.Numerics.Tensors.TensorPrimitives.Sum(new ReadOnlySpan<float>(x, vocab));
                continue;
            }
            float* d = dlogits + (long)r * vocab;
            if (t == IgnoreIndex)
            {
                new Span<float>(d, vocab).Clear();
                continue;
            }
            Softmax<V, L>(x, d, vocab, lse[r], scale);
            if (smoothing != 0) System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(d, vocab), -scale * uniform, new Span<float>(d, vocab));
            d[t] -= scale * (1 - smoothing);
        }
        return loss;
    }

    // The last partial vector of a row is the row's last full vector with the lanes already counted set to
    // -inf (a padded stack copy when the row is shorter than a vector), so there is no scalar code path:
    // max ignores -inf lanes and exp(-inf) adds zero.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static V Tail<V, L>(float* x, int n, int rest) where V : struct where L : struct, ILanes<V>
    {
        if (n >= L.Count)
            return L.Select(L.LanesFrom(L.Count - rest), L.Load(x + n - L.Count), L.Splat(float.NegativeInfinity));
        return Padded<V, L>(x, n, rest);
    }

    static V Padded<V, L>(float* x, int n, int rest) where V : struct where L : struct, ILanes<V>
    {
        float* t = stackalloc float[16]; // room for the widest vector
        for (int j = 0; j < L.Count; j++) t[j] = j < rest ? x[n - rest + j] : float.NegativeInfinity;
        return L.Load(t);
    }

    static float LogSumExp<V, L>(float* x, int n) where V : struct where L : struct, ILanes<V>
    {
        int w = L.Count;
        var ninf = L.Splat(float.NegativeInfinity);
        V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf, tail = ninf;
        int i = 0;
        for (; i + 4 * w <= n; i += 4 * w)
        {
            m0 = L.MaxNative(m0, L.Load(x + i));
            m1 = L.MaxNative(m1, L.Load(x + i + w));
            m2 = L.MaxNative(m2, L.Load(x + i + 2 * w));
            m3 = L.MaxNative(m3, L.Load(x + i + 3 * w));
        }
        for (; i + w <= n; i += w) m0 = L.MaxNative(m0, L.Load(x + i));
        int rest = n - i;
        if (rest > 0) tail = Tail<V, L>(x, n, rest);
        float max = L.MaxNativeAcross(L.MaxNative(L.MaxNative(m0, m1), L.MaxNative(L.MaxNative(m2, m3), tail)));
        if (float.IsInfinity(max)) return max; // all -inf (or an inf logit): the row has no finite normaliser
        var vmax = L.Splat(max);
        V s0 = default, s1 = default, s2 = default, s3 = default;
        for (i = 0; i + 4 * w <= n; i += 4 * w)
        {
            s0 = L.Add(s0, L.Exp(L.Sub(L.Load(x + i), vmax)));
            s1 = L.Add(s1, L.Exp(L.Sub(L.Load(x + i + w), vmax)));
            s2 = L.Add(s2, L.Exp(L.Sub(L.Load(x + i + 2 * w), vmax)));
            s3 = L.Add(s3, L.Exp(L.Sub(L.Load(x + i + 3 * w), vmax)));
        }
        for (; i + w <= n; i += w) s0 = L.Add(s0, L.Exp(L.Sub(L.Load(x + i), vmax)));
        if (rest > 0) s1 = L.Add(s1, L.Exp(L.Sub(tail, vmax)));
        return max + MathF.Log(L.LibrarySum(L.Add(L.Add(s0, s1), L.Add(s2, s3))));
    }

    /// <summary>d = exp(x - lse) * scale over one row.</summary>
    static void Softmax<V, L>(float* x, float* d, int n, float lse, float scale) where V : struct where L : struct, ILanes<V>
    {
        int w = L.Count;
        var vl = L.Splat(lse);
        var vs = L.Splat(scale);
        int i = 0;
        for (; i + w <= n; i += w) L.Store(L.Mul(L.Exp(L.Sub(L.Load(x + i), vl)), vs), d + i);
        int rest = n - i;
        if (rest == 0) return;
        if (n >= w) // the last full vector overlaps elements already written with the same values
            L.Store(L.Mul(L.Exp(L.Sub(L.Load(x + n - w), vl)), vs), d + n - w);
        else
        {
            float* t = stackalloc float[16];
            L.Store(L.Mul(L.Exp(L.Sub(Tail<V, L>(x, n, rest), vl)), vs), t);
            for (int j = 0; j < rest; j++) d[i + j] = t[j];
        }
    }
}
