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

    sealed class WorkerPool
    {
        readonly SemaphoreSlim wake = new(0);
        readonly Lock runLock = new();
        Action<int>? body;
        int count, next, pending;
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
                this.body = body;
                this.count = count;
                next = 0;
                failure = null;
                Volatile.Write(ref pending, threads);
                wake.Release(threads - 1);
                Work();
                var spin = new SpinWait();
                while (Volatile.Read(ref pending) != 0) spin.SpinOnce(-1);
                this.body = null;
                if (failure is not null) throw new AggregateException(failure);
            }
        }

        void WorkerLoop()
        {
            while (true)
            {
                wake.Wait();
                Work();
            }
        }

        void Work()
        {
            insideParallelRegion = true;
            try
            {
                var b = body!;
                int n = count;
                for (int i = Interlocked.Increment(ref next) - 1; i < n; i = Interlocked.Increment(ref next) - 1)
                    b(i);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                Volatile.Write(ref next, int.MaxValue / 2);
            }
            finally
            {
                insideParallelRegion = false;
                Interlocked.Decrement(ref pending);
            }
        }
    }
}
