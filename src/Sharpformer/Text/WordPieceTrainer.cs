using System.Text;
using Microsoft.ML.Tokenizers;

namespace Sharpformer.Text;

/// <summary>How a WordPiece vocabulary is learned, and the normalisation its tokenizer must repeat.</summary>
public sealed record WordPieceTrainerOptions
{
    /// <summary>Size of the written vocabulary, special tokens and the character alphabet included.</summary>
    public int VocabSize { get; init; } = 8000;
    /// <summary>A pair seen fewer times than this (counted over the corpus) is never merged.</summary>
    public int MinPairFrequency { get; init; } = 2;
    /// <summary>BERT uncased: lower-case, and strip accents (drop non-spacing marks after NFD).</summary>
    public bool LowerCase { get; init; } = true;
    public bool StripAccents { get; init; } = true;
    /// <summary>Each CJK ideograph becomes a word of its own, as BERT's basic tokenizer does.</summary>
    public bool SplitCjk { get; init; } = true;
}

/// <summary>
/// Learns a WordPiece vocabulary as Hugging Face <c>tokenizers</c>' <c>WordPieceTrainer</c> does: BPE merges over
/// the corpus's words, where a piece that does not start a word carries the <c>##</c> prefix; the vocabulary is the
/// special tokens, then the alphabet, then each merge's result in merge order. Encoding is then WordPiece's greedy
/// longest match (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>), not a replay of the merges.
/// </summary>
/// <remarks>
/// Words are cut exactly as <see cref="BertTokenizer"/> cuts them, by running its own <see cref="BertNormalizer"/> and
/// word-or-punctuation pre-tokenizer, so training and encoding cannot disagree about what a word is. That pre-tokenizer
/// (<c>\w+|\p{P}</c>) drops symbols that are neither word characters nor punctuation (<c>$ + &lt; = ` |</c> …).
/// Layout of vocab.txt (one token per line, id = line number from 0): [PAD] [UNK] [CLS] [SEP] [MASK] at 0–4, then every
/// code point that starts a word, sorted by code point, then every <c>##</c>code point seen inside a word, sorted, then
/// the merges. Ties between pairs of equal count go to the pair whose (left, right) strings sort first (ordinal), so the
/// output depends only on the corpus and the options. Words longer than <see cref="MaxWordChars"/> are skipped, since
/// the tokenizer maps them to [UNK] whatever the vocabulary.
/// </remarks>
public static class WordPieceTrainer
{
    public const string ContinuingPrefix = "##";
    /// <summary>Microsoft.ML.Tokenizers' default MaxInputCharsPerWord.</summary>
    public const int MaxWordChars = 100;

    /// <summary>Learns the vocabulary of <paramref name="corpus"/> and returns its tokens in id order.</summary>
    public static List<string> Train(string corpus, WordPieceTrainerOptions options)
    {
        var words = CountWords(corpus, options);
        var symbols = new List<string>();
        var symbolIds = new Dictionary<string, int>(StringComparer.Ordinal);
        int Intern(string s)
        {
            if (!symbolIds.TryGetValue(s, out int id)) { id = symbols.Count; symbolIds.Add(s, id); symbols.Add(s); }
            return id;
        }

        // The alphabet: word-initial code points, then ## code points, each sorted by code point.
        var initial = new SortedSet<int>();
        var inner = new SortedSet<int>();
        foreach (var word in words.Keys)
        {
            bool first = true;
            foreach (var rune in word.EnumerateRunes()) { (first ? initial : inner).Add(rune.Value); first = false; }
        }
        var vocab = new List<string>(WordPieceVocabulary.SpecialTokens);
        foreach (var cp in initial) vocab.Add(char.ConvertFromUtf32(cp));
        foreach (var cp in inner) vocab.Add(ContinuingPrefix + char.ConvertFromUtf32(cp));
        if (vocab.Count > options.VocabSize)
            throw new ArgumentException($"A vocabulary of {options.VocabSize} tokens cannot hold the {WordPieceVocabulary.SpecialTokens.Length} special tokens and the corpus's {vocab.Count - WordPieceVocabulary.SpecialTokens.Length} characters; use a vocabulary size of at least {vocab.Count}.");
        var inVocab = new HashSet<string>(vocab, StringComparer.Ordinal);

        // Each distinct word as a sequence of symbol ids, with its count.
        var wordSymbols = new List<int[]>(words.Count);
        var wordCounts = new List<long>(words.Count);
        foreach (var (word, count) in words.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            var ids = new List<int>(word.Length);
            bool first = true;
            foreach (var rune in word.EnumerateRunes())
            {
                ids.Add(Intern(first ? rune.ToString() : ContinuingPrefix + rune.ToString()));
                first = false;
            }
            wordSymbols.Add([.. ids]);
            wordCounts.Add(count);
        }

        // Pair counts, the words holding each pair, and a max-heap of (count, pair) with lazy deletion.
        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < wordSymbols.Count; w++) AddPairs(w, +1, before: null);
        var heap = new PriorityQueue<long, (long Count, string Left, string Right)>(Comparer<(long Count, string Left, string Right)>.Create(
            (a, b) => a.Count != b.Count ? b.Count.CompareTo(a.Count)
                : string.CompareOrdinal(a.Left, b.Left) is var c && c != 0 ? c : string.CompareOrdinal(a.Right, b.Right)));
        foreach (var (pair, count) in pairCounts) Push(pair, count);

