using System.Text.Json;
using Sharpformer.Kernels;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using Sharpformer.Training;

namespace Sharpformer.Tests.Oracle;

/// <summary>
/// Our engine against PyTorch on the same weights and inputs (files written by tools/oracle/make_references.py).
/// Tolerance: |ours - torch| &lt;= 1e-4·|torch| + 1e-5·max|torch tensor| (relative 1e-4, absolute 1e-5 of the
/// tensor's scale near zero).
/// </summary>
public class OracleTests
{
    static SafetensorsFile Open(string name) => SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", name + ".safetensors"));

    static JsonElement Config(SafetensorsFile f) => JsonDocument.Parse(f.Metadata["config"]).RootElement;

    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        float scale = 0;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = 1e-4 * Math.Abs(expected[i]) + 1e-5 * scale;
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance, $"{what}[{i}] = {actual[i]}, PyTorch {expected[i]} (tolerance {tolerance:g3})");
        }
    }

    static void LoadParameters(SafetensorsFile f, IReadOnlyList<Parameter> parameters, string prefix = "")
    {
        Assert.Equal(f.Tensors.Count(t => t.Name.StartsWith("param.")), parameters.Count);
        foreach (var p in parameters) f.ReadFloats("param." + prefix + p.Name, p.Value.Span);
    }

    [Theory]
    [InlineData("gpt_small")]
    [InlineData("gpt_small_nobias")]
    public void GptMatchesPyTorchLogitsLossGradientsAndAdamWStep(string file)
    {
        using var f = Open(file);
        var c = Config(f);
        var config = new GptConfig
        {
            VocabSize = c.GetProperty("vocab_size").GetInt32(), BlockSize = c.GetProperty("block_size").GetInt32(),
            NLayer = c.GetProperty("n_layer").GetInt32(), NHead = c.GetProperty("n_head").GetInt32(), NEmbd = c.GetProperty("n_embd").GetInt32(),
            Bias = c.GetProperty("bias").GetBoolean(),
            Activation = c.GetProperty("activation").GetString() == "gelu_erf" ? Activation.GeluErf : Activation.GeluTanh,
        };
        var model = new Gpt(config);
        LoadParameters(f, model.Parameters);
        int[] idx = f.ReadInts("idx"), targets = f.ReadInts("targets");
        int B = f["idx"].Shape[0], T = f["idx"].Shape[1];

        using (Graph.NoGrad()) AssertClose(f.ReadFloats("logits"), model.Logits(idx, B, T).Span, "logits");
        using (Graph.Record())
        {
            var loss = model.Loss(idx, targets, B, T);
            AssertClose(f.ReadFloats("loss"), [loss.Item], "loss");
            loss.Backward(c.GetProperty("loss_scale").GetSingle());
        }
        foreach (var p in model.Parameters) AssertClose(f.ReadFloats("grad." + p.Name), p.Grad.Span, "grad." + p.Name);

        // One optimizer step as nanoGPT takes it: global-norm clipping to 1.0, then AdamW with decay on >= 2-D weights only.
        // Adam's first step is sign-like (m/sqrt(v) = g/|g|), so it amplifies float noise in tiny gradients; the step is
        // therefore taken from PyTorch's own gradients, which isolates clipping and AdamW (ours matched above).
        foreach (var p in model.Parameters) f.ReadFloats("grad." + p.Name, p.Grad.Span);
        float norm = GradientClipping.ClipGlobalNorm(model.Parameters, c.GetProperty("grad_clip").GetSingle());
        AssertClose(f.ReadFloats("grad_norm"), [norm], "grad_norm");
        var adam = new AdamW(model.Parameters, c.GetProperty("beta1").GetSingle(), c.GetProperty("beta2").GetSingle(), c.GetProperty("weight_decay").GetSingle(), c.GetProperty("eps").GetSingle());
        adam.Update(c.GetProperty("lr").GetSingle());
        foreach (var p in model.Parameters) AssertClose(f.ReadFloats("after." + p.Name), p.Value.Span, "after." + p.Name);
    }

    [Theory]
    [InlineData("encoder_block", NormPlacement.PreLN, Activation.GeluTanh)]
    [InlineData("encoder_block_postln_relu", NormPlacement.PostLN, Activation.Relu)]
    [InlineData("decoder_block", NormPlacement.PreLN, Activation.GeluTanh)]
    public void BlockMatchesPyTorchOutputAndGradients(string file, NormPlacement norm, Activation activation)
    {
        using var f = Open(file);
        bool decoder = f.Contains("memory");
        var block = new TransformerBlock("", new TransformerBlockOptions
        {
            Width = 64, Heads = 4, Norm = norm, Activation = activation, Causal = decoder, CrossAttention = decoder,
        });
        LoadParameters(f, block.Parameters);
        var xShape = f["x"].Shape;
        using var graph = Graph.Record();
        var x = Tensor.Leaf(f.ReadFloats("x"), xShape);
        var w = Tensor.FromArray(f.ReadFloats("w_out"), xShape);
        Tensor y;
        Tensor? memory = null;
        if (decoder)
        {
            memory = Tensor.Leaf(f.ReadFloats("memory"), f["memory"].Shape);
            y = block.Forward(x, default, memory, f.ReadInts("memory_lengths"));
        }
        else y = block.Forward(x, f.ReadInts("key_lengths"));
        AssertClose(f.ReadFloats("y"), y.Span, "y");
        var loss = Ops.Dot(y, w);
        AssertClose(f.ReadFloats("loss"), [loss.Item], "loss");
        loss.Backward();
        AssertClose(f.ReadFloats("grad.x"), x.Grad!.Span, "grad.x");
        if (memory is not null) AssertClose(f.ReadFloats("grad.memory"), memory.Grad!.Span, "grad.memory");
        foreach (var p in block.Parameters) AssertClose(f.ReadFloats("grad." + p.Name), p.Grad.Span, "grad." + p.Name);
    }
}
