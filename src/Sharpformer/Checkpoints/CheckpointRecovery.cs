namespace Sharpformer.Checkpoints;

/// <summary>
/// Tidies what interrupted saves leave beside a checkpoint folder F (see <see cref="AtomicFolder"/>): F.tmp-ID
/// (being written) and F.old-ID (the previous F, set aside). A temporary folder whose twin F.old-ID exists was
/// written in full (the old one is set aside only after the new one is flushed); any other is partial. When F is
/// missing, the complete candidate recording the highest iteration becomes F. Only names of those two forms are
/// ever removed.
/// </summary>
public static class CheckpointRecovery
{
    /// <summary>Recovers or removes the leftovers of interrupted saves of <paramref name="folder"/>; returns one line per action.</summary>
    public static IReadOnlyList<string> Recover(string folder)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        string parent = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        var log = new List<string>();
        if (!Directory.Exists(parent)) return log;
        var aside = Directory.GetDirectories(parent, name + ".old-*");
        var temporary = Directory.GetDirectories(parent, name + ".tmp-*");
        if (aside.Length == 0 && temporary.Length == 0) return log;

        string Suffix(string path) => Path.GetFileName(path)[(name.Length + 5)..];
        var asideIds = aside.Select(Suffix).ToHashSet();
        // Rank breaks ties between equal iterations: a finished new write beats the old folder it replaced.
        var candidates = aside.Select(d => (Path: d, Rank: 0))
            .Concat(temporary.Where(t => asideIds.Contains(Suffix(t))).Select(d => (Path: d, Rank: 1)))
            .Where(c => IsComplete(c.Path))
            .Select(c => (c.Path, c.Rank, Iteration: Checkpoint.SafeIteration(c.Path)))
            .OrderByDescending(c => c.Iteration).ThenByDescending(c => c.Rank).ThenBy(c => c.Path, StringComparer.Ordinal)
            .ToList();

        var keep = new HashSet<string>();
        if (!Directory.Exists(full) && candidates.Count > 0)
        {
            var best = candidates[0];
            Directory.Move(best.Path, full);
            log.Add($"recovered {full} from {Path.GetFileName(best.Path)} (iteration {best.Iteration}), left by an interrupted save");
        }
        else if (Directory.Exists(full))
        {
            // F is the committed checkpoint. A leftover recording a later iteration came from another run's
            // interrupted save: it is kept for the user to judge, never deleted unasked.
            int current = Checkpoint.SafeIteration(full);
            foreach (var later in candidates.Where(c => c.Iteration > current))
            {
                keep.Add(later.Path);
                log.Add($"kept {Path.GetFileName(later.Path)}: it records a later iteration than {name}; delete it or move it into place by hand");
            }
        }
        foreach (var d in aside.Concat(temporary))
        {
            if (keep.Contains(d) || !Directory.Exists(d)) continue;
            Directory.Delete(d, recursive: true);
            log.Add($"removed {Path.GetFileName(d)}, left by an interrupted save");
        }
        return log;
    }

    static bool IsComplete(string folder) =>
        File.Exists(Path.Combine(folder, Checkpoint.ConfigFile)) && File.Exists(Path.Combine(folder, Checkpoint.ModelFile));
}
