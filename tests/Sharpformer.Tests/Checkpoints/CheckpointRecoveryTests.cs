using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>What interrupted saves leave (checkpoint.tmp-*, checkpoint.old-*, loss.png.tmp.png) is recovered or removed at the next start; nothing else is touched.</summary>
public sealed class CheckpointRecoveryTests : TinyCheckpoint
{
    /// <summary>A checkpoint folder recording <paramref name="iteration"/> (weights from <paramref name="seed"/>).</summary>
    void Saved(string name, int iteration, int seed = 1)
    {
        Checkpoint.Save(In(name), Shape.Create(seed), Vocabulary);
        var progress = new TrainerProgress(iteration, 1f, [1, 2, 3, 4], 5, iteration);
        File.WriteAllText(Path.Combine(In(name), Checkpoint.TrainerStateFile), JsonSerializer.Serialize(progress, CheckpointJsonContext.Default.TrainerProgress));
    }

    static int Iteration(string folder) => Checkpoint.ReadProgress(folder)!.Iteration;

    [Fact]
    public void LeftoversBesideTheCheckpointAreRemovedAndNothingElse()
    {
        Saved("checkpoint", 40);
        Saved("checkpoint.old-aaaa", 30);
        Directory.CreateDirectory(In("checkpoint.tmp-bbbb"));
        File.WriteAllText(In("checkpoint.tmp-bbbb/model.safetensors"), "half a file");
        Directory.CreateDirectory(In("checkpoint.bak"));
        File.WriteAllText(In("checkpoint.tmp-notes"), "a file, not a folder an interrupted save leaves");
        Directory.CreateDirectory(In("other.tmp-cccc"));

        var log = CheckpointRecovery.Recover(In("checkpoint"));
        Assert.Equal(2, log.Count);
        Assert.Equal(40, Iteration(In("checkpoint")));
        Assert.False(Directory.Exists(In("checkpoint.old-aaaa")));
        Assert.False(Directory.Exists(In("checkpoint.tmp-bbbb")));
        Assert.True(Directory.Exists(In("checkpoint.bak")));
        Assert.True(File.Exists(In("checkpoint.tmp-notes")));
        Assert.True(Directory.Exists(In("other.tmp-cccc")));
        Assert.Empty(CheckpointRecovery.Recover(In("checkpoint")));
    }

    [Fact]
    public void AFinishedWriteWhoseRenameWasInterruptedBecomesTheCheckpoint()
    {
        // Killed between the two renames: the old checkpoint is aside, the new one complete under its temporary name.
        Saved("checkpoint.old-1234abcd", 10, seed: 1);
        Saved("checkpoint.tmp-1234abcd", 20, seed: 2);
        Saved("checkpoint.tmp-99999999", 30, seed: 3); // no twin set aside: its write never finished
        CheckpointRecovery.Recover(In("checkpoint"));
        Assert.Equal(20, Iteration(In("checkpoint")));
        Assert.Equal(["checkpoint"], Directory.GetDirectories(root).Select(Path.GetFileName));
        Checkpoint.Load(In("checkpoint"));
    }

    [Fact]
    public void WithoutACheckpointTheLeftoverRecordingTheLatestIterationWinsWhateverTheNames()
    {
        Saved("checkpoint.old-00000000", 10);
        Saved("checkpoint.old-ffffffff", 50);
        Saved("checkpoint.old-88888888", 30);
        CheckpointRecovery.Recover(In("checkpoint"));
        Assert.Equal(50, Iteration(In("checkpoint")));
        Assert.Single(Directory.GetDirectories(root));
    }

    [Fact]
    public void ALeftoverLaterThanTheCheckpointIsKeptForTheUser()
    {
        Saved("checkpoint", 10);
        Saved("checkpoint.old-abcdabcd", 50);
        var log = CheckpointRecovery.Recover(In("checkpoint"));
        Assert.Contains(log, l => l.StartsWith("kept checkpoint.old-abcdabcd"));
        Assert.Equal(10, Iteration(In("checkpoint")));
        Assert.Equal(50, Iteration(In("checkpoint.old-abcdabcd")));
    }

    [Fact]
    public void AHalfWrittenPlotIsRemovedWhenTheMetricsLogOpens()
    {
        Directory.CreateDirectory(In("out"));
        File.WriteAllText(In("out/loss.png.tmp.png"), "half a plot");
        File.WriteAllText(In("out/loss.png.tmp.png.mine"), "not ours");
        _ = new Sharpformer.Cli.MetricsLog(In("out"));
        Assert.False(File.Exists(In("out/loss.png.tmp.png")));
        Assert.True(File.Exists(In("out/loss.png.tmp.png.mine")));
    }

    [Fact]
    public void OutputFolderWritesIntoAnEmptyFolderAndMergesOnlyItsOwnFilesIntoAFullOne()
    {
        OutputFolder.EnsureWritable(In("new"), ["a"], overwrite: false);
        OutputFolder.Write(In("new"), f => { Directory.CreateDirectory(f); File.WriteAllText(Path.Combine(f, "a"), "1"); });
        Assert.Equal("1", File.ReadAllText(In("new/a")));
        File.WriteAllText(In("new/b"), "mine");
        Assert.Throws<IOException>(() => OutputFolder.EnsureWritable(In("new"), ["a"], overwrite: false));
        OutputFolder.EnsureWritable(In("new"), ["a"], overwrite: true);
        var written = OutputFolder.Write(In("new"), f => { Directory.CreateDirectory(f); File.WriteAllText(Path.Combine(f, "a"), "2"); });
        Assert.Equal(["a"], written);
        Assert.Equal("2", File.ReadAllText(In("new/a")));
        Assert.Equal("mine", File.ReadAllText(In("new/b")));
        Assert.Equal(["new"], Directory.GetDirectories(root).Select(Path.GetFileName)); // no staging folder left
        Assert.Throws<ArgumentException>(() => OutputFolder.EnsureWritable(In("new"), ["a"], overwrite: true, In("new/a")));
        Assert.Throws<ArgumentException>(() => OutputFolder.EnsureWritable(In("new"), ["a"], overwrite: true, In("new") + "/"));
    }
}
