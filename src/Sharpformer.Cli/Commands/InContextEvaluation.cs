using System.Numerics.Tensors;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// One point of the in-context-learning curves: accuracy with k examples and the query among them, with the
/// query any of the prompt's letters (shown or not), and the control: the first prompts with the examples' answers
/// from another cipher.
/// </summary>
/// <param name="AnyQueryShown">The share of the any-letter queries that are among their prompt's examples: what the context tells.</param>
sealed record InContextPoint(int Shots, int Prompts, double Accuracy, double AnyQueryAccuracy, double AnyQueryShown, double ControlAccuracy)
{
    /// <summary>One standard error of an accuracy over this many prompts.</summary>
    public double StandardError(double accuracy) => Math.Sqrt(accuracy * (1 - accuracy) / Prompts);
}

/// <summary>
/// Scores a frozen GPT on held-out ciphers: for each k, prompts of k examples and a query, answered by the
/// argmax over the whole vocabulary at the last position; right when it is the query's cipher letter.
/// </summary>
static class InContextEvaluation
{
    /// <summary>The numbers of examples the curve shows, as far as the model's context allows.</summary>
    public static readonly int[] DefaultShots = [0, 1, 2, 4, 8, 16];

    /// <summary>Chance: a guess among the 26 cipher letters.</summary>
    public const double Chance = 1.0 / SubstitutionCiphers.Letters;

    public sealed record PromptSet(int Shots, int Length, int[] Tokens, int[] Controls, int[] Answers);

    public static PromptSet Draw(ref Rng rng, int shots, int count, bool queryShown = true)
    {
        int length = shots * SubstitutionCiphers.TokensPerExample + 1;
        var set = new PromptSet(shots, length, new int[count * length], new int[count * length], new int[count]);
        SubstitutionCiphers.Prompts(ref rng, shots, queryShown, set.Tokens, set.Controls, set.Answers);
        return set;
    }

    /// <summary>The model's answer to each of <paramref name="count"/> prompts of equal length, in batches.</summary>
    public static int[] Answer(Gpt gpt, int[] tokens, int count)
    {
        int length = tokens.Length / count, chunk = 256, vocab = gpt.Config.VocabSize;
        var answers = new int[count];
        for (int start = 0; start < count; start += chunk)
        {
            int n = Math.Min(chunk, count - start);
            using var logits = gpt.Logits(tokens.AsSpan(start * length, n * length), n, length); // [n, length, V]
            LastPositionArgmax(logits.Span, n, length, vocab, answers.AsSpan(start, n));
        }
        return answers;
    }

    /// <summary>For logits [count, time, vocab], the likeliest token at each sequence's last position.</summary>
    public static void LastPositionArgmax(ReadOnlySpan<float> logits, int count, int time, int vocab, Span<int> into)
    {
        if (logits.Length != (long)count * time * vocab || into.Length != count)
            throw new ArgumentException($"{logits.Length} logits and {into.Length} answers for [{count}, {time}, {vocab}].");
        for (int n = 0; n < count; n++) into[n] = TensorPrimitives.IndexOfMax(logits.Slice(((n + 1) * time - 1) * vocab, vocab));
    }

    public static double Accuracy(ReadOnlySpan<int> predicted, ReadOnlySpan<int> answers)
    {
        if (predicted.Length != answers.Length || answers.IsEmpty) throw new ArgumentException($"{predicted.Length} predictions for {answers.Length} answers.");
        int right = 0;
        for (int i = 0; i < answers.Length; i++) if (predicted[i] == answers[i]) right++;
        return (double)right / answers.Length;
    }

    /// <summary>The share of prompts whose query letter is among their examples' plaintext letters.</summary>
    public static double QueryShown(PromptSet set)
    {
        int shown = 0;
        for (int n = 0; n < set.Answers.Length; n++)
        {
            var prompt = set.Tokens.AsSpan(n * set.Length, set.Length);
            for (int i = 0; i < set.Shots; i++)
                if (prompt[i * SubstitutionCiphers.TokensPerExample] == prompt[^1]) { shown++; break; }
        }
        return (double)shown / set.Answers.Length;
    }

    /// <summary>The curve: for each k, <paramref name="prompts"/> fresh held-out prompts (seeded) and their controls.</summary>
    public static IReadOnlyList<InContextPoint> Run(Gpt gpt, IReadOnlyList<int> shots, int prompts, ulong seed, Action<InContextPoint>? onPoint = null)
    {
        gpt.Eval();
        var points = new List<InContextPoint>();
        foreach (int k in shots)
        {
            var rng = new Rng(seed + (ulong)k); // each k its own stream: a point does not depend on which others are measured
            var set = Draw(ref rng, k, prompts);
            var any = Draw(ref rng, k, prompts, queryShown: false);
            var point = new InContextPoint(k, prompts, Accuracy(Answer(gpt, set.Tokens, prompts), set.Answers),
                Accuracy(Answer(gpt, any.Tokens, prompts), any.Answers), QueryShown(any), Accuracy(Answer(gpt, set.Controls, prompts), set.Answers));
            onPoint?.Invoke(point);
            points.Add(point);
        }
        return points;
    }
}
