using System.Diagnostics;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training;

namespace Sharpformer.Benchmarking;

/// <summary>One context length of a <see cref="ContextSweep"/>.</summary>
/// <param name="AttentionMs">The fused attention kernel's forward and backward for one sequence (all heads), best of the repeats.</param>
/// <param name="StepMs">A whole training step of one sequence of T tokens, best of the repeats.</param>
/// <param name="StepPeakBytes">The most the step rents at once beyond the model's own buffers (activations, gradients of activations).</param>
/// <param name="NaiveAttentionBytes">What a step would keep if attention materialised its [H, T, T] probabilities per layer, as PyTorch's unfused attention does.</param>
public sealed record ContextSweepPoint(int T, double AttentionMs, double StepMs, long StepPeakBytes, long NaiveAttentionBytes);

/// <summary>
/// Attention's cost as the context grows: the fused kernel's time (O(T²) work) and a training step's memory,
/// which stays O(T) because no [T, T] matrix is kept (flash-style), against the O(T²) bytes of a materialised one.
/// </summary>
public static class ContextSweep
{
    public static IReadOnlyList<ContextSweepPoint> Run(GptConfig shape, RunSettings run, IReadOnlyList<int> lengths, int repeats = 3, Action<string>? progress = null)
    {
        Parallelism.ThreadCount = run.EffectiveThreads;
        var points = new List<ContextSweepPoint>();
        foreach (int T in lengths)
        {
            progress?.Invoke($"context {T}");
            var config = shape with { BlockSize = T, VocabSize = 65, Dropout = 0 };
            double attention = AttentionMs(config, T, repeats);

            var model = config.Create(run.Seed);
            var tokens = new int[Math.Max(4 * T, 4096)];
            var rng = new Rng((ulong)run.Seed);
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(65);
            var settings = run with { BatchSize = 1, BlockSize = T, GradientAccumulationSteps = 1, EvalInterval = int.MaxValue };
            var batches = new LanguageModelBatches(new ArrayTokenSource(tokens), 1, T);
            var trainer = new Trainer(model, settings, batches, batches);
            trainer.Step(settings.LearningRate); // the step's buffers exist from here on
            long baseline = TensorPool.BytesRented;
            TensorPool.ResetPeak();
            double best = double.MaxValue;
            for (int r = 0; r < repeats; r++)
            {
                long start = Stopwatch.GetTimestamp();
                trainer.Step(settings.LearningRate);
                best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            long peak = TensorPool.PeakBytesRented - baseline;
            long naive = (long)config.NLayer * config.NHead * T * T * sizeof(float);
            points.Add(new ContextSweepPoint(T, attention, best, peak, naive));
            TensorPool.Trim();
        }
        return points;
    }

    static double AttentionMs(GptConfig c, int T, int repeats)
    {
        var shape = new AttentionShape(1, c.NHead, T, T, c.HeadDim, Causal: true);
        int width = c.NEmbd;
        var qkv = new float[T * 3 * width];
        new Nn.InitRng(1).Normal(qkv, 1.0);
        var output = new float[T * width];
        var lse = new float[c.NHead * T];
        var dOut = new float[T * width];
        Array.Fill(dOut, 0.01f);
        var dqkv = new float[qkv.Length];
        double best = double.MaxValue;
        for (int r = 0; r <= repeats; r++) // the first run warms up
        {
            long start = Stopwatch.GetTimestamp();
            Attention.Forward(shape, qkv, 3 * width, qkv.AsSpan(width), qkv.AsSpan(2 * width), 3 * width, output, lse);
            Attention.Backward(shape, qkv, 3 * width, qkv.AsSpan(width), qkv.AsSpan(2 * width), 3 * width, output, lse, dOut,
                dqkv, dqkv.AsSpan(width), dqkv.AsSpan(2 * width));
            if (r > 0) best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return best * c.NLayer; // every layer runs it once
    }

    /// <summary>Least squares y ≈ a·T² + b·T (no constant: no work at T = 0).</summary>
    public static (double A, double B) FitQuadratic(IReadOnlyList<(double T, double Y)> points)
    {
        double s4 = 0, s3 = 0, s2 = 0, y2 = 0, y1 = 0;
        foreach (var (t, y) in points)
        {
            s4 += t * t * t * t; s3 += t * t * t; s2 += t * t; y2 += y * t * t; y1 += y * t;
        }
        double det = s4 * s2 - s3 * s3;
        return det == 0 ? (0, 0) : ((y2 * s2 - y1 * s3) / det, (s4 * y1 - s3 * y2) / det);
    }
}
