using System.IO.Hashing;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Data;

/// <summary>
/// In-context learning data: every sequence draws a fresh random letter-substitution cipher (a permutation of
/// a–z onto A–Z) and shows examples of it, "aQa mXm aQa tBt ..." (no spaces in the tokens), plaintext letters
/// drawn with replacement from a random few (<see cref="LettersPerSequence"/>). A model can only answer an
/// example's cipher letter by finding the same plaintext letter in an earlier example, so what it learns is to
/// read the task from its context. One in <see cref="HeldOutOneIn"/> ciphers, chosen by a hash of the permutation,
/// is held out: training sequences never use one, evaluation uses only those.
/// </summary>
public static class SubstitutionCiphers
{
    /// <summary>What a run's data setting says to train on these sequences (no files: they are drawn as needed).</summary>
    public const string DataName = "synthetic:substitution-cipher";
    public const int Letters = 26;
    /// <summary>
    /// An example is plaintext letter, cipher letter, plaintext letter again. The echo is a target too: predicting it
    /// from the cipher letter teaches a head to look one token back, the first half of the two-layer circuit
    /// (an induction head) that answers from an earlier example. Without it a 2-layer model stayed at guessing
    /// among the cipher letters in its context for 9,000 steps; with it, it learned to read the examples in 2,000.
    /// </summary>
    public const int TokensPerExample = 3;
    public const int HeldOutOneIn = 8;
    /// <summary>
    /// Each sequence's plaintext letters come from a random few of the 26, so letters repeat often and most answers
    /// can be read from an earlier example (with all 26 letters, a 3-layer model stayed at uniform guessing for
    /// 1,800 steps).
    /// </summary>
    public const int LettersPerSequence = 8;
    /// <summary>The character vocabulary, in code-point order as a corpus's would be: A–Z (cipher), a–z (plaintext).</summary>
    public const string Vocabulary = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static CharTokenizer Tokenizer { get; } = new(Vocabulary);
    public static int CipherToken(int letter) => letter;
    public static int PlainToken(int letter) => Letters + letter;
    public static bool IsCipherToken(int token) => token is >= 0 and < Letters;

    /// <summary>Held out from training: a fixed pseudo-random eighth of all 26! ciphers (XxHash64 of the permutation).</summary>
    public static bool IsHeldOut(ReadOnlySpan<byte> cipher) => XxHash64.HashToUInt64(cipher) % HeldOutOneIn == 0;

    /// <summary>A uniformly random cipher (cipher[p] is the image of plaintext letter p) from the training or the held-out ones.</summary>
    public static void Draw(ref Rng rng, bool heldOut, Span<byte> cipher)
    {
        if (cipher.Length != Letters) throw new ArgumentException($"A cipher maps {Letters} letters, not {cipher.Length}.");
        do
        {
            for (int i = 0; i < Letters; i++) cipher[i] = (byte)i;
            for (int i = Letters - 1; i > 0; i--) // Fisher–Yates
            {
                int j = rng.NextInt(i + 1);
                (cipher[i], cipher[j]) = (cipher[j], cipher[i]);
            }
        } while (IsHeldOut(cipher) != heldOut);
    }

    /// <summary>A sequence's plaintext letters: <see cref="LettersPerSequence"/> distinct letters, uniformly.</summary>
    public static void DrawLetters(ref Rng rng, Span<byte> letters)
    {
        Span<byte> all = stackalloc byte[Letters];
        for (int i = 0; i < Letters; i++) all[i] = (byte)i;
        for (int i = 0; i < letters.Length; i++) // a partial Fisher–Yates
        {
            int j = i + rng.NextInt(Letters - i);
            (all[i], all[j]) = (all[j], all[i]);
            letters[i] = all[i];
        }
    }

    /// <summary>One example's tokens: plaintext, cipher, plaintext again.</summary>
    public static void WriteExample(Span<int> to, int plain, int cipherLetter)
    {
        to[0] = PlainToken(plain);
        to[1] = CipherToken(cipherLetter);
        to[2] = PlainToken(plain);
    }

