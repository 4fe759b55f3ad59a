using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;

namespace Sharpformer.Tests.Oracle;

/// <summary>
/// A small ViT against PyTorch (tools/oracle/make_vit_references.py): logits, loss and every parameter's gradient,
/// within 1e-4 relative (the tolerance of <see cref="OracleTests"/>).
/// </summary>
[Collection("Simd")]
public class VitOracleTests
{
    [Theory]
    [InlineData("vit_small")]
    [InlineData("vit_small_mean")]
    public void VitMatchesPyTorchLogitsLossAndGradients(string name)
    {
        using var f = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", name + ".safetensors"));
        var c = JsonDocument.Parse(f.Metadata["config"]).RootElement;
        int channels = c.GetProperty("num_channels").GetInt32();
        var config = new VitConfig
        {
            ImageSize = c.GetProperty("image_size").GetInt32(), PatchSize = c.GetProperty("patch_size").GetInt32(), NumChannels = channels,
            HiddenSize = c.GetProperty("hidden_size").GetInt32(), NumHiddenLayers = c.GetProperty("num_hidden_layers").GetInt32(),
            NumAttentionHeads = c.GetProperty("num_attention_heads").GetInt32(), IntermediateSize = c.GetProperty("intermediate_size").GetInt32(),
            NumLabels = c.GetProperty("num_labels").GetInt32(), LayerNormEps = c.GetProperty("layer_norm_eps").GetSingle(),
            Pooling = c.GetProperty("pooling").GetString() == "mean" ? VitPooling.Mean : VitPooling.Cls,
            ImageMean = new float[channels], ImageStd = Enumerable.Repeat(1f, channels).ToArray(),
        };
        var model = new Vit(config);
        Assert.Equal(f.Tensors.Count(t => t.Name.StartsWith("param.", StringComparison.Ordinal)), model.Parameters.Count);
        foreach (var p in model.Parameters) f.ReadFloats("param." + p.Name, p.Value.Span);
        float[] images = f.ReadFloats("images");
        int[] labels = f.ReadInts("labels");
        int batch = labels.Length;

        using (var logits = model.Logits(images, batch)) OracleTests.AssertClose(f.ReadFloats("logits"), logits.Span, "logits");
        var imageBatch = new ImageBatch(batch, channels, config.ImageSize, config.ImageSize);
        images.CopyTo(imageBatch.Pixels, 0);
        labels.CopyTo(imageBatch.Labels, 0);
        using (Graph.Record())
        {
            var loss = model.Loss(imageBatch);
            OracleTests.AssertClose(f.ReadFloats("loss"), [loss.Item], "loss");
            loss.Backward();
        }
        foreach (var p in model.Parameters) OracleTests.AssertClose(f.ReadFloats("grad." + p.Name), p.Grad.Span, "grad." + p.Name);
    }
}
