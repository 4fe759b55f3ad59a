namespace Sharpformer.Kernels;

/// <summary>
/// Fused log-softmax + cross-entropy over logits [rows, vocab]; targets equal to IgnoreIndex (-1) are skipped.
/// The loss is the mean over counted rows. CONTRACT STUB: naive and correct.
/// </summary>
public static class CrossEntropy
{
    public const int IgnoreIndex = -1;

    /// <summary>Returns the mean loss; writes each row's log-sum-exp; returns the counted rows in <paramref name="count"/>.</summary>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> logSumExp, int rows, int vocab, out int count)
    {
        double total = 0; count = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = logits.Slice(r * vocab, vocab);
            double max = double.NegativeInfinity; foreach (var t in row) max = Math.Max(max, t);
            double sum = 0; foreach (var t in row) sum += Math.Exp(t - max);
            double lse = max + Math.Log(sum);
            logSumExp[r] = (float)lse;
            int target = targets[r];
            if (target == IgnoreIndex) continue;
            if ((uint)target >= (uint)vocab)
                throw new ArgumentException($"CrossEntropy: target {target} at row {r} is outside the vocabulary of {vocab}.", nameof(targets));
            total += lse - row[target];
            count++;
        }
        return count == 0 ? 0f : (float)(total / count);
    }

    /// <summary>Writes (overwrites) dlogits = (softmax - onehot) * dLoss / count; ignored rows get zeros.</summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp,
        Span<float> dlogits, int rows, int vocab, int count, float dLoss = 1f)
    {
        float scale = count == 0 ? 0 : dLoss / count;
        for (int r = 0; r < rows; r++)
        {
            var dst = dlogits.Slice(r * vocab, vocab);
            if (targets[r] == IgnoreIndex) { dst.Clear(); continue; }
            for (int c = 0; c < vocab; c++)
                dst[c] = (float)(Math.Exp(logits[r * vocab + c] - logSumExp[r]) * scale);
            dst[targets[r]] -= scale;
        }
    }
}
