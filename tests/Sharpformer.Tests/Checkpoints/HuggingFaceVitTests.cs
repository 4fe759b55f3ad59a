using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tests.Oracle;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// A random ViTForImageClassification folder written by tools/oracle/make_vit_references.py (Hugging Face names and
/// shapes, forward computed under those names): imported logits within 1e-4, export bit-exact.
/// </summary>
[Collection("Simd")]
public sealed class HuggingFaceVitTests : IDisposable
{
    static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_vit_tiny");
    readonly string dir = Directory.CreateTempSubdirectory("sf-hfvit-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void ImportedViTMatchesTheReferenceLogits()
    {
        Assert.True(HuggingFaceVit.IsHuggingFaceVit(Folder));
        Assert.False(HuggingFaceVit.IsHuggingFaceVit(Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_gpt2_tiny")));
        var model = HuggingFaceVit.Import(Folder);
        var c = model.Config;
        Assert.Equal(["cat", "dog", "bird"], c.ClassNames);
        Assert.Equal([0.4f, 0.5f, 0.6f], c.ImageMean);
        using var reference = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_vit_tiny_reference.safetensors"));
        var pixels = reference.ReadInts("pixels").Select(v => (byte)v).ToArray();
        var images = new float[pixels.Length];
        ImageBatch.Normalize(pixels, images, c.ImageSize * c.ImageSize, c.ImageMean, c.ImageStd);
        model.Eval();
        using var logits = model.Logits(images, 2);
        OracleTests.AssertClose(reference.ReadFloats("logits"), logits.Span, "logits");
    }

    [Fact]
    public void ExportWritesTheSameTensorsBitForBit()
    {
        var model = HuggingFaceVit.Import(Folder);
        string output = Path.Combine(dir, "hf");
        HuggingFaceVit.Export(model, output);
        using var original = SafetensorsFile.Open(Path.Combine(Folder, "model.safetensors"));
        using var exported = SafetensorsFile.Open(Path.Combine(output, "model.safetensors"));
        Assert.Equal(original.Tensors.Select(t => t.Name).Order(), exported.Tensors.Select(t => t.Name).Order());
        foreach (var t in original.Tensors)
        {
            Assert.Equal(t.Shape, exported[t.Name].Shape);
            Assert.Equal(original.ReadFloats(t.Name), exported.ReadFloats(t.Name));
        }
        var again = HuggingFaceVit.Import(output);
        Assert.Equal(model.Config.ClassNames, again.Config.ClassNames);
        Assert.Equal(model.Config.ImageStd, again.Config.ImageStd);
        foreach (var p in model.Parameters) Assert.Equal(p.Value.ToArray(), again.FindParameter(p.Name)!.Value.ToArray());

        // The two dropouts travel separately; one never set is the hidden dropout (configs written before it existed).
        var dropouts = (Vit)(model.Config with { HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.05f }).Create();
        HuggingFaceVit.Export(dropouts, Path.Combine(dir, "dropouts"));
        var read = HuggingFaceVit.Import(Path.Combine(dir, "dropouts")).Config;
        Assert.Equal((0.1f, 0.05f), (read.HiddenDropoutProb, read.AttentionDropout));
        Assert.Equal(0.1f, (model.Config with { HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = null }).AttentionDropout);

        var mean = (Vit)(model.Config with { Pooling = VitPooling.Mean }).Create();
        Assert.Throws<ArgumentException>(() => HuggingFaceVit.Export(mean, Path.Combine(dir, "mean")));
        Assert.False(Directory.Exists(Path.Combine(dir, "mean")));
    }
}
