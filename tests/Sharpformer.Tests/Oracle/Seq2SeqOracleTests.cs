using System.Text.Json;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using static Sharpformer.Tests.Oracle.OracleTests;

namespace Sharpformer.Tests.Oracle;

/// <summary>
/// The encoder-decoder against PyTorch (tools/oracle/make_seq2seq_references.py): logits, label-smoothed loss
/// and every parameter's gradient, padding on both sides, post-LN (tied, ReLU) and pre-LN (untied, GELU).
/// Tolerance as <see cref="OracleTests"/>: relative 1e-4 plus 1e-5 of the tensor's largest value.
/// </summary>
public class Seq2SeqOracleTests
{
    [Theory]
    [InlineData("seq2seq_postln")]
    [InlineData("seq2seq_preln")]
    public void MatchesPyTorchLogitsLossAndGradients(string file)
    {
        using var f = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", file + ".safetensors"));
        var config = Assert.IsType<Seq2SeqConfig>(JsonSerializer.Deserialize(f.Metadata["config"], ModelJsonContext.Default.ModelConfig));
        var model = new Seq2Seq(config);
        Assert.Equal(f.Tensors.Count(t => t.Name.StartsWith("param.", StringComparison.Ordinal)), model.Parameters.Count);
        foreach (var p in model.Parameters) f.ReadFloats("param." + p.Name, p.Value.Span);

        int[] src = f.ReadInts("src"), srcLengths = f.ReadInts("src_lengths"), tgtIn = f.ReadInts("tgt_in"), tgtOut = f.ReadInts("tgt_out");
        int B = f["src"].Shape[0], S = f["src"].Shape[1], T = f["tgt_in"].Shape[1];
        using (Graph.NoGrad()) AssertClose(f.ReadFloats("logits"), model.Logits(src, srcLengths, tgtIn, B, S, T).Span, "logits");

        // The same pairs through the batch a training run builds: it must lay them out exactly as the script did.
        var batch = new TranslationBatch(B, S, T);
        var pairs = new (int[], int[])[B];
        for (int b = 0; b < B; b++)
        {
            int n = tgtOut.Skip(b * T).Take(T).Count(t => t >= 0) - 1;
            pairs[b] = (src.Skip(b * S).Take(srcLengths[b]).ToArray(), tgtIn.Skip(b * T + 1).Take(n).ToArray());
        }
        batch.Fill(pairs);
        Assert.Equal(src, batch.SourceIds.ToArray());
        Assert.Equal(tgtIn, batch.TargetInputs.ToArray());
        Assert.Equal(tgtOut, batch.TargetOutputs.ToArray());
        using (Graph.Record())
        {
            var loss = model.Loss(batch);
            AssertClose(f.ReadFloats("loss"), [loss.Item], "loss");
            loss.Backward();
        }
        foreach (var p in model.Parameters) AssertClose(f.ReadFloats("grad." + p.Name), p.Grad.Span, "grad." + p.Name);
    }
}
