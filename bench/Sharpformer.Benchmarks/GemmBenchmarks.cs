using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Sharpformer.Kernels;

namespace Sharpformer.Benchmarks;

/// <summary>GEMM at the engine issue's four shapes (nn.Linear layout: B transposed), reported in GFLOP/s.</summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    [Params("1024x1024x1024", "4096x768x768", "16384x384x1536", "512x768x50304")]
    public string Shape { get; set; } = "";

    float[] a = [], b = [], c = [];
    int m, k, n;

    [GlobalSetup]
    public void Setup()
    {
        (m, k, n) = Dims(Shape);
        a = LayerKernels.Data.Random(m * k, 1);
        b = LayerKernels.Data.Random(k * n, 2);
        c = new float[m * n];
    }

    /// <summary>"MxKxN" as numbers.</summary>
    public static (int M, int K, int N) Dims(string shape)
    {
        var dims = shape.Split('x').Select(int.Parse).ToArray();
        return (dims[0], dims[1], dims[2]);
    }

    public static double FlopsOf(string shape) => shape.Split('x').Select(double.Parse).Aggregate(2.0, (x, d) => x * d);

    [Benchmark]
    public void Multiply() => Gemm.Multiply(a, b, c, m, k, n, transB: true);
}

/// <summary>
/// A decode step's products (nn.Linear layout) on one stream and on ten together: rows x k x n, with the
/// weights rotating through 24 copies (58 MB at 384 x 1536, beyond the L3) as a big model's weights are read
/// from memory at every step; 128 x 384 stays in cache, as the baby model's do.
/// </summary>
[Config(typeof(GflopsConfig))]
public class DecodeBenchmarks
{
    [Params("1x384x1536", "10x384x1536", "1x128x384", "10x128x384")]
    public string Shape { get; set; } = "";

    float[] x = [], y = [];
    float[][] weights = [];
    PackedWeight[] packed = [];
    int m, k, n, next;

    [GlobalSetup]
    public void Setup()
    {
        (m, k, n) = GemmBenchmarks.Dims(Shape);
        x = LayerKernels.Data.Random(m * k, 3);
        int copies = (long)k * n * sizeof(float) > 1 << 20 ? 24 : 1; // weights beyond L2 rotate through memory
        weights = Enumerable.Range(0, copies).Select(i => LayerKernels.Data.Random(k * n, 4 + i)).ToArray();
        packed = weights.Select(w => new PackedWeight(w, default, n, k)).ToArray();
        y = new float[m * n];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var p in packed) p.Dispose();
    }

    /// <summary>GEMM's dot-product path on the weights as they are ([n, k] rows).</summary>
    [Benchmark(Baseline = true)]
    public void Multiply()
    {
        Gemm.Multiply(x, weights[next], y, m, k, n, transB: true);
        next = (next + 1) % weights.Length;
    }

    /// <summary>The same product on the weights packed for decoding (what a sampling run's decode steps use).</summary>
    [Benchmark]
    public void Packed()
    {
        packed[next].Multiply(x, m, y);
        next = (next + 1) % weights.Length;
    }
}

/// <summary>Fused attention forward and forward+backward at B=8, H=6, T=256, D=64 (causal), and one decode step.</summary>
[Config(typeof(GflopsConfig))]
public class AttentionBenchmarks
{
    const int B = 8, H = 6, T = 256, D = 64, C = H * D;
    readonly AttentionShape shape = new(B, H, T, T, D, true);
    float[] qkv = [], o = [], lse = [], dO = [], dqkv = [];

    [GlobalSetup]
    public void Setup()
    {
        var r = new Random(2);
        qkv = Enumerable.Range(0, B * T * 3 * C).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        dO = Enumerable.Range(0, B * T * C).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        o = new float[B * T * C]; lse = new float[B * H * T]; dqkv = new float[qkv.Length];
    }

    /// <summary>Causal: half the T x T scores; 2 FLOPs per multiply-add; q·k and p·v forward, four products backward.</summary>
    public static double FlopsOf(string method)
    {
        double forward = 2.0 * 2 * B * H * T * (T + 1) / 2 * D;
        return method switch { "Forward" => forward, "ForwardBackward" => forward * 3, "DecodeStep" => 2.0 * 2 * H * T * D, _ => double.NaN };
    }

    [Benchmark]
    public void Forward() => Attention.Forward(shape, qkv, 3 * C, qkv.AsSpan(C), qkv.AsSpan(2 * C), 3 * C, o, lse);

    [Benchmark]
    public void ForwardBackward()
    {
        Forward();
        Attention.Backward(shape, qkv, 3 * C, qkv.AsSpan(C), qkv.AsSpan(2 * C), 3 * C, o, lse, dO, dqkv, dqkv.AsSpan(C), dqkv.AsSpan(2 * C));
    }

    [Benchmark]
    public void DecodeStep()
    {
        var step = new AttentionShape(1, H, 1, T, D, true);
        Attention.Forward(step, qkv.AsSpan((T - 1) * 3 * C), 3 * C, qkv.AsSpan(C), qkv.AsSpan(2 * C), 3 * C, o, lse);
    }
}

/// <summary>Adds a GFLOP/s column computed from each case's FLOP count and its mean time.</summary>
public class GflopsConfig : ManualConfig
{
    public GflopsConfig() => AddColumn(new GflopsColumn());

    sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPS";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Useful floating-point operations per second";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null) return "-";
            // FLOPs come from the case itself: benchmarks run in a child process, so nothing set there reaches this column.
            double flops = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "Shape")?.Value is string shape
                ? GemmBenchmarks.FlopsOf(shape)
                : AttentionBenchmarks.FlopsOf(benchmarkCase.Descriptor.WorkloadMethod.Name);
            return double.IsNaN(flops) ? "-" : (flops / report.ResultStatistics.Mean).ToString("F1"); // FLOPs per ns = GFLOP/s
        }
    }
}

/// <summary>The machine's FMA peak, for reading the GEMM figures as fractions.</summary>
public class PeakBenchmarks
{
    [Benchmark]
    public double MeasurePeakGflops()
    {
        double peak = PeakFlops.Measure(Parallelism.ThreadCount, TimeSpan.FromMilliseconds(500));
        Console.WriteLine($"// FMA peak: {peak:F0} GFLOP/s");
        return peak;
    }
}
