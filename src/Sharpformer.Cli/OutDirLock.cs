namespace Sharpformer.Cli;

/// <summary>
/// One training process per out-dir: an OS lock (FileShare.None, an flock on Unix) on OUT/.lock, held for the run
/// and released by the OS however the process ends. The file is deleted when the run ends (and the out-dir too
/// if this run created it and left nothing), so a command that fails early leaves no trace; after a kill it stays
/// behind, harmless: the next run locks it again.
/// </summary>
sealed class OutDirLock : IDisposable
{
    public const string FileName = ".lock";
    readonly FileStream stream;
    readonly string outDir;
    readonly bool createdOutDir;

    OutDirLock(FileStream stream, string outDir, bool createdOutDir) => (this.stream, this.outDir, this.createdOutDir) = (stream, outDir, createdOutDir);

    public static OutDirLock Acquire(string outDir)
    {
        bool created = !Directory.Exists(outDir);
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, FileName);
        var busy = new IOException($"Another sharpformer process is using --out-dir '{outDir}' (it holds {path}); wait for it to finish or choose another --out-dir.");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose); }
        catch (IOException) { throw busy; }
        if (!File.Exists(path)) // locked the file of a run that was just ending and removing it
        {
            stream.Dispose();
            throw busy;
        }
        return new OutDirLock(stream, outDir, created);
    }

    public void Dispose()
    {
        stream.Dispose();
        if (createdOutDir && Directory.Exists(outDir) && !Directory.EnumerateFileSystemEntries(outDir).Any()) Directory.Delete(outDir);
    }
}
