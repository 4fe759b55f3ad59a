using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Sharpformer.Kernels;

namespace Sharpformer.Benchmarks.LayerKernels;

// The layer kernels are memory-bound, so each case reports GB/s: the bytes it must read and write at least
// (every input once, every output once, read-modify-write outputs twice) over its mean time.
// Run: dotnet run -c Release --project bench/Sharpformer.Benchmarks -- --filter '*LayerKernels*'

/// <summary>LayerNorm forward and backward at 16384 x 384 (B·T = 64·256, C = 384: shakespeare-char).</summary>
[Config(typeof(GbpsConfig))]
public class LayerNormBenchmarks
{
    const int Rows = 16384, Cols = 384;
    float[] x = [], y = [], g = [], b = [], mean = [], rstd = [], dy = [], dx = [], dg = [], db = [];

    [GlobalSetup]
    public void Setup()
    {
        x = Data.Random(Rows * Cols, 1); dy = Data.Random(Rows * Cols, 2); g = Data.Random(Cols, 3); b = Data.Random(Cols, 4);
        y = new float[Rows * Cols]; dx = new float[Rows * Cols]; mean = new float[Rows]; rstd = new float[Rows]; dg = new float[Cols]; db = new float[Cols];
        LayerNorm.Forward(x, g, b, y, mean, rstd, Rows, Cols);
    }

    public static double BytesOf(string method) => 4.0 * Rows * Cols * (method == nameof(Forward) ? 2 : 4);

    [Benchmark] public void Forward() => LayerNorm.Forward(x, g, b, y, mean, rstd, Rows, Cols);
    [Benchmark] public void Backward() => LayerNorm.Backward(dy, x, g, mean, rstd, dx, dg, db, Rows, Cols);
}

/// <summary>GELU (tanh and erf forms) forward and backward at 16384 x 1536 (the MLP's hidden activations).</summary>
[Config(typeof(GbpsConfig))]
public class GeluBenchmarks
{
    const int N = 16384 * 1536;
    float[] x = [], y = [], dy = [], dx = [];

    [GlobalSetup]
    public void Setup() { x = Data.Random(N, 1, 3); dy = Data.Random(N, 2); y = new float[N]; dx = new float[N]; }

    public static double BytesOf(string method) => 4.0 * N * (method.EndsWith("Forward") ? 2 : 4);

    [Benchmark] public void TanhForward() => Activations.GeluForward(x, y);
    [Benchmark] public void TanhBackward() => Activations.GeluBackward(x, dy, dx);
    [Benchmark] public void ErfForward() => Activations.GeluErfForward(x, y);
    [Benchmark] public void ErfBackward() => Activations.GeluErfBackward(x, dy, dx);
}

/// <summary>Fused cross-entropy at a character vocabulary (16384 x 65) and GPT-2's padded one (512 x 50304).</summary>
[Config(typeof(GbpsConfig))]
public class CrossEntropyBenchmarks
{
    [Params("16384x65", "512x50304")]
    public string Shape { get; set; } = "";

    float[] logits = [], lse = [], d = [];
    int[] targets = [];
    int rows, vocab, count;

    [GlobalSetup]
    public void Setup()
    {
        (rows, vocab) = Dims(Shape);
        logits = Data.Random(rows * vocab, 1, 4);
        var r = new Random(2);
        targets = Enumerable.Range(0, rows).Select(_ => r.Next(vocab)).ToArray();
        lse = new float[rows]; d = new float[rows * vocab];
        CrossEntropy.Forward(logits, targets, lse, rows, vocab, out count);
    }

    static (int, int) Dims(string shape) { var p = shape.Split('x'); return (int.Parse(p[0]), int.Parse(p[1])); }

    public static double BytesOf(string method, string shape)
    {
        var (r, v) = Dims(shape);
        return 4.0 * r * v * (method == nameof(Forward) ? 1 : 2);
    }

    [Benchmark] public float Forward() => CrossEntropy.Forward(logits, targets, lse, rows, vocab, out _);
    [Benchmark] public void Backward() => CrossEntropy.Backward(logits, targets, lse, d, rows, vocab, count);
}

/// <summary>AdamW and the clipping sum of squares over 10M parameters; dropout and the embedding backward at 16384 x 384.</summary>
[Config(typeof(GbpsConfig))]
public class OptimizerAndMiscBenchmarks
{
    const int Params = 10_000_000, Rows = 16384, Cols = 384, Vocab = 65;
    float[] p = [], grad = [], m = [], v = [], x = [], y = [], dx = [], table = [];
    byte[] keep = [];
    int[] ids = [];
    int step;

    [GlobalSetup]
    public void Setup()
    {
        p = Data.Random(Params, 1); grad = Data.Random(Params, 2); m = new float[Params]; v = new float[Params];
        x = Data.Random(Rows * Cols, 3); y = new float[Rows * Cols]; dx = new float[Rows * Cols]; keep = new byte[Rows * Cols];
        var r = new Random(4);
        ids = Enumerable.Range(0, Rows).Select(_ => r.Next(Vocab)).ToArray(); table = new float[Vocab * Cols];
    }

    public static double BytesOf(string method) => method switch
    {
        nameof(AdamW) => 28.0 * Params,       // read p, g, m, v; write p, m, v
        nameof(SumOfSquares) => 4.0 * Params,
        nameof(DropoutForward) => 9.0 * Rows * Cols,   // read x; write y and a mask byte
        nameof(DropoutBackward) => 13.0 * Rows * Cols, // read dy, mask; read and write dx
        _ => 4.0 * Rows * Cols,                        // embedding backward: read dy (the table stays in cache)
    };

    [Benchmark] public void AdamW() => Optim.AdamW(p, grad, m, v, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, ++step);
    [Benchmark] public double SumOfSquares() => Optim.SumOfSquares(grad);
    [Benchmark] public void DropoutForward() => Dropout.Forward(x, y, keep, 0.2f, 1234);
    [Benchmark] public void DropoutBackward() => Dropout.Backward(x, keep, dx, 0.2f);
    [Benchmark] public void EmbeddingBackward() => Embedding.Backward(ids, x, table, Cols);
}

static class Data
{
    public static float[] Random(int n, int seed, double scale = 1)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((r.NextDouble() * 2 - 1) * scale);
        return a;
    }
}

/// <summary>Short runs (the machine is shared) and a GB/s column from each class's static BytesOf.</summary>
public class GbpsConfig : ManualConfig
{
    public GbpsConfig()
    {
        AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10));
        AddColumn(new GbpsColumn());
    }

    sealed class GbpsColumn : IColumn
    {
        public string Id => "GBPS";
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Least bytes read and written per second";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null) return "-";
            // Benchmarks run in a child process, so the byte count comes from the case's type, method and shape.
            var bytesOf = benchmarkCase.Descriptor.Type.GetMethod("BytesOf", BindingFlags.Public | BindingFlags.Static);
            if (bytesOf is null) return "-";
            var method = benchmarkCase.Descriptor.WorkloadMethod.Name;
            object?[] args = bytesOf.GetParameters().Length == 2
                ? [method, benchmarkCase.Parameters.Items.First(p => p.Name == "Shape").Value]
                : [method];
            double bytes = (double)bytesOf.Invoke(null, args)!;
            return (bytes / report.ResultStatistics.Mean).ToString("F1"); // bytes per ns = GB/s
        }
    }
}
