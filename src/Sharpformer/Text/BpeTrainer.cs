using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sharpformer.Text;

/// <summary>A learned byte-level BPE vocabulary: tokens in id order and the merges in the order they were learned.</summary>
public sealed record BpeVocabulary(IReadOnlyList<string> Tokens, IReadOnlyList<(string Left, string Right)> Merges)
{
    /// <summary>
    /// Writes <c>vocab.json</c> (token → id, in id order) and <c>merges.txt</c> ("#version: 0.2", then one
    /// "left right" per line, rank order), the files GPT-2 ships and <see cref="SubwordTokenizer.Load"/> reads.
    /// Tokens never hold a space (a space byte is 'Ġ'), so a merge line splits unambiguously.
    /// </summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        using (var stream = File.Create(Path.Combine(folder, SubwordTokenizer.VocabFile)))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            for (int id = 0; id < Tokens.Count; id++) json.WriteNumber(Tokens[id], id);
            json.WriteEndObject();
        }
        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var (left, right) in Merges) merges.Append(left).Append(' ').Append(right).Append('\n');
        File.WriteAllText(Path.Combine(folder, SubwordTokenizer.MergesFile), merges.ToString(), new UTF8Encoding(false));
    }

    /// <summary>Reads what <see cref="Save"/> wrote.</summary>
    public static BpeVocabulary Load(string folder)
    {
        string vocabPath = Path.Combine(folder, SubwordTokenizer.VocabFile), mergesPath = Path.Combine(folder, SubwordTokenizer.MergesFile);
        using var document = JsonDocument.Parse(File.ReadAllBytes(vocabPath));
        var tokens = document.RootElement.EnumerateObject().Select(p => (p.Name, Id: p.Value.GetInt32())).OrderBy(p => p.Id).ToArray();
        for (int i = 0; i < tokens.Length; i++)
            if (tokens[i].Id != i) throw new InvalidDataException($"{vocabPath}: ids must run 0..{tokens.Length - 1} without gaps; id {i} is missing.");
        var merges = File.ReadAllLines(mergesPath).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).Select(l => ParseMerge(l, mergesPath)).ToArray();
        return new BpeVocabulary(tokens.Select(t => t.Name).ToArray(), merges);
    }

    /// <summary>The vocabulary a "bpe" tokenizer spec holds inline.</summary>
    public static BpeVocabulary FromSpec(TokenizerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Tokens is null || spec.Merges is null) throw new InvalidDataException("A bpe tokenizer spec must list its tokens and merges.");
        return new BpeVocabulary(spec.Tokens, spec.Merges.Select(m => ParseMerge(m, "the tokenizer spec")).ToArray());
    }

    static (string, string) ParseMerge(string line, string source)
    {
        int space = line.IndexOf(' ');
        if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
            throw new InvalidDataException($"{source}: merge '{line}' is not two tokens separated by one space.");
        return (line[..space], line[(space + 1)..]);
    }
}

/// <summary>
/// Learns byte-level BPE merges (Sennrich et al. 2016, on GPT-2's byte alphabet) from training text. Repeatedly
/// merges the most frequent adjacent pair of symbols within pre-tokenized words; ties go to the pair whose left
/// symbol, then right symbol, comes first in ordinal order of their text in the byte alphabet, so the result
/// depends only on the multiset of words. Pair counts are kept incrementally: a merge touches only the words that
/// hold the pair (an index from pair to words) and a priority queue with lazy deletion yields the next best pair.
/// </summary>
public static class BpeTrainer
{
    /// <summary>Four special tokens and 256 bytes: the smallest vocabulary.</summary>
    public static int MinVocabSize => SubwordTokenizer.FirstByteId + 256;

    /// <summary>
    /// Learns merges until the vocabulary (special tokens + 256 bytes + merges) has <paramref name="vocabSize"/>
    /// tokens, or no pair occurs <paramref name="minFrequency"/> times any more.
    /// </summary>
    public static BpeVocabulary Train(IEnumerable<string> texts, int vocabSize, int minFrequency = 2)
    {
        if (vocabSize < MinVocabSize) throw new ArgumentException($"A byte-level BPE vocabulary needs at least {MinVocabSize} tokens (4 special + 256 bytes); {vocabSize} was asked for.");
        if (minFrequency < 1) throw new ArgumentException($"The minimum pair frequency must be at least 1, not {minFrequency}.");

        var symbols = new List<string>(vocabSize); // symbol text by internal id; bytes are 0..255
        foreach (char c in SubwordTokenizer.ByteToChar) symbols.Add(c.ToString());
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < symbols.Count; i++) ids[symbols[i]] = i;
        var (words, frequencies) = CountWords(texts);

