using System.Text.Json;
using Sharpformer.Cli;

namespace Sharpformer.Tests.Cli;

/// <summary>metrics.jsonl stays valid JSON lines whatever the figures are: non-finite values are written as null.</summary>
public sealed class MetricsLogTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sf-metrics-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void NonFiniteFiguresAreWrittenAsNull()
    {
        var log = new MetricsLog(dir);
        log.Step(0, 4.25f, 1e-3f, 0.5f, 12.5, 3000);
        log.Step(1, float.NaN, float.PositiveInfinity, float.NegativeInfinity, double.NaN, double.PositiveInfinity);
        log.Eval(1, 3.5f, float.NaN);
        var lines = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
        Assert.Equal(3, lines.Length);
        var docs = lines.Select(l => JsonDocument.Parse(l)).ToArray(); // every line parses on its own

        var first = docs[0].RootElement;
        Assert.Equal(4.25f, first.GetProperty("loss").GetSingle());
        Assert.Equal(1e-3f, first.GetProperty("lr").GetSingle());
        Assert.Equal(12.5, first.GetProperty("ms").GetDouble());

        var bad = docs[1].RootElement;
        Assert.Equal(1, bad.GetProperty("iter").GetInt32());
        foreach (var name in new[] { "loss", "lr", "grad_norm", "ms", "tokens_per_s" })
            Assert.Equal(JsonValueKind.Null, bad.GetProperty(name).ValueKind);

        var eval = docs[2].RootElement;
        Assert.Equal(3.5f, eval.GetProperty("train_loss").GetSingle());
        Assert.Equal(JsonValueKind.Null, eval.GetProperty("val_loss").ValueKind);
        Assert.False(eval.TryGetProperty("val_accuracy", out _)); // not a classifier
    }

    [Fact]
    public void AClassifiersAccuracyIsLoggedAndPlotted()
    {
        var log = new MetricsLog(dir);
        log.Eval(0, 2.3f, 2.31f, 0.1f, 0.09f);
        log.Eval(100, 0.5f, 0.6f, 0.85f, 0.8125f);
        var last = JsonDocument.Parse(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"))[^1]).RootElement;
        Assert.Equal(0.85f, last.GetProperty("train_accuracy").GetSingle());
        Assert.Equal(0.8125f, last.GetProperty("val_accuracy").GetSingle());
        Assert.True(new FileInfo(Path.Combine(dir, "loss.png")).Length > 1000);
    }
}
