using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.Data;

/// <summary>One translated message of a gettext catalogue.</summary>
/// <param name="Context">The msgctxt, or null; gettext stores it before the msgid, separated by U+0004.</param>
/// <param name="Id">The msgid (for a plural entry, its singular form).</param>
/// <param name="Translation">The msgstr (for a plural entry, its first form, which is not always the singular).</param>
/// <param name="IsPlural">Whether the entry has plural forms (msgid_plural).</param>
public sealed record GettextMessage(string? Context, string Id, string Translation, bool IsPlural);

/// <summary>
/// A compiled gettext catalogue (<c>.mo</c>), parsed from the binary layout GNU gettext documents: magic 0x950412de
/// in the writer's byte order, revision, N, the offsets of the original and translated string tables (N entries
/// of length + offset, each string NUL-terminated), then a hash table we do not need.
/// </summary>
public sealed class GettextCatalog
{
    const uint Magic = 0x950412de;
    const int HeaderBytes = 28; // magic, revision, N, O, T, hash size, hash offset
    const char ContextSeparator = '\u0004';

    /// <summary>The charset the header entry declares (e.g. "UTF-8"), or null when it declares none.</summary>
    public string? Charset { get; }

    /// <summary>The messages in catalogue order (sorted by msgid bytes), without the header entry (empty msgid).</summary>
    public IReadOnlyList<GettextMessage> Messages { get; }

    GettextCatalog(string? charset, IReadOnlyList<GettextMessage> messages) => (Charset, Messages) = (charset, messages);

    /// <summary>
    /// Reads a catalogue. A truncated or corrupt file gives one <see cref="InvalidDataException"/> naming it; a
    /// catalogue in a charset other than UTF-8 (or its subset ASCII) gives a <see cref="NotSupportedException"/>.
    /// </summary>
    public static GettextCatalog Read(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Parses a catalogue's bytes; <paramref name="name"/> names it in error messages.</summary>
    public static GettextCatalog Parse(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length < HeaderBytes) throw Corrupt(name, $"{data.Length} bytes is shorter than the {HeaderBytes}-byte header");
        bool bigEndian;
        if (BinaryPrimitives.ReadUInt32LittleEndian(data) == Magic) bigEndian = false;
        else if (BinaryPrimitives.ReadUInt32BigEndian(data) == Magic) bigEndian = true;
        else throw Corrupt(name, $"magic 0x{BinaryPrimitives.ReadUInt32LittleEndian(data):x8} is not a .mo file's 0x950412de");

        uint U32(ReadOnlySpan<byte> d, long at) => bigEndian
            ? BinaryPrimitives.ReadUInt32BigEndian(d.Slice((int)at, 4))
            : BinaryPrimitives.ReadUInt32LittleEndian(d.Slice((int)at, 4));

        uint revision = U32(data, 4);
        if (revision >> 16 > 1) throw Corrupt(name, $"major revision {revision >> 16} is unknown (0 and 1 are defined)");
        long count = U32(data, 8), originals = U32(data, 12), translations = U32(data, 16);
        // Both tables must lie inside the file before anything is allocated from N.
        foreach (var (table, what) in new[] { (originals, "original"), (translations, "translation") })
            if (table + 8 * count > data.Length)
                throw Corrupt(name, $"the {what} table ({count} entries at offset {table}) runs past the end of the {data.Length}-byte file");

        string? charset = null;
        var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        var messages = new List<GettextMessage>((int)Math.Min(count, int.MaxValue));
        for (long i = 0; i < count; i++)
        {
            var idBytes = Entry(data, originals + 8 * i, "original", i);
            var strBytes = Entry(data, translations + 8 * i, "translation", i);
            if (idBytes.Length == 0)
            {
                // The header entry: "Content-Type: text/plain; charset=UTF-8" among its lines.
                charset = CharsetOf(Encoding.UTF8.GetString(strBytes));
                if (charset is not null && !IsUtf8Compatible(charset))
                    throw new NotSupportedException($"{name}: the catalogue's charset is {charset}; only UTF-8 catalogues are read.");
                continue;
            }
            string id, str;
            try { (id, str) = (utf8.GetString(idBytes), utf8.GetString(strBytes)); }
            catch (DecoderFallbackException) { throw Corrupt(name, $"message {i} is not valid UTF-8"); }

            string? context = null;
            int separator = id.IndexOf(ContextSeparator);
            if (separator >= 0) (context, id) = (id[..separator], id[(separator + 1)..]);
            // Plural entries hold "singular\0plural" and "form0\0form1\0...".
            int nul = id.IndexOf('\0');
            bool plural = nul >= 0;
            if (plural) id = id[..nul];
            nul = str.IndexOf('\0');
            if (nul >= 0) str = str[..nul];
            messages.Add(new GettextMessage(context, id, str, plural));
        }
        return new GettextCatalog(charset, messages);

        ReadOnlySpan<byte> Entry(ReadOnlySpan<byte> d, long at, string table, long index)
        {
            long length = U32(d, at), offset = U32(d, at + 4);
            if (offset + length > d.Length)
                throw Corrupt(name, $"{table} string {index} ({length} bytes at offset {offset}) runs past the end of the {d.Length}-byte file");
            return d.Slice((int)offset, (int)length);
        }
    }

    static InvalidDataException Corrupt(string name, string why) => new($"{name} is not a valid gettext .mo catalogue: {why}.");

    static string? CharsetOf(string header)
    {
        foreach (var line in header.Split('\n'))
        {
            if (!line.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase)) continue;
            int at = line.IndexOf("charset=", StringComparison.OrdinalIgnoreCase);
            return at < 0 ? null : line[(at + "charset=".Length)..].Trim().TrimEnd(';');
        }
        return null;
    }

    static bool IsUtf8Compatible(string charset) => charset.ToUpperInvariant() is "UTF-8" or "UTF8" or "ASCII" or "US-ASCII"
        // "CHARSET" is xgettext's unfilled template placeholder; such catalogues are untranslated English, hence ASCII.
        or "CHARSET";
}