        var before = new Dictionary<long, long>(); // each touched pair's count before this merge
        while (vocab.Count < options.VocabSize && heap.TryDequeue(out long best, out var key))
        {
            if (!pairCounts.TryGetValue(best, out long current) || current != key.Count) continue; // stale entry
            if (current < options.MinPairFrequency) break;
            int left = (int)(best >> 32), right = (int)best;
            string merged = symbols[left] + (symbols[right].StartsWith(ContinuingPrefix, StringComparison.Ordinal) ? symbols[right][ContinuingPrefix.Length..] : symbols[right]);
            int mergedId = Intern(merged);
            if (inVocab.Add(merged)) vocab.Add(merged);

            before.Clear();
            foreach (int w in pairWords[best].ToArray())
            {
                AddPairs(w, -1, before);
                wordSymbols[w] = Merge(wordSymbols[w], left, right, mergedId);
                AddPairs(w, +1, before);
            }
            // Only pairs whose count changed need a fresh heap entry; most of a word's pairs come back unchanged.
            foreach (var (pair, old) in before)
                if (pairCounts.TryGetValue(pair, out long count) && count != old) Push(pair, count);
        }
        return vocab;

        void AddPairs(int w, int sign, Dictionary<long, long>? before)
        {
            var s = wordSymbols[w];
            long delta = sign * wordCounts[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                long pair = ((long)s[i] << 32) | (uint)s[i + 1];
                long old = pairCounts.GetValueOrDefault(pair);
                before?.TryAdd(pair, old);
                long count = old + delta;
                if (count == 0) { pairCounts.Remove(pair); pairWords.Remove(pair); }
                else
                {
                    pairCounts[pair] = count;
                    if (sign > 0)
                    {
                        if (!pairWords.TryGetValue(pair, out var set)) pairWords[pair] = set = [];
                        set.Add(w);
                    }
                }
            }
        }