    /// <summary>Tokens as text with a space after each example, for people to read ("aQa mXm a").</summary>
    public static string Show(ReadOnlySpan<int> tokens)
    {
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < tokens.Length; i += TokensPerExample)
        {
            if (i > 0) text.Append(' ');
            text.Append(Tokenizer.Decode(tokens[i..Math.Min(tokens.Length, i + TokensPerExample)]));
        }
        return text.ToString();
    }

    /// <summary>The longest prompt (examples + query) a context of <paramref name="blockSize"/> tokens holds.</summary>
    public static int MaxShots(int blockSize) => (blockSize - 1) / TokensPerExample;

    /// <summary>
    /// <paramref name="answers"/>.Length prompts of <paramref name="shots"/> examples of a held-out cipher and
    /// a query, each 3k + 1 tokens in <paramref name="tokens"/> ("aQamXma"); the answer is the query's cipher token.
    /// With <paramref name="queryShown"/> the query is one of the examples (any letter when k = 0): the answer is in
    /// the context, and reading it from there is the skill measured. Otherwise it is any of the prompt's
    /// <see cref="LettersPerSequence"/> letters, shown or not, so more examples tell more of the answers.
    /// <paramref name="controls"/> gets the same prompts with each example's cipher letter taken from another
    /// held-out cipher, so the examples no longer tell the answer.
    /// </summary>
    public static void Prompts(ref Rng rng, int shots, bool queryShown, Span<int> tokens, Span<int> controls, Span<int> answers)
    {
        int length = shots * TokensPerExample + 1;
        if (shots < 0 || tokens.Length != (long)length * answers.Length || controls.Length != tokens.Length)
            throw new ArgumentException($"{answers.Length} prompts of {shots} examples need {(long)length * answers.Length} tokens and as many control tokens, not {tokens.Length} and {controls.Length}.");
        Span<byte> cipher = stackalloc byte[Letters], other = stackalloc byte[Letters], letters = stackalloc byte[LettersPerSequence];
        for (int n = 0; n < answers.Length; n++)
        {
            var prompt = tokens.Slice(n * length, length);
            var control = controls.Slice(n * length, length);
            Draw(ref rng, heldOut: true, cipher);
            Draw(ref rng, heldOut: true, other);
            DrawLetters(ref rng, letters);
            for (int i = 0; i < shots; i++)
            {
                int p = letters[rng.NextInt(LettersPerSequence)];
                WriteExample(prompt[(i * TokensPerExample)..], p, cipher[p]);
                WriteExample(control[(i * TokensPerExample)..], p, other[p]);
            }
            int query = shots == 0 ? rng.NextInt(Letters)
                : queryShown ? prompt[rng.NextInt(shots) * TokensPerExample] - PlainToken(0)
                : letters[rng.NextInt(LettersPerSequence)];
            prompt[^1] = control[^1] = PlainToken(query);
            answers[n] = CipherToken(cipher[query]);
        }
    }
}

/// <summary>
/// Training (or validation) batches of cipher examples: each row a fresh cipher, the training ones or the held-out
/// ones, and T + 1 tokens of examples; the targets are each example's cipher letter (the error in answering from
/// the examples before) and its echo; the next example's plaintext letter, which is random, is ignored (-1).
/// </summary>
public sealed class SubstitutionCipherBatches : IBatchSource
{
    readonly TokenBatch batch;
    readonly bool heldOut;
    readonly byte[] ciphers;
    readonly int[] sequence;
    readonly byte[] letters = new byte[SubstitutionCiphers.LettersPerSequence];

    public SubstitutionCipherBatches(int batchSize, int blockSize, bool heldOut)
    {
        batch = new TokenBatch(batchSize, blockSize);
        this.heldOut = heldOut;
        ciphers = new byte[batchSize * SubstitutionCiphers.Letters];
        sequence = new int[(blockSize / SubstitutionCiphers.TokensPerExample + 1) * SubstitutionCiphers.TokensPerExample]; // whole examples covering T + 1 tokens
    }

    /// <summary>The cipher row <paramref name="row"/> of the last batch used.</summary>
    public ReadOnlySpan<byte> Cipher(int row) => ciphers.AsSpan(row * SubstitutionCiphers.Letters, SubstitutionCiphers.Letters);

    public Batch Next(ref Rng rng)
    {
        int T = batch.Time;
        for (int b = 0; b < batch.Batch; b++)
        {
            var cipher = ciphers.AsSpan(b * SubstitutionCiphers.Letters, SubstitutionCiphers.Letters);
            SubstitutionCiphers.Draw(ref rng, heldOut, cipher);
            SubstitutionCiphers.DrawLetters(ref rng, letters);
            for (int t = 0; t <= T; t += SubstitutionCiphers.TokensPerExample)
            {
                int p = letters[rng.NextInt(letters.Length)];
                SubstitutionCiphers.WriteExample(sequence.AsSpan(t), p, cipher[p]);
            }
            var inputs = batch.Inputs.AsSpan(b * T, T);
            var targets = batch.Targets.AsSpan(b * T, T);
            sequence.AsSpan(0, T).CopyTo(inputs);
            for (int t = 0; t < T; t++)
                targets[t] = t % SubstitutionCiphers.TokensPerExample < 2 ? sequence[t + 1] : -1;
        }
        return batch;
    }
}
