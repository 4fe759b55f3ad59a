using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.Tests.Data;

/// <summary>Writes small gettext .mo files for tests, in the layout msgfmt uses (no hash table).</summary>
static class MoWriter
{
    public const string Utf8Header = "Project-Id-Version: test\nContent-Type: text/plain; charset=UTF-8\n";

    /// <summary>Entries are (msgid, msgstr) as stored: context as "ctx\u0004id", plurals as "one\0many".</summary>
    public static byte[] Build(IEnumerable<(string Id, string Str)> entries, string? header = Utf8Header, bool bigEndian = false)
    {
        var all = entries.Select(e => (Id: Encoding.UTF8.GetBytes(e.Id), Str: Encoding.UTF8.GetBytes(e.Str))).ToList();
        if (header is not null) all.Add(([], Encoding.UTF8.GetBytes(header)));
        all.Sort((a, b) => a.Id.AsSpan().SequenceCompareTo(b.Id)); // msgfmt sorts by msgid bytes
        return BuildRaw(all, bigEndian);
    }

    public static byte[] BuildRaw(List<(byte[] Id, byte[] Str)> all, bool bigEndian = false)
    {
        int n = all.Count, originals = 28, translations = originals + 8 * n, strings = translations + 8 * n;
        var output = new MemoryStream();
        var table = new byte[strings];
        void Put(int at, int value)
        {
            if (bigEndian) BinaryPrimitives.WriteInt32BigEndian(table.AsSpan(at), value);
            else BinaryPrimitives.WriteInt32LittleEndian(table.AsSpan(at), value);
        }
        Put(0, unchecked((int)0x950412de));
        Put(4, 0);
        Put(8, n);
        Put(12, originals);
        Put(16, translations);
        Put(20, 0);
        Put(24, strings);
        output.Write(table);
        for (int i = 0; i < n; i++) { Put(originals + 8 * i, all[i].Id.Length); Put(originals + 8 * i + 4, (int)output.Length); output.Write(all[i].Id); output.WriteByte(0); }
        for (int i = 0; i < n; i++) { Put(translations + 8 * i, all[i].Str.Length); Put(translations + 8 * i + 4, (int)output.Length); output.Write(all[i].Str); output.WriteByte(0); }
        var bytes = output.ToArray();
        table.AsSpan(0, strings).CopyTo(bytes);
        return bytes;
    }
}
