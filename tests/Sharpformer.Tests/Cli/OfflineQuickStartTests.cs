using Sharpformer.Data;

namespace Sharpformer.Tests.Cli;

/// <summary>The quick start works on a machine with no network: Tiny Shakespeare ships inside the tool; downloading is asked for.</summary>
public sealed class OfflineQuickStartTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("sf-offline-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>Every HTTP(S) request goes to a proxy on a closed port, so any download fails at once.</summary>
    static readonly Dictionary<string, string> NoNetwork = new()
    {
        ["http_proxy"] = "http://127.0.0.1:9", ["https_proxy"] = "http://127.0.0.1:9",
        ["HTTP_PROXY"] = "http://127.0.0.1:9", ["HTTPS_PROXY"] = "http://127.0.0.1:9", ["no_proxy"] = "", ["NO_PROXY"] = "",
    };

    [Fact]
    public void PrepareShakespeareCharNeedsNoInputAndNoNetwork()
    {
        var r = CliRunner.Run(root, NoNetwork, "prepare", "shakespeare-char");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.DoesNotContain("download", r.Stderr);
        Assert.Contains("1,115,394 characters, vocabulary 65", r.Stdout);
        using var data = Dataset.Open(Path.Combine(root, "data", "shakespeare_char"));
        Assert.Equal((1_003_854L, 111_540L), (data.Train.Count, data.Val.Count));
    }

    [Fact]
    public void DownloadIsAnExplicitOptionAndFailsClearlyOffline()
    {
        var r = CliRunner.Run(root, NoNetwork, "prepare", "shakespeare-char", "--download", "--out", "dl");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: Could not download Tiny Shakespeare", r.Stderr.Split('\n').Last(l => l.Length > 0));
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(root, "dl")));

        var both = CliRunner.Run(root, "prepare", "shakespeare-char", "--download", "--input", "x.txt");
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("--download", both.Stderr);
    }
}
