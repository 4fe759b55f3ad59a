namespace Sharpformer.Checkpoints;

/// <summary>
/// Writes a folder so that a crash at any moment leaves either the old folder or the new one: the content
/// goes into a sibling temporary folder (each file flushed by its writer), the old folder is renamed aside,
/// the new one renamed into place, then the old one deleted. A crash between the two renames leaves the old
/// folder under its ".old-*" name, which <see cref="Checkpoint.Resolve"/> finds.
/// </summary>
static class AtomicFolder
{
    public static void Write(string folder, Action<string> writeInto)
    {
        string full = Path.GetFullPath(folder.TrimEnd(Path.DirectorySeparatorChar));
        string id = Guid.NewGuid().ToString("N")[..8];
        string temp = full + ".tmp-" + id, aside = full + ".old-" + id;
        Directory.CreateDirectory(temp);
        try
        {
            writeInto(temp);
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
        bool hadOld = Directory.Exists(full);
        if (hadOld) Directory.Move(full, aside);
        Directory.Move(temp, full);
        if (hadOld) Directory.Delete(aside, recursive: true);
    }
}
