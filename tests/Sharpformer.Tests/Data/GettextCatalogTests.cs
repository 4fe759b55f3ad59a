using System.Text;
using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public sealed class GettextCatalogTests
{
    static readonly (string, string)[] Entries =
    [
        ("Open", "Öffnen"),
        ("menu\u0004Quit", "Beenden"),
        ("One file\0%d files", "Eine Datei\0%d Dateien"),
        ("Größe", "Size"),
    ];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsMessagesInEitherByteOrder(bool bigEndian)
    {
        var catalog = GettextCatalog.Parse(MoWriter.Build(Entries, bigEndian: bigEndian), "test.mo");
        Assert.Equal("UTF-8", catalog.Charset);
        // Sorted by msgid bytes; the header entry (empty msgid) is left out; context split off; plural's first forms.
        Assert.Equal(
            [
                new GettextMessage(null, "Größe", "Size", false),
                new GettextMessage(null, "One file", "Eine Datei", true),
                new GettextMessage(null, "Open", "Öffnen", false),
                new GettextMessage("menu", "Quit", "Beenden", false),
            ],
            catalog.Messages);
    }

    [Fact]
    public void CatalogueWithoutHeaderHasNoCharset()
    {
        var catalog = GettextCatalog.Parse(MoWriter.Build([("a", "b")], header: null), "x.mo");
        Assert.Null(catalog.Charset);
        Assert.Single(catalog.Messages);
    }

    [Fact]
    public void RefusesOtherCharsetsByName()
    {
        var bytes = MoWriter.Build([("a", "b")], header: "Content-Type: text/plain; charset=ISO-8859-1\n");
        var e = Assert.Throws<NotSupportedException>(() => GettextCatalog.Parse(bytes, "latin1.mo"));
        Assert.Contains("latin1.mo", e.Message);
        Assert.Contains("ISO-8859-1", e.Message);
    }

    [Fact]
    public void InvalidUtf8IsReportedAsCorrupt()
    {
        var bytes = MoWriter.BuildRaw([([], Encoding.UTF8.GetBytes(MoWriter.Utf8Header)), ("x"u8.ToArray(), [0xC3, 0x28])]);
        var e = Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(bytes, "bad.mo"));
        Assert.Contains("bad.mo", e.Message);
    }

    [Fact]
    public void EveryTruncationGivesOneClearError()
    {
        var bytes = MoWriter.Build(Entries);
        for (int length = 0; length < bytes.Length - 1; length++) // the last byte is a string's NUL, not needed
        {
            var e = Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(bytes.AsSpan(0, length), "cut.mo"));
            Assert.StartsWith("cut.mo is not a valid gettext .mo catalogue", e.Message);
        }
    }

    [Fact]
    public void HugeCountsAndOffsetsAreCheckedBeforeAllocating()
    {
        var bytes = MoWriter.Build(Entries);
        foreach (int field in new[] { 8, 12, 16 })
        {
            var corrupt = (byte[])bytes.Clone();
            corrupt.AsSpan(field, 4).Fill(0xFF);
            var e = Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(corrupt, "big.mo"));
            Assert.Contains("runs past the end", e.Message);
        }
        var badString = (byte[])bytes.Clone();
        badString.AsSpan(28 + 4, 4).Fill(0xFF); // the first original string's offset
        Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(badString, "big.mo"));
    }

    [Fact]
    public void WrongMagicAndRevisionAreRefused()
    {
        var bytes = MoWriter.Build(Entries);
        var e = Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(Encoding.ASCII.GetBytes(new string('x', 64)), "text.mo"));
        Assert.Contains("magic", e.Message);
        bytes[6] = 2; // major revision 2
        Assert.Contains("revision", Assert.Throws<InvalidDataException>(() => GettextCatalog.Parse(bytes, "r.mo")).Message);
    }

    [Fact]
    public void ReadsTheSystemsCataloguesWhenPresent()
    {
        // Not an assertion on the machine's contents: every catalogue found must parse or be refused by charset.
        var dir = "/usr/share/locale/de/LC_MESSAGES";
        if (!Directory.Exists(dir)) return;
        foreach (var file in Directory.EnumerateFiles(dir, "*.mo").Order(StringComparer.Ordinal).Take(20))
        {
            try { Assert.NotNull(GettextCatalog.Read(file).Messages); }
            catch (NotSupportedException) { }
        }
    }
}
