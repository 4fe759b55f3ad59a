using Sharpformer.Cli.Commands;
using Sharpformer.Data;
using Sharpformer.Tensors;
using C = Sharpformer.Data.SubstitutionCiphers;

namespace Sharpformer.Tests.Data;

/// <summary>The in-context-learning sequences: seeded, well formed, held-out ciphers never trained on; prompts and scoring.</summary>
public class SubstitutionCipherTests
{
    static (int[] Inputs, int[] Targets)[] Batches(ulong seed, int count, bool heldOut = false)
    {
        var source = new SubstitutionCipherBatches(4, 64, heldOut);
        var rng = new Rng(seed);
        return Enumerable.Range(0, count).Select(_ => (TokenBatch)source.Next(ref rng)).Select(b => (b.Inputs.ToArray(), b.Targets.ToArray())).ToArray();
    }

    [Fact]
    public void TheSameSeedDrawsTheSameBatchesAndAResumedGeneratorContinuesThem()
    {
        var a = Batches(7, 3);
        var b = Batches(7, 3);
        for (int i = 0; i < 3; i++) { Assert.Equal(a[i].Inputs, b[i].Inputs); Assert.Equal(a[i].Targets, b[i].Targets); }
        Assert.NotEqual(a[0].Inputs, Batches(8, 1)[0].Inputs);

        // The source keeps no state of its own: the generator's state is all a checkpoint needs.
        var source = new SubstitutionCipherBatches(4, 64, heldOut: false);
        var rng = new Rng(7);
        source.Next(ref rng);
        var resumed = Rng.FromState(rng.State);
        var fresh = new SubstitutionCipherBatches(4, 64, heldOut: false);
        Assert.Equal(((TokenBatch)fresh.Next(ref resumed)).Inputs, a[1].Inputs);
    }

    [Theory]
    [InlineData(false, 64)]
    [InlineData(true, 64)]
    [InlineData(false, 17)]
    public void RowsAreExamplesOfTheirCipherAndTheTargetsAreTheCipherLetterAndTheEcho(bool heldOut, int time)
    {
        var source = new SubstitutionCipherBatches(5, time, heldOut);
        var rng = new Rng(3);
        for (int step = 0; step < 20; step++)
        {
            var batch = (TokenBatch)source.Next(ref rng);
            for (int b = 0; b < batch.Batch; b++)
            {
                var cipher = source.Cipher(b).ToArray();
                Assert.Equal(Enumerable.Range(0, C.Letters), cipher.Select(c => (int)c).Order()); // a permutation
                Assert.Equal(heldOut, C.IsHeldOut(cipher));
                var x = batch.Inputs.AsSpan(b * time, time);
                var y = batch.Targets.AsSpan(b * time, time);
                for (int t = 0; t < time; t++)
                {
                    switch (t % 3)
                    {
                        case 0: // plaintext: the target is its cipher letter, the next input
                            int p = x[t] - C.PlainToken(0);
                            Assert.InRange(p, 0, C.Letters - 1);
                            Assert.Equal(C.CipherToken(cipher[p]), y[t]);
                            if (t + 1 < time) Assert.Equal(y[t], x[t + 1]);
                            break;
                        case 1: // cipher letter: the target is the plaintext's echo
                            Assert.True(C.IsCipherToken(x[t]));
                            Assert.Equal(x[t - 1], y[t]);
                            if (t + 1 < time) Assert.Equal(x[t - 1], x[t + 1]);
                            break;
                        default: // the echo: the next example's plaintext letter is random and not a target
                            Assert.Equal(-1, y[t]);
                            break;
                    }
                }
            }
        }
        Assert.Equal("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", C.Tokenizer.Decode(Enumerable.Range(0, 52).ToArray()));
        Assert.Equal("aQa mXm t", C.Show(C.Tokenizer.Encode("aQamXmt")));
    }

