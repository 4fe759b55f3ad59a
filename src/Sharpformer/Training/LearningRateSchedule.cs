namespace Sharpformer.Training;

/// <summary>nanoGPT's get_lr: linear warmup, cosine decay to min-lr at lr-decay-iters, min-lr after.</summary>
public static class LearningRateSchedule
{
    public static float At(int iteration, RunSettings c)
    {
        if (!c.DecayLr) return c.LearningRate;
        if (iteration < c.WarmupIters) return c.LearningRate * (iteration + 1) / (c.WarmupIters + 1);
        if (iteration > c.LrDecayIters) return c.MinLr;
        double ratio = (double)(iteration - c.WarmupIters) / Math.Max(1, c.LrDecayIters - c.WarmupIters);
        double coeff = 0.5 * (1.0 + Math.Cos(Math.PI * ratio));
        return (float)(c.MinLr + coeff * (c.LearningRate - c.MinLr));
    }
}
