using System.Diagnostics;
using Sharpformer.Data;
using Sharpformer.Generation;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training;

namespace Sharpformer.Benchmarking;

/// <summary>The figures `sharpformer bench` prints; JSON names are the keys scripts compare against the PyTorch twin.</summary>
public sealed record BenchmarkResult
{
    public double TrainTokensPerS { get; init; }
    public double TrainExamplesPerS { get; init; }
    public double MsPerStep { get; init; }
    /// <summary>Processor time of the whole process per timed step (all threads): on a shared machine, where wall time is inflated, its figure with one thread is the quiet ms/step.</summary>
    public double CpuMsPerStep { get; init; }
    public double Gflops { get; init; }
    public double PeakGflops { get; init; }
    public double PeakFraction { get; init; }
    public double AllocBytesPerStep { get; init; }
    public long PeakWorkingSetBytes { get; init; }
    /// <summary>Tokens per second over all sampling streams (each stream a KV-cached sample of the same prompt).</summary>
    public double SampleTokensPerS { get; init; }
    public int SampleStreams { get; init; }
    public int Steps { get; init; }
    public int Threads { get; init; }
    /// <summary>The kernels' vector width: "Vector512", or "Vector256" on CPUs without AVX-512 (about half the FMA peak).</summary>
    public string Simd { get; init; } = "";
    public long Parameters { get; init; }
    /// <summary>With profiling on: milliseconds per training step in each kernel family (the rest is "other").</summary>
    public Dictionary<string, double>? ProfileMsPerStep { get; init; }
}

/// <summary>
/// Measures training and sampling speed of any model: warm-up steps, then timed steps through the same
/// <see cref="Trainer"/> as `train` (FLOPs from the model's <see cref="Model.FlopsPerExample"/>: for GPT
/// nanoGPT's estimate_mfu, 6N + 12·L·H·Q·T per token), managed bytes allocated per step, peak working set,
/// then, for a GPT, KV-cached sampling (one stream, or several decoded together as `sample --num-samples`
/// does); the machine's FMA peak is measured in the same run. With profile on,
/// the timed steps also record the wall time of each kernel family (<see cref="Profiler"/>).
/// </summary>
public static class Benchmark
{
    static readonly TimeSpan WarmupTime = TimeSpan.FromSeconds(2);

    public static BenchmarkResult Run(Model model, RunSettings config, IBatchSource batches, int steps, int warmup,
        int sampleTokens = 500, Action<string>? progress = null, bool profile = false, int sampleStreams = 1)
    {
        if (sampleStreams < 1 || sampleStreams > Sampler.MaxStreams)
            throw new ArgumentException($"sample-streams must be between 1 and {Sampler.MaxStreams}, got {sampleStreams}."); // the CLI's one line
        Parallelism.ThreadCount = config.EffectiveThreads;
        var trainer = new Trainer(model, config with { EvalInterval = int.MaxValue, MaxIters = RunSettings.MaxIterations }, batches, batches);
        // FLOPs per example averaged over batches drawn as training draws them: batches of sentence pairs vary in shape.
        var probe = new Rng(0);
        double probeFlops = 0, probeExamples = 0;
        for (int i = 0; i < 64; i++)
        {
            var b = batches.Next(ref probe);
            probeFlops += (double)model.FlopsPerExample(b) * b.Examples;
            probeExamples += b.Examples;
        }
        double flopsPerExample = probeFlops / probeExamples;
        float lr = config.LearningRate;

        // Warm up for the given steps and at least two seconds: .NET optimises hot methods in the background
        // (tiered compilation) over the first second or so, and the timed steps should not see that.
        progress?.Invoke($"warm-up: at least {warmup} steps and {WarmupTime.TotalSeconds:F0} s");
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < warmup || warm.Elapsed < WarmupTime; i++) trainer.Step(lr);

        progress?.Invoke($"timing: {steps} steps");
        Profiler.Reset();
        Profiler.Enabled = profile;
        long allocBefore = GC.GetTotalAllocatedBytes(precise: true);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        long examples = 0, tokens = 0;
        for (int i = 0; i < steps; i++)
        {
            var step = trainer.Step(lr);
            examples += step.Examples;
            tokens += step.Tokens;
        }
        double seconds = watch.Elapsed.TotalSeconds;
        double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocBefore;
        Profiler.Enabled = false;
        Dictionary<string, double>? kernels = null;
        if (profile)
        {
            kernels = Profiler.Totals().ToDictionary(t => t.Kind.ToString().ToLowerInvariant(), t => t.Seconds * 1000 / steps);
            kernels["other"] = Math.Max(0, seconds * 1000 / steps - kernels.Values.Sum());
        }

        double examplesPerS = examples / seconds, tokensPerS = tokens / seconds;
        double gflops = flopsPerExample * examplesPerS / 1e9;

        double sampleTokensPerS = 0;
        if (model is Gpt gpt)
        {
            progress?.Invoke($"sampling: {sampleTokens} tokens" + (sampleStreams > 1 ? $" in each of {sampleStreams} streams" : ""));
            // Training is over: its pooled activation buffers go back to the system before sampling packs its weights,
            // as at the end of `train`, so the peak working set stays that of training.
            TensorPool.Trim();
            gpt.Eval();
            var sampler = new Sampler(gpt, gpt.Config.VocabSize);
            var options = new SamplingOptions { MaxNewTokens = sampleTokens, Seed = (ulong)config.Seed };
            warm.Restart();
            while (warm.Elapsed < WarmupTime / 2) sampler.Generate([0], sampleStreams, options).Count(); // warm the JIT as above
            watch.Restart();
            int generated = sampler.Generate([0], sampleStreams, options).Count() * sampleStreams;
            sampleTokensPerS = generated / watch.Elapsed.TotalSeconds;
        }

        progress?.Invoke("measuring the machine's FMA peak");
        double peak = PeakFlops.Measure(config.EffectiveThreads, TimeSpan.FromSeconds(1));
        return new BenchmarkResult
        {
            TrainTokensPerS = tokensPerS,
            TrainExamplesPerS = examplesPerS,
            MsPerStep = seconds * 1000 / steps,
            CpuMsPerStep = cpuMs / steps,
            Gflops = gflops,
            PeakGflops = peak,
            PeakFraction = gflops / peak,
            AllocBytesPerStep = (double)allocated / steps,
            PeakWorkingSetBytes = Process.GetCurrentProcess().PeakWorkingSet64,
            SampleTokensPerS = sampleTokensPerS,
            SampleStreams = sampleStreams,
            Steps = steps,
            Threads = config.EffectiveThreads,
            Simd = Kernels.Simd.Path.ToString(),
            Parameters = model.ParameterCount,
            ProfileMsPerStep = kernels,
        };
    }
}
