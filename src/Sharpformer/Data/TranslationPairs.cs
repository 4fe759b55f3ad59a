using System.Text;
using System.Text.RegularExpressions;

namespace Sharpformer.Data;

/// <summary>A source sentence and its translation.</summary>
public sealed record SentencePair(string Source, string Target);

/// <summary>Which part of a corpus a pair belongs to.</summary>
public enum SplitPart { Train, Validation, Test }

/// <summary>A corpus split into train/validation/test.</summary>
public sealed record TranslationSplit(IReadOnlyList<SentencePair> Train, IReadOnlyList<SentencePair> Validation, IReadOnlyList<SentencePair> Test);

/// <summary>What gettext extraction kept and why it dropped the rest.</summary>
public sealed record GettextExtraction(
    IReadOnlyList<SentencePair> Pairs,
    int CataloguesRead,
    IReadOnlyList<string> CataloguesSkipped,
    int Messages,
    int Rejected,
    int Identical,
    int Duplicates);

/// <summary>
/// Sentence pairs for translation: from the gettext catalogues a Debian system carries (English msgid → the
/// language's msgstr), from line-aligned files (Moses style) or from TSV; cleaned, de-duplicated and split by a
/// stable hash of the source so that a sentence's part never changes between runs or machines.
/// </summary>
public static partial class TranslationPairs
{
    public const string DefaultLocaleRoot = "/usr/share/locale";
    public const int MaxWords = 30;