        void Push(long pair, long count) => heap.Enqueue(pair, (count, symbols[(int)(pair >> 32)], symbols[(int)pair]));
    }

    /// <summary>Learns a vocabulary and writes it as vocab.txt (UTF-8, one token per line).</summary>
    public static List<string> TrainToFile(string corpus, string vocabPath, WordPieceTrainerOptions options)
    {
        var vocab = Train(corpus, options);
        WordPieceVocabulary.Write(vocabPath, vocab);
        return vocab;
    }

    /// <summary>The corpus's words as <see cref="BertTokenizer"/> would see them, with their counts.</summary>
    public static Dictionary<string, long> CountWords(string corpus, WordPieceTrainerOptions options)
    {
        var words = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = words.GetAlternateLookup<ReadOnlySpan<char>>();
        // BertNormalizer is internal to Microsoft.ML.Tokenizers: borrow the normaliser and pre-tokenizer of a BertTokenizer built
        // with the same options over a vocabulary of only the special tokens.
        var basic = BasicTokenizer(options);
        string normalized = basic.Normalizer!.Normalize(WordPieceVocabulary.TabsAndNewlinesToSpaces(corpus));
        foreach (var (offset, length) in basic.PreTokenizer!.PreTokenize(normalized))
        {
            var word = normalized.AsSpan(offset, length);
            if (word.Length > MaxWordChars) continue;
            lookup[word] = lookup.TryGetValue(word, out long n) ? n + 1 : 1;
        }
        return words;
    }

    static BertTokenizer BasicTokenizer(WordPieceTrainerOptions options)
    {
        using var vocab = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', WordPieceVocabulary.SpecialTokens) + "\n"));
        return BertTokenizer.Create(vocab, WordPieceVocabulary.Options(options.LowerCase, options.StripAccents, options.SplitCjk));
    }

    /// <summary>Replaces each non-overlapping (left, right), scanning left to right, by <paramref name="merged"/>.</summary>
    static int[] Merge(int[] s, int left, int right, int merged)
    {
        var result = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (i + 1 < s.Length && s[i] == left && s[i + 1] == right) { result.Add(merged); i++; }
            else result.Add(s[i]);
        }
        return [.. result];
    }
}

/// <summary>A WordPiece vocab.txt: reading, writing and checking that it holds BERT's special tokens.</summary>
public static class WordPieceVocabulary
{
    public const string Pad = "[PAD]", Unk = "[UNK]", Cls = "[CLS]", Sep = "[SEP]", Mask = "[MASK]";
    /// <summary>The special tokens in the order the trainer writes them (ids 0–4).</summary>
    public static readonly string[] SpecialTokens = [Pad, Unk, Cls, Sep, Mask];

    /// <summary>
    /// Microsoft.ML.Tokenizers 2.0.1's BERT normaliser deletes \t, \n and \r instead of treating them as spaces, so
    /// "one\nline" becomes one word (dotnet/machinelearning#7724; BERT and Hugging Face count them as whitespace). The
    /// trainer and <see cref="WordPieceTokenizer"/> pass text through this first.
    /// </summary>
    public static string TabsAndNewlinesToSpaces(string text) => text.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>The BertTokenizer settings for a vocabulary trained with these normalisation options.</summary>
    public static BertOptions Options(bool lowerCase, bool stripAccents, bool splitCjk) => new()
    {
        LowerCaseBeforeTokenization = lowerCase,
        RemoveNonSpacingMarks = stripAccents,
        IndividuallyTokenizeCjk = splitCjk,
        UnknownToken = Unk, PaddingToken = Pad, ClassificationToken = Cls, SeparatorToken = Sep, MaskingToken = Mask,
    };

    public static void Write(string path, IEnumerable<string> tokens)
    {
        var text = new StringBuilder();
        foreach (var token in tokens) text.Append(token).Append('\n');
        File.WriteAllText(path, text.ToString(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }

    /// <summary>
    /// Reads a vocab.txt and checks it is one a BERT tokenizer can use: every special token present, no token twice,
    /// no blank token. Returns the tokens in id order; throws <see cref="InvalidDataException"/> naming the problem.
    /// </summary>
    public static string[] Validate(string path) => Validate(path, SpecialTokens);

    /// <summary>As <see cref="Validate(string)"/>, for a vocabulary whose special tokens have other names.</summary>
    public static string[] Validate(string path, IReadOnlyList<string> specialTokens)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The vocabulary file '{path}' does not exist.", path);
        var tokens = File.ReadAllLines(path, Encoding.UTF8);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokens[i].Trim().Length == 0) throw new InvalidDataException($"The vocabulary '{path}' has a blank token at line {i + 1}.");
            if (!seen.TryAdd(tokens[i], i)) throw new InvalidDataException($"The vocabulary '{path}' lists '{tokens[i]}' twice (lines {seen[tokens[i]] + 1} and {i + 1}).");
        }
        var missing = specialTokens.Where(t => !seen.ContainsKey(t)).ToArray();
        if (missing.Length > 0)
            throw new InvalidDataException($"The vocabulary '{path}' lacks the special token{(missing.Length > 1 ? "s" : "")} {string.Join(", ", missing)}; a BERT vocab.txt must hold {string.Join(" ", specialTokens)}.");
        return tokens;
    }
}