        var counts = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Count; w++)
            for (int i = 0; i + 1 < words[w].Length; i++)
            {
                long key = Key(words[w][i], words[w][i + 1]);
                counts[key] = counts.GetValueOrDefault(key) + frequencies[w];
                Where(key).Add(w);
            }

        var queue = new PriorityQueue<long, (long Count, int Left, int Right)>(Comparer<(long Count, int Left, int Right)>.Create((x, y) =>
        {
            int c = y.Count.CompareTo(x.Count); // most frequent first
            if (c != 0) return c;
            c = string.CompareOrdinal(symbols[x.Left], symbols[y.Left]);
            return c != 0 ? c : string.CompareOrdinal(symbols[x.Right], symbols[y.Right]);
        }));
        foreach (var (key, count) in counts) queue.Enqueue(key, (count, Left(key), Right(key)));

        var merges = new List<(string, string)>();
        var delta = new Dictionary<long, long>();
        var merged = new List<int>();
        while (SubwordTokenizer.FirstByteId + symbols.Count < vocabSize && queue.TryDequeue(out long best, out var entry))
        {
            long current = counts.GetValueOrDefault(best);
            if (current != entry.Count)
            {
                // Stale: the count changed since this entry was queued (every rise was queued too); queue what it is now.
                if (current > 0) queue.Enqueue(best, (current, entry.Left, entry.Right));
                continue;
            }
            if (current < minFrequency) break;

            int a = entry.Left, b = entry.Right;
            // Two merge paths can spell the same token ("a"+"bc", "ab"+"c"): it keeps one id, as in HF tokenizers.
            string text = symbols[a] + symbols[b];
            if (!ids.TryGetValue(text, out int ab)) { ab = ids[text] = symbols.Count; symbols.Add(text); }
            merges.Add((symbols[a], symbols[b]));
            delta.Clear();
            foreach (int w in where[best])
            {
                var word = words[w];
                merged.Clear();
                for (int i = 0; i < word.Length; i++)
                {
                    if (i + 1 < word.Length && word[i] == a && word[i + 1] == b) { merged.Add(ab); i++; }
                    else merged.Add(word[i]);
                }
                if (merged.Count == word.Length) continue;
                long f = frequencies[w];
                for (int i = 0; i + 1 < word.Length; i++) Add(delta, Key(word[i], word[i + 1]), -f);
                for (int i = 0; i + 1 < merged.Count; i++)
                {
                    long key = Key(merged[i], merged[i + 1]);
                    Add(delta, key, f);
                    if (merged[i] == ab || merged[i + 1] == ab) Where(key).Add(w);
                }
                words[w] = merged.ToArray();
            }
            foreach (var (key, change) in delta)
            {
                if (change == 0) continue;
                long updated = counts.GetValueOrDefault(key) + change;
                if (updated > 0) counts[key] = updated; else counts.Remove(key);
                if (change > 0) queue.Enqueue(key, (updated, Left(key), Right(key))); // only pairs with the merged symbol grow
            }
            counts.Remove(best);
            where.Remove(best);
        }

        var tokens = new List<string>(SubwordTokenizer.SpecialTokens);
        tokens.AddRange(symbols);
        return new BpeVocabulary(tokens, merges);

        HashSet<int> Where(long key)
        {
            if (!where.TryGetValue(key, out var set)) where[key] = set = [];
            return set;
        }
    }

    /// <summary>The distinct pre-tokenized words of the texts as byte-symbol sequences, in ordinal order, with their counts.</summary>
    static (List<int[]> Words, List<long> Frequencies) CountWords(IEnumerable<string> texts)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var pattern = SubwordTokenizer.PreTokenizePattern();
        foreach (var text in texts)
            foreach (var match in pattern.EnumerateMatches(text))
            {
                var piece = text.Substring(match.Index, match.Length);
                counts[piece] = counts.GetValueOrDefault(piece) + 1;
            }
        var words = new List<int[]>(counts.Count);
        var frequencies = new List<long>(counts.Count);
        foreach (var (word, count) in counts.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var bytes = Encoding.UTF8.GetBytes(word);
            words.Add(Array.ConvertAll(bytes, x => (int)x));
            frequencies.Add(count);
        }
        return (words, frequencies);
    }

    static long Key(int left, int right) => (long)left << 32 | (uint)right;
    static int Left(long key) => (int)(key >> 32);
    static int Right(long key) => (int)key;
    static void Add(Dictionary<long, long> map, long key, long value) => map[key] = map.GetValueOrDefault(key) + value;
}