    /// <summary>
    /// Pairs from every <c>ROOT/LANG/LC_MESSAGES/*.mo</c>, files in ordinal name order. Only the folder named exactly
    /// <paramref name="language"/> is read: "de" does not pull in "de_CH" or "de_AT", whose spelling differs
    /// (ß → ss); ask for those by their own name. Plural entries are skipped (their first form is not always the
    /// singular), as are catalogues that are corrupt or not UTF-8 (listed in the result). Of pairs with the same
    /// source the first is kept; pairs whose target equals the source are dropped.
    /// </summary>
    public static GettextExtraction FromGettext(string language, string localeRoot = DefaultLocaleRoot)
    {
        var folder = Path.Combine(localeRoot, language, "LC_MESSAGES");
        var files = Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*.mo").Order(StringComparer.Ordinal).ToArray()
            : [];
        if (files.Length == 0)
        {
            var found = AvailableLanguages(localeRoot);
            throw new FileNotFoundException(
                $"No gettext catalogues for '{language}' in {folder}. Languages with catalogues under {localeRoot}: " +
                (found.Count == 0 ? "none." : string.Join(" ", found) + "."));
        }

        var pairs = new List<SentencePair>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var skipped = new List<string>();
        int read = 0, messages = 0, rejected = 0, identical = 0, duplicates = 0;
        foreach (var file in files)
        {
            GettextCatalog catalog;
            try { catalog = GettextCatalog.Read(file); }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException) { skipped.Add(e.Message); continue; }
            read++;
            foreach (var message in catalog.Messages)
            {
                messages++;
                if (message.IsPlural || Clean(message.Id) is not { } source || Clean(message.Translation) is not { } target) { rejected++; continue; }
                if (source == target) { identical++; continue; }
                if (!seen.Add(source)) { duplicates++; continue; }
                pairs.Add(new SentencePair(source, target));
            }
        }
        return new GettextExtraction(pairs, read, skipped, messages, rejected, identical, duplicates);
    }

    /// <summary>The language folders under a locale root that hold at least one .mo catalogue, sorted.</summary>
    public static IReadOnlyList<string> AvailableLanguages(string localeRoot = DefaultLocaleRoot) =>
        !Directory.Exists(localeRoot) ? [] :
        Directory.GetDirectories(localeRoot)
            .Where(d => Directory.Exists(Path.Combine(d, "LC_MESSAGES")) && Directory.EnumerateFiles(Path.Combine(d, "LC_MESSAGES"), "*.mo").Any())
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The sentence a message holds, or null when it is not a clean sentence: it must be one line of 1–30
    /// whitespace-separated words, with no format specifier (a '%' followed by anything but whitespace — %s, %1$s,
    /// %(name)s, %1 — or braces such as {0}, {name}, {}), no markup (&lt;b&gt;, &amp;amp;), no backslash escapes and no
    /// tab. One keyboard accelerator is removed: a single '_' (GTK) or '&amp;' (Qt) before a letter or digit
    /// ("_Open" → "Open", "Ö_ffnen" → "Öffnen"); a message with several underscores is rejected, since those are
    /// identifiers (LC_ALL_NAME) more often than accelerators.
    /// </summary>
    public static string? Clean(string message)
    {
        var text = message.Trim();
        if (text.Length == 0 || text.AsSpan().IndexOfAny('\n', '\r', '\t') >= 0 || text.Contains('\\')) return null;
        if (FormatSpecifier().IsMatch(text) || Markup().IsMatch(text)) return null;
        text = RemoveAccelerator(text, '_');
        if (text.Contains('_')) return null;
        text = RemoveAccelerator(text, '&');
        int words = WordCount(text);
        return words is >= 1 and <= MaxWords ? text : null;
    }

    static string RemoveAccelerator(string text, char marker)
    {
        int at = text.IndexOf(marker);
        if (at < 0 || at != text.LastIndexOf(marker) || at + 1 >= text.Length || !char.IsLetterOrDigit(text[at + 1])) return text;
        return text.Remove(at, 1);
    }

    /// <summary>Whitespace-separated words, as the 1–30 word filter counts them.</summary>
    public static int WordCount(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    [GeneratedRegex(@"%\S|\{[^{}\s]*\}")]
    private static partial Regex FormatSpecifier();

    [GeneratedRegex(@"<[/!?]?[A-Za-z][^<>]*>|&(#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z]+);")]
    private static partial Regex Markup();

    /// <summary>
    /// The part a source sentence belongs to: FNV-1a (64-bit) of its UTF-8 bytes, modulo 100: below
    /// <paramref name="trainPercent"/> train, then <paramref name="validationPercent"/> validation, the rest test.
    /// </summary>
    public static SplitPart PartOf(string source, int trainPercent = 90, int validationPercent = 5)
    {
        if (trainPercent < 0 || validationPercent < 0 || trainPercent + validationPercent > 100)
            throw new ArgumentException($"Split percentages {trainPercent}/{validationPercent} must be non-negative and add up to at most 100.");
        int bucket = (int)(Fnv1a64(Encoding.UTF8.GetBytes(source)) % 100);
        return bucket < trainPercent ? SplitPart.Train : bucket < trainPercent + validationPercent ? SplitPart.Validation : SplitPart.Test;
    }

    /// <summary>Splits pairs by <see cref="PartOf"/>, keeping their order within each part.</summary>
    public static TranslationSplit Split(IEnumerable<SentencePair> pairs, int trainPercent = 90, int validationPercent = 5)
    {
        var parts = new[] { new List<SentencePair>(), new List<SentencePair>(), new List<SentencePair>() };
        foreach (var pair in pairs) parts[(int)PartOf(pair.Source, trainPercent, validationPercent)].Add(pair);
        return new TranslationSplit(parts[0], parts[1], parts[2]);
    }

    /// <summary>FNV-1a, 64-bit: stable across runs, processes and .NET versions, unlike string.GetHashCode.</summary>
    public static ulong Fnv1a64(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }

    /// <summary>
    /// Line-aligned files, Moses style: line i of the source translates to line i of the target. Different line
    /// counts, or an empty line on either side, are errors naming the files (and the counts or the line).
    /// </summary>
    public static List<SentencePair> ReadAligned(string sourcePath, string targetPath)
    {
        var sources = File.ReadAllLines(sourcePath);
        var targets = File.ReadAllLines(targetPath);
        if (sources.Length != targets.Length)
            throw new InvalidDataException($"{sourcePath} has {sources.Length} lines but {targetPath} has {targets.Length}; line-aligned files must have one translation per source line.");
        var pairs = new List<SentencePair>(sources.Length);
        for (int i = 0; i < sources.Length; i++)
        {
            string source = sources[i].Trim(), target = targets[i].Trim();
            if (source.Length == 0 || target.Length == 0)
                throw new InvalidDataException($"{(source.Length == 0 ? sourcePath : targetPath)} line {i + 1} is empty; remove the line from both files.");
            pairs.Add(new SentencePair(source, target));
        }
        return pairs;
    }

    /// <summary>Tab-separated pairs, "source\ttarget" per line; any other number of fields or an empty side is an error.</summary>
    public static List<SentencePair> ReadTsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var pairs = new List<SentencePair>(lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var fields = lines[i].Split('\t');
            if (fields.Length != 2 || fields[0].Trim().Length == 0 || fields[1].Trim().Length == 0)
                throw new InvalidDataException($"{path} line {i + 1}: expected 'source<TAB>target' with both sides non-empty, found {fields.Length} field(s).");
            pairs.Add(new SentencePair(fields[0].Trim(), fields[1].Trim()));
        }
        return pairs;
    }
}
