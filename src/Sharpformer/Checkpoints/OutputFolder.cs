namespace Sharpformer.Checkpoints;

/// <summary>
/// The folder a command writes (prepare's data, convert's checkpoint or export). A command never deletes or
/// overwrites a file it did not create: a non-empty folder is refused unless the user says --overwrite, and even
/// then only the files the command writes are replaced, each by a rename, and never the command's own source.
/// </summary>
public static class OutputFolder
{
    /// <summary>
    /// Refuses to write <paramref name="files"/> into <paramref name="folder"/> when it holds anything and
    /// <paramref name="overwrite"/> is off, and always when the folder is (or would replace) one of <paramref name="sources"/>.
    /// </summary>
    public static void EnsureWritable(string folder, IEnumerable<string> files, bool overwrite, params string[] sources)
    {
        string full = Full(folder);
        foreach (var source in sources)
        {
            string src = Full(source);
            if (PathsEqual(src, full))
                throw new ArgumentException($"'{folder}' is the source of this command; write the output to another folder.");
            if (files.Any(f => PathsEqual(src, Path.Combine(full, f))))
                throw new ArgumentException($"'{source}' is the source of this command and would be replaced by its output in '{folder}'; write the output to another folder.");
        }
        if (File.Exists(full)) throw new IOException($"'{folder}' is a file, not a folder.");
        if (overwrite || !Directory.Exists(full) || !Directory.EnumerateFileSystemEntries(full).Any()) return;
        var present = files.Where(f => File.Exists(Path.Combine(full, f))).ToList();
        throw new IOException($"'{folder}' is not empty" + (present.Count > 0 ? $" (it holds {string.Join(", ", present)})" : "") +
            $"; choose a new folder, or give --overwrite to replace only the files this command writes ({string.Join(", ", files)}).");
    }

    /// <summary>
    /// Runs <paramref name="writeFolder"/> on a fresh folder: <paramref name="folder"/> itself when it is absent or empty,
    /// otherwise a sibling staging folder whose files are then renamed into <paramref name="folder"/> one by one, so
    /// files already there that the command does not write are left as they were. Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> Write(string folder, Action<string> writeFolder)
    {
        string full = Full(folder);
        if (!Directory.Exists(full) || !Directory.EnumerateFileSystemEntries(full).Any())
        {
            writeFolder(full);
            return Directory.GetFiles(full).Select(Path.GetFileName).ToList()!;
        }
        string staging = full + ".staging-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            writeFolder(staging);
            var written = new List<string>();
            foreach (var file in Directory.GetFiles(staging))
            {
                string name = Path.GetFileName(file);
                File.Move(file, Path.Combine(full, name), overwrite: true);
                written.Add(name);
            }
            if (Directory.GetDirectories(staging).Length > 0) throw new IOException($"Writing '{folder}' produced sub-folders, which are never merged into an existing folder.");
            return written;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    static string Full(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));

    static bool PathsEqual(string a, string b) =>
        string.Equals(a, b, OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
}
