namespace Sharpformer.Training;

/// <summary>
/// The learning rate at an iteration. Both schedules warm up linearly, learning-rate · (it + 1) / (warmup-iters + 1),
/// to the peak learning-rate at iteration warmup-iters, then:
/// "cosine" (nanoGPT's get_lr) decays to min-lr at lr-decay-iters and stays there;
/// "inverse-sqrt" ("Attention Is All You Need", fairseq's inverse_sqrt) decays as learning-rate · √(w / s) with
/// s = it + 1 and w = warmup-iters + 1. That is the paper's d_model^-0.5 · min(s^-0.5, s · w^-1.5) with the peak
/// learning-rate = (d_model · w)^-0.5 written out, so the peak is a setting like any other; min-lr and
/// lr-decay-iters do not apply to it.
/// </summary>
public static class LearningRateSchedule
{
    public const string Cosine = "cosine", InverseSqrt = "inverse-sqrt";

    public static float At(int iteration, RunSettings c)
    {
        if (!c.DecayLr) return c.LearningRate;
        if (iteration < c.WarmupIters) return c.LearningRate * (iteration + 1) / (c.WarmupIters + 1);
        if (c.LrSchedule == InverseSqrt) return (float)(c.LearningRate * Math.Sqrt((c.WarmupIters + 1.0) / (iteration + 1.0)));
        if (iteration > c.LrDecayIters) return c.MinLr;
        double ratio = (double)(iteration - c.WarmupIters) / Math.Max(1, c.LrDecayIters - c.WarmupIters);
        double coeff = 0.5 * (1.0 + Math.Cos(Math.PI * ratio));
        return (float)(c.MinLr + coeff * (c.LearningRate - c.MinLr));
    }

    /// <summary>The peak learning rate that makes inverse-sqrt the paper's d_model^-0.5 · min(s^-0.5, s · w^-1.5).</summary>
    public static float PaperPeak(int dModel, int warmupIters) => (float)(1.0 / Math.Sqrt((double)dModel * (warmupIters + 1)));
}
