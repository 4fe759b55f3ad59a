using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>What loading a checkpoint refuses: flipped bytes (the saved checksum), weights that are not finite, a config that does not match the file.</summary>
public class CheckpointSafetyTests
{
    static readonly GptConfig Shape = new() { VocabSize = 11, BlockSize = 8, NLayer = 1, NHead = 2, NEmbd = 8 };
    static readonly TokenizerSpec Vocabulary = new() { Kind = "char", VocabSize = 11, Chars = "abcdefghijk" };

    static void InTemp(Action<string> test)
    {
        string root = Directory.CreateTempSubdirectory("sf-safety-").FullName;
        try { test(Path.Combine(root, "checkpoint")); }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void AFlippedByteInTheWeightsIsDetected() => InTemp(folder =>
    {
        Checkpoint.Save(folder, Shape.Create(), Vocabulary);
        Checkpoint.Load(folder);
        string file = Path.Combine(folder, Checkpoint.ModelFile);
        var bytes = File.ReadAllBytes(file);
        bytes[^17] ^= 0x10; // inside the last tensor's data
        File.WriteAllBytes(file, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(folder));
        Assert.Contains("checksum", e.Message, StringComparison.OrdinalIgnoreCase);
    });

    [Fact]
    public void NonFiniteWeightsAreRefused() => InTemp(folder =>
    {
        var model = Shape.Create();
        model.Parameters[3].Value.Span[2] = float.NaN;
        Checkpoint.Save(folder, model, Vocabulary);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(folder));
        Assert.Contains("NaN or infinite", e.Message);
        Assert.Contains(model.Parameters[3].Name, e.Message);
    });

    [Fact]
    public void AConfigClaimingMoreLayersThanTheFileHoldsFailsBeforeBuildingTheModel() => InTemp(folder =>
    {
        Checkpoint.Save(folder, Shape.Create(), Vocabulary);
        string config = Path.Combine(folder, Checkpoint.ConfigFile);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"n_layer\": 1", "\"n_layer\": 1000"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(folder));
        Assert.Contains("needs", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "the check allocated the model first");
    });
}
