using System.Diagnostics;
using Sharpformer.Checkpoints;
using Sharpformer.Data;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// The trainer as a real process, stopped from outside: one process per out-dir (an OS lock); Ctrl+C (SIGINT)
/// saves a resumable checkpoint and exits 130, a second one aborts at once; and SIGKILL at random moments never
/// leaves a checkpoint that fails to load, and resuming after every kill ends byte-identical to a run never killed.
/// </summary>
public sealed class InterruptionTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("sf-interrupt-").FullName;

    public InterruptionTests()
    {
        string corpus = string.Concat(Enumerable.Repeat("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n", 40));
        Dataset.Prepare(corpus, null, Path.Combine(root, "data"));
    }

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>A very small deterministic run (one thread) that saves at every evaluation; <paramref name="overrides"/> (option, value pairs) replace or extend it.</summary>
    static string[] Run(string outDir, int maxIters, int evalInterval, params string[] overrides)
    {
        List<string> args =
        [
            "train", "--data", "data", "--out-dir", outDir, "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8",
            "--batch-size", "2", "--max-iters", maxIters.ToString(), "--eval-interval", evalInterval.ToString(), "--eval-iters", "2",
            "--log-interval", "1000000", "--threads", "1", "--warmup-iters", "10", "--lr-decay-iters", "400", "--learning-rate", "1e-3",
            "--always-save-checkpoint", "true", "--dropout", "0.1", "--sample-tokens", "0",
        ];
        for (int i = 0; i < overrides.Length; i += 2)
        {
            int at = args.IndexOf(overrides[i]);
            if (at >= 0) args[at + 1] = overrides[i + 1];
            else args.AddRange([overrides[i], overrides[i + 1]]);
        }
        return [.. args];
    }

    /// <summary>The checkpoint a resume would load, or null when there is none yet.</summary>
    static string? Resumable(string outDir)
    {
        try { return Checkpoint.Resolve(outDir); }
        catch (DirectoryNotFoundException) { return null; }
    }

    /// <summary>A started CLI process whose output lines are collected as they arrive.</summary>
    sealed class Running : IDisposable
    {
        public readonly Process Process;
        readonly List<string> lines = new();

        public Running(string workingDirectory, string[] args)
        {
            var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sharpformer.Cli.dll"));
            foreach (var a in args) info.ArgumentList.Add(a);
            info.Environment["DOTNET_TieredPGO"] = "0";
            Process = new Process { StartInfo = info };
            Process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
            Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add("stderr: " + e.Data); };
            Process.Start();
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public string Output { get { lock (lines) return string.Join("\n", lines); } }

        /// <summary>Waits until <paramref name="count"/> lines starting with <paramref name="prefix"/> have been printed.</summary>
        public bool WaitFor(string prefix, TimeSpan timeout, int count = 1)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                lock (lines) if (lines.Count(l => l.StartsWith(prefix)) >= count) return true;
                if (Process.HasExited) return false;
                Thread.Sleep(5);
            }
            return false;
        }

        public void Signal(string name) => Process.Start("kill", $"-{name} {Process.Id}")!.WaitForExit();

        public int Finish(TimeSpan timeout)
        {
            if (!Process.WaitForExit(timeout)) { Process.Kill(); throw new TimeoutException("sharpformer did not stop:\n" + Output); }
            Process.WaitForExit(); // drains the output events
            return Process.ExitCode;
        }

        public void Dispose() => Process.Dispose();
    }

    static byte[][] Final(string outDir) =>
        [.. new[] { Checkpoint.ModelFile, Checkpoint.TrainerFile, Checkpoint.TrainerStateFile }.Select(f => File.ReadAllBytes(Path.Combine(outDir, Checkpoint.FolderName, f)))];

    [Fact]
    public void ASecondTrainerOnTheSameOutDirGetsOneClearLine()
    {
        Directory.CreateDirectory(Path.Combine(root, "out"));
        // This process holds the lock as a running trainer would.
        using var held = new FileStream(Path.Combine(root, "out", ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var r = CliRunner.Run(root, Run("out", 20, 10));
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, r.Stderr);
        Assert.StartsWith("error: Another sharpformer process is using --out-dir", lines[0]);
        Assert.False(File.Exists(Path.Combine(root, "out", "metrics.jsonl")));
    }

    [Fact]
    public void CtrlCSavesAResumableCheckpointAndExits130AndResumingEndsAsAnUninterruptedRun()
    {
        Assert.Equal(0, CliRunner.Run(root, Run("whole", 300, 150)).ExitCode);

        using (var run = new Running(root, Run("cut", 300, 150, "--log-interval", "1")))
        {
            Assert.True(run.WaitFor("iter 5:", TimeSpan.FromMinutes(1)), run.Output);
            run.Signal("INT");
            Assert.Equal(130, run.Finish(TimeSpan.FromMinutes(1)));
            Assert.Contains("stopping after this iteration", run.Output);
            Assert.Contains("interrupted: saved a resumable checkpoint at iteration", run.Output);
        }
        int iteration = Checkpoint.ReadProgress(Checkpoint.Resolve(Path.Combine(root, "cut")))!.Iteration;
        Assert.InRange(iteration, 6, 299); // not an eval interval: only the interruption saved it

        var resumed = CliRunner.Run(root, Run("cut", 300, 150, "--init-from", "resume"));
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal(Final(Path.Combine(root, "whole")), Final(Path.Combine(root, "cut")));
    }

    [Fact]
    public void ASecondCtrlCAbortsAtOnceEvenDuringEvaluation()
    {
        // Evaluation at iteration 0 over a million batches: only an abort ends it soon.
        using var run = new Running(root, Run("out", 10, 5, "--eval-iters", "1048576"));
        Assert.True(run.WaitFor("model:", TimeSpan.FromMinutes(1)), run.Output);
        Thread.Sleep(300);
        run.Signal("INT");
        Assert.True(run.WaitFor("stderr: stopping after this iteration", TimeSpan.FromSeconds(10)), run.Output);
        var clock = Stopwatch.StartNew();
        run.Signal("INT");
        int exit = run.Finish(TimeSpan.FromSeconds(20));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.NotEqual(0, exit);
        Assert.DoesNotContain("step 0:", run.Output);
        Assert.False(Directory.Exists(Path.Combine(root, "out", Checkpoint.FolderName)));
    }

    /// <summary>
    /// 20 SIGKILLs at random moments of one chain of runs (each resuming the last), many inside checkpoint writes
    /// (a save every 5 iterations): after each, the checkpoint loads; the chain's end is the uninterrupted run's, byte for byte.
    /// </summary>
    [Fact]
    public void KillingTheTrainerAtRandomMomentsNeverCostsACheckpointOrChangesTheResult()
    {
        const int MaxIters = 200, EvalInterval = 5, Kills = 20;
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, CliRunner.Run(root, Run("whole", MaxIters, EvalInterval)).ExitCode);

        var random = new Random(18);
        string outDir = Path.Combine(root, "killed");
        int kills = 0, finished = 0;
        var iterations = new List<int>();
        while (kills < Kills)
        {
            bool resume = Resumable(outDir) is not null;
            using var run = new Running(root, Run("killed", MaxIters, EvalInterval, "--init-from", resume ? "resume" : "scratch"));
            // Mostly while training, after this run's second or third save (a save every 5 iterations, so many kills
            // land inside one; a resumed run saves once at once); sometimes during start-up and recovery.
            if (random.Next(5) == 0) Thread.Sleep(random.Next(400));
            else
            {
                run.WaitFor("saved checkpoint", TimeSpan.FromMinutes(1), count: random.Next(2, 4));
                Thread.Sleep(random.Next(40));
            }
            bool killed = !run.Process.HasExited;
            if (killed) run.Process.Kill(); // SIGKILL
            int exit = run.Finish(TimeSpan.FromMinutes(1));
            if (killed) kills++;
            else
            {
                Assert.True(exit == 0, run.Output);
                finished++;
            }
            if (Resumable(outDir) is { } folder)
            {
                Checkpoint.Load(folder);
                iterations.Add(Checkpoint.ReadProgress(folder)!.Iteration);
            }
            else Assert.False(resume, "a checkpoint was lost:\n" + run.Output);
        }
        Assert.True(iterations.Count >= Kills / 2 && iterations[^1] > 0, $"the chain made no progress: {string.Join(", ", iterations)}");
        var last = CliRunner.Run(root, Run("killed", MaxIters, EvalInterval, "--init-from", "resume"));
        Assert.True(last.ExitCode == 0, last.Stderr);
        Assert.Equal(Final(Path.Combine(root, "whole")), Final(outDir));
        Assert.True(finished < Kills, $"{finished} runs finished before their kill");
        Console.WriteLine($"{kills} kills, checkpoints at iterations {string.Join(", ", iterations)}; {clock.Elapsed.TotalSeconds:F1} s");
    }
}
