using System.Diagnostics;
using System.Security.Cryptography;

namespace Sharpformer.Tests.Cli;

/// <summary>Runs the real `sharpformer` program (Sharpformer.Cli.dll beside the tests) as a process.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(string workingDirectory, params string[] args) => Run(workingDirectory, new Dictionary<string, string>(), args);

    /// <summary>Runs with extra environment variables (e.g. a proxy that refuses every connection, to prove a command needs no network).</summary>
    public static Result Run(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) => Run(workingDirectory, environment, null, args);

    /// <summary>Runs with <paramref name="input"/> as standard input (closed after it).</summary>
    public static Result RunWithInput(string workingDirectory, string input, params string[] args) => Run(workingDirectory, new Dictionary<string, string>(), input, args);

    static Result Run(string workingDirectory, IReadOnlyDictionary<string, string> environment, string? input, string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Sharpformer.Cli.dll");
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null };
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_TieredPGO"] = "0";
        foreach (var (k, v) in environment) info.Environment[k] = v;
        using var p = Process.Start(info)!;
        if (input is not null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(entireProcessTree: true); throw new TimeoutException($"sharpformer {string.Join(' ', args)} did not finish."); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A failure as every command must fail: non-zero exit, one `error:` line on stderr naming <paramref name="expected"/>, no stack trace.</summary>
    public static void AssertOneLineError(Result r, string expected)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got:\n{r.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
    }

    /// <summary>A fingerprint of every file under a folder (names, sizes, contents), to prove a failed command changed nothing.</summary>
    public static string Fingerprint(string folder)
    {
        using var sha = SHA256.Create();
        foreach (var f in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = System.Text.Encoding.UTF8.GetBytes(Path.GetRelativePath(folder, f));
            sha.TransformBlock(name, 0, name.Length, null, 0);
            var bytes = File.ReadAllBytes(f);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!);
    }
}