    [Fact]
    public void TrainingNeverDrawsAHeldOutCipherAndEighthOfAllCiphersAreHeldOut()
    {
        var source = new SubstitutionCipherBatches(32, 8, heldOut: false);
        var rng = new Rng(11);
        for (int step = 0; step < 300; step++)
        {
            source.Next(ref rng);
            for (int b = 0; b < 32; b++) Assert.False(C.IsHeldOut(source.Cipher(b)));
        }
        // Unfiltered uniform permutations: the held-out rule takes about one in eight, so both sides are large.
        var r = new Rng(5);
        var perm = new byte[C.Letters];
        int held = 0, n = 8000;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < C.Letters; j++) perm[j] = (byte)j;
            for (int j = C.Letters - 1; j > 0; j--) { int k = r.NextInt(j + 1); (perm[j], perm[k]) = (perm[k], perm[j]); }
            if (C.IsHeldOut(perm)) held++;
        }
        Assert.InRange(held / (double)n, 0.11, 0.14);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(16)]
    public void PromptsShowTheQueryAmongTheirExamplesAndTheControlOnlyChangesTheCipherLetters(int shots)
    {
        var rng = new Rng(2);
        var set = InContextEvaluation.Draw(ref rng, shots, 200);
        Assert.Equal(3 * shots + 1, set.Length);
        int differing = 0;
        for (int n = 0; n < 200; n++)
        {
            var prompt = set.Tokens.AsSpan(n * set.Length, set.Length);
            var control = set.Controls.AsSpan(n * set.Length, set.Length);
            int query = prompt[^1];
            Assert.Equal(query, control[^1]);
            Assert.InRange(query - C.PlainToken(0), 0, C.Letters - 1);
            Assert.True(C.IsCipherToken(set.Answers[n]));
            var seen = new Dictionary<int, int>();
            for (int i = 0; i < shots; i++)
            {
                Assert.Equal(prompt[3 * i], control[3 * i]);
                Assert.Equal((prompt[3 * i], prompt[3 * i]), (prompt[3 * i + 2], control[3 * i + 2])); // the echo
                if (prompt[3 * i + 1] != control[3 * i + 1]) differing++;
                // One cipher per prompt: a plaintext letter always shows the same cipher letter.
                Assert.Equal(prompt[3 * i + 1], seen.TryGetValue(prompt[3 * i], out int c) ? c : seen[prompt[3 * i]] = prompt[3 * i + 1]);
            }
            if (shots > 0) Assert.Equal(set.Answers[n], seen[query]);
        }
        if (shots > 0) Assert.True(differing > 0.9 * 200 * shots * 0.9, $"{differing} pairs differ in the controls");
    }

    [Fact]
    public void TheScorerTakesTheLastPositionsArgmaxAndCountsMatches()
    {
        // Two prompts of two positions over a vocabulary of three; only the last position of each counts.
        float[] logits =
        [
            9, 0, 0,   0, 1, 0,  // prompt 0: last position says 1
            0, 0, 9,   3, 2, 1,  // prompt 1: last position says 0
        ];
        var predicted = new int[2];
        InContextEvaluation.LastPositionArgmax(logits, 2, 2, 3, predicted);
        Assert.Equal([1, 0], predicted);
        Assert.Equal(0.5, InContextEvaluation.Accuracy(predicted, [1, 2]));
        Assert.Equal(1.0, InContextEvaluation.Accuracy(predicted, [1, 0]));
        Assert.Throws<ArgumentException>(() => InContextEvaluation.Accuracy(predicted, [1]));
    }

    [Fact]
    public void AReaderOfTheContextScoresFullMarksAndTheControlFallsToChance()
    {
        // A perfect in-context learner: the cipher letter after the query's last occurrence (a guess when absent).
        static int[] Read(int[] tokens, int length, int count) => Enumerable.Range(0, count).Select(n =>
        {
            var p = tokens.AsSpan(n * length, length);
            for (int i = length - 4; i >= 0; i -= 3) if (p[i] == p[^1]) return p[i + 1];
            return C.CipherToken(0);
        }).ToArray();
        var rng = new Rng(9);
        var none = InContextEvaluation.Draw(ref rng, 0, 1000);
        Assert.InRange(InContextEvaluation.Accuracy(Read(none.Tokens, none.Length, 1000), none.Answers), 0.01, 0.07);
        var eight = InContextEvaluation.Draw(ref rng, 8, 1000);
        Assert.Equal(1.0, InContextEvaluation.Accuracy(Read(eight.Tokens, eight.Length, 1000), eight.Answers));
        Assert.InRange(InContextEvaluation.Accuracy(Read(eight.Controls, eight.Length, 1000), eight.Answers), 0.01, 0.07);
        Assert.Equal(1.0, InContextEvaluation.QueryShown(eight));

        // A query any of the prompt's letters is shown about 1 - (7/8)^k of the time; the reader knows just those.
        var any = InContextEvaluation.Draw(ref rng, 8, 1000, queryShown: false);
        double shown = InContextEvaluation.QueryShown(any), read = InContextEvaluation.Accuracy(Read(any.Tokens, any.Length, 1000), any.Answers);
        Assert.InRange(shown, 1 - Math.Pow(7.0 / 8, 8) - 0.05, 1 - Math.Pow(7.0 / 8, 8) + 0.05);
        Assert.InRange(read - shown, 0, 0.03);
    }
}
