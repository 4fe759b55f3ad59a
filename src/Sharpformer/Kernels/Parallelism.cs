namespace Sharpformer.Kernels;

/// <summary>
/// The process-wide thread setting and a small persistent worker pool that every kernel splits its work over.
/// Work items are indexed; which thread runs an item never changes what the item computes, so results
/// depend only on how a kernel chunks its work (fixed per shape), not on scheduling.
/// </summary>
public static class Parallelism
{
    static int threadCount = Environment.ProcessorCount;
    static WorkerPool? pool;
    static readonly Lock poolLock = new();
    [ThreadStatic] static bool insideParallelRegion;

    /// <summary>Threads used by kernels (default: processor count). Results are bit-identical for a given value.</summary>
    public static int ThreadCount
    {
        get => threadCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(ThreadCount));
            threadCount = value;
        }
    }

    /// <summary>Runs body(i) for every i in [0, count), spread over up to <see cref="ThreadCount"/> threads.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        int threads = Math.Min(threadCount, count);
        if (threads == 1 || insideParallelRegion)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        GetPool(threads).Run(count, threads, body);
    }

    static WorkerPool GetPool(int threads)
    {
        var p = pool;
        if (p is not null && p.Capacity >= threads) return p;
        lock (poolLock)
        {
            if (pool is null || pool.Capacity < threads) pool = new WorkerPool(Math.Max(threads, Environment.ProcessorCount));
            return pool;
        }
    }

    /// <summary>
    /// Workers that spin for a short while after each region before they sleep, so the many short regions of
    /// a training step or a decode step do not each pay a thread wake-up (tens of microseconds). A region is
    /// finished when all its items are, not when every worker has checked in: a late worker finds none left.
    /// Items are claimed from one 64-bit counter (region number, next index), so a worker still holding an
    /// old region can never take an item of the next one.
    /// </summary>
    sealed class WorkerPool
    {
        static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000; // 200 µs
        readonly SemaphoreSlim wake = new(0);
        readonly Lock runLock = new();
        Action<int>? body;
        int count, sleepers;
        long claim;      // region << 32 | next index
        long seats;      // region << 32 | workers still to join
        int completed;   // items of the current region done
        Exception? failure;

        public int Capacity { get; }

        public WorkerPool(int capacity)
        {
            Capacity = capacity;
            for (int i = 1; i < capacity; i++)
                new Thread(WorkerLoop) { IsBackground = true, Name = $"sharpformer-worker-{i}" }.Start();
        }

        public void Run(int count, int threads, Action<int> body)
        {
            lock (runLock) // one parallel region at a time; callers from several threads take turns
            {
                long region = (Volatile.Read(ref claim) >> 32) + 1;
                this.body = body;
                this.count = count;
                failure = null;
                Volatile.Write(ref completed, 0);
                Volatile.Write(ref seats, region << 32 | (uint)(threads - 1));
                Interlocked.Exchange(ref claim, region << 32); // publishes the region after its body and count
                int asleep = Volatile.Read(ref sleepers);
                if (asleep > 0) wake.Release(Math.Min(asleep, threads - 1));
                Work(region);
                var spin = new SpinWait();
                while (Volatile.Read(ref completed) != count) spin.SpinOnce(-1);
                // Close the region before the next one overwrites body and count (see Work).
                Interlocked.Exchange(ref claim, region << 32 | int.MaxValue);
                this.body = null;
                if (failure is not null) throw new AggregateException(failure);
            }
        }

        void WorkerLoop()
        {
            long seen = 0;
            while (true)
            {
                long region = Volatile.Read(ref claim) >> 32;
                if (region == seen)
                {
                    // Spin a little for the next region; then sleep until Run wakes us.
                    long start = System.Diagnostics.Stopwatch.GetTimestamp();
                    while ((region = Volatile.Read(ref claim) >> 32) == seen &&
                           System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinTicks)
                        { }
                    if (region == seen)
                    {
                        Interlocked.Increment(ref sleepers);
                        if (Volatile.Read(ref claim) >> 32 == seen) wake.Wait();
                        Interlocked.Decrement(ref sleepers);
                        continue;
                    }
                }
                seen = region;
                if (TakeSeat(region)) Work(region);
            }
        }

        /// <summary>Only as many workers as the region asked for take part; a seat is only valid for its region.</summary>
        bool TakeSeat(long region)
        {
            while (true)
            {
                long s = Volatile.Read(ref seats);
                if (s >> 32 != region || (int)s <= 0) return false;
                if (Interlocked.CompareExchange(ref seats, s - 1, s) == s) return true;
            }
        }

        void Work(long region)
        {
            insideParallelRegion = true;
            try
            {
                // A worker late for this region may read the next region's body and count; the claim below then
                // fails because the region was closed (index int.MaxValue) before they were overwritten.
                var b = body;
                int n = count;
                Interlocked.MemoryBarrier();
                while (true)
                {
                    long c = Volatile.Read(ref claim);
                    if (c >> 32 != region || (int)c >= n) break;
                    if (Interlocked.CompareExchange(ref claim, c + 1, c) != c) continue;
                    try { b!((int)c); }
                    catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
                    Interlocked.Increment(ref completed);
                }
            }
            finally { insideParallelRegion = false; }
        }
    }
}
