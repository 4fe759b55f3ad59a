namespace Sharpformer.Cli;

/// <summary>
/// One training process per out-dir: an OS lock (FileShare.None, an flock on Unix) on OUT/.lock, held for the
/// run and released by the OS however the process ends. The file itself stays; only the lock matters.
/// </summary>
sealed class OutDirLock : IDisposable
{
    public const string FileName = ".lock";
    readonly FileStream stream;

    OutDirLock(FileStream stream) => this.stream = stream;

    public static OutDirLock Acquire(string outDir)
    {
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, FileName);
        try
        {
            return new OutDirLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            throw new IOException($"Another sharpformer process is using --out-dir '{outDir}' (it holds {path}); wait for it to finish or choose another --out-dir.");
        }
    }

    public void Dispose() => stream.Dispose();
}
