using System.Text;

namespace Sharpformer.Text;

/// <summary>Reads a corpus as text, refusing what is not text instead of silently turning it into U+FFFD.</summary>
public static class TextFile
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads a UTF-8 file (a byte-order mark, UTF-8 or UTF-16, is honoured). Bytes that are not UTF-8, or NUL
    /// characters (which no text corpus holds), give an <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static string Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Input file '{path}' does not exist.", path);
        string text;
        try { text = File.ReadAllText(path, Strict); }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"'{path}' is not UTF-8 text (it holds the byte sequence {Convert.ToHexString(e.BytesUnknown ?? [])}); convert it to UTF-8 first.");
        }
        int nul = text.IndexOf('\0');
        if (nul >= 0) throw new InvalidDataException($"'{path}' holds a NUL character (at character {nul}): it looks like a binary file, not text.");
        return text;
    }
}
