using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tests.Cli;
using Sharpformer.Tests.Oracle;
using Sharpformer.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// Random BertForMaskedLM and BertForSequenceClassification folders written by tools/oracle/make_hf_bert.py (Hugging
/// Face names and layout, position_ids buffer, vocab.txt; hidden states and logits from the script's own forward):
/// imported within 1e-4 relative, exported bit for bit, the name variants other BERT files use, and the command line.
/// </summary>
[Collection("Simd")]
public sealed class HuggingFaceBertTests : IDisposable
{
    static readonly string MaskedLm = Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_bert_tiny");
    static readonly string Classifier = Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_bert_tiny_classifier");
    readonly string dir = Directory.CreateTempSubdirectory("sf-hfbert-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static void AssertMatchesReference(Bert model, string folder)
    {
        using var r = SafetensorsFile.Open(folder + "_reference.safetensors");
        int[] ids = r.ReadInts("ids"), segments = r.ReadInts("segments"), lengths = r.ReadInts("lengths");
        int B = r["ids"].Shape[0], T = r["ids"].Shape[1];
        model.Eval();
        // Hidden states past a sequence's length are meaningless (padding queries); compare the real rows.
        var hidden = model.HiddenStates(ids, segments, lengths, B, T).Span.ToArray();
        var expected = r.ReadFloats("hidden");
        int C = model.Config.HiddenSize;
        for (int b = 0; b < B; b++)
            OracleTests.AssertClose(expected.AsSpan(b * T * C, lengths[b] * C), hidden.AsSpan(b * T * C, lengths[b] * C), $"hidden[{b}]");
        if (model.Config.IsClassifier)
            OracleTests.AssertClose(r.ReadFloats("logits"), model.ClassLogits(ids, segments, lengths, B, T).Span, "class logits");
        else
        {
            var logits = model.MaskedLmLogits(ids, segments, lengths, B, T).Span.ToArray();
            var want = r.ReadFloats("logits");
            int V = model.Config.VocabSize;
            for (int b = 0; b < B; b++)
                OracleTests.AssertClose(want.AsSpan(b * T * V, lengths[b] * V), logits.AsSpan(b * T * V, lengths[b] * V), $"MLM logits[{b}]");
        }
    }

    [Fact]
    public void ImportedMaskedLmAndClassifierMatchThePyTorchForward()
    {
        Assert.Equal("bert", HuggingFaceFolder.ModelType(MaskedLm));
        var mlm = HuggingFaceBert.Import(MaskedLm);
        Assert.False(mlm.Config.IsClassifier);
        Assert.Equal((50, 32, 2, 4, 48, 16), (mlm.Config.VocabSize, mlm.Config.HiddenSize, mlm.Config.NumHiddenLayers, mlm.Config.NumAttentionHeads, mlm.Config.IntermediateSize, mlm.Config.MaxPositionEmbeddings));
        AssertMatchesReference(mlm, MaskedLm);

        var classifier = HuggingFaceBert.Import(Classifier);
        Assert.Equal(3, classifier.Config.NumLabels);
        Assert.Equal(["negative", "neutral", "positive"], Enumerable.Range(0, 3).Select(classifier.Config.LabelName));
        AssertMatchesReference(classifier, Classifier);
    }

    [Theory]
    [InlineData("hf_bert_tiny")]
    [InlineData("hf_bert_tiny_classifier")]
    public void ExportWritesTheSameTensorsBitForBitAndTheVocabulary(string name)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "OracleData", name);
        var model = HuggingFaceBert.Import(source);
        string output = Path.Combine(dir, "hf");
        HuggingFaceBert.Export(model, WordPieceTokenizer.Load(source), output);
        using (var original = SafetensorsFile.Open(Path.Combine(source, "model.safetensors")))
        using (var exported = SafetensorsFile.Open(Path.Combine(output, "model.safetensors")))
        {
            // Everything but the position_ids buffer, which Hugging Face no longer saves.
            Assert.Equal(original.Tensors.Select(t => t.Name).Where(n => !n.EndsWith("position_ids", StringComparison.Ordinal)).Order(), exported.Tensors.Select(t => t.Name).Order());
            foreach (var t in exported.Tensors)
            {
                Assert.Equal(original[t.Name].Shape, t.Shape);
                Assert.Equal(original.ReadFloats(t.Name), exported.ReadFloats(t.Name));
            }
        }
        Assert.Equal(File.ReadAllText(Path.Combine(source, "vocab.txt")), File.ReadAllText(Path.Combine(output, "vocab.txt")));
        var again = HuggingFaceBert.Import(output);
        Assert.Equal(model.Config with { Id2Label = null }, again.Config with { Id2Label = null });
        Assert.Equal(model.Config.Id2Label, again.Config.Id2Label);
        foreach (var p in model.Parameters) Assert.Equal(p.Value.ToArray(), again.FindParameter(p.Name)!.Value.ToArray());

        var preLn = (Bert)(model.Config with { PreLayerNorm = true }).Create();
        Assert.Throws<ArgumentException>(() => HuggingFaceBert.Export(preLn, null, Path.Combine(dir, "preln")));
        Assert.False(Directory.Exists(Path.Combine(dir, "preln")));
    }

    /// <summary>Copies the masked-LM folder with its tensors renamed (or some left out, or one added) by <paramref name="rename"/>.</summary>
    string Variant(string name, Func<string, string?> rename, params (string Name, float[] Data, int[] Shape)[] extra)
    {
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(MaskedLm)) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        var writer = new SafetensorsWriter();
        using (var st = SafetensorsFile.Open(Path.Combine(MaskedLm, "model.safetensors")))
            foreach (var t in st.Tensors.Where(t => t.DType == SafetensorsDType.F32))
                if (rename(t.Name) is { } renamed) writer.Add(renamed, t.Shape, st.ReadFloats(t.Name));
        foreach (var (n, data, shape) in extra) writer.Add(n, shape, data);
        writer.Save(Path.Combine(folder, "model.safetensors"));
        return folder;
    }

    [Fact]
    public void NamesWithoutThePrefixOrWithGammaAndBetaAndUnusedHeadsImportTheSame()
    {
        var reference = HuggingFaceBert.Import(MaskedLm);
        string Old(string n) => n.EndsWith("LayerNorm.weight", StringComparison.Ordinal) ? n[..^6] + "gamma" : n.EndsWith("LayerNorm.bias", StringComparison.Ordinal) ? n[..^4] + "beta" : n;
        var wte = reference.WordEmbeddings.Weight.Value.ToArray();
        string[] folders =
        [
            Variant("bare", n => n.StartsWith("bert.", StringComparison.Ordinal) ? n[5..] : n),
            Variant("old", Old, ("bert.pooler.dense.weight", new float[32 * 32], [32, 32]), ("cls.seq_relationship.bias", new float[2], [2]),
                ("cls.predictions.decoder.weight", wte, [50, 32])),
        ];
        foreach (var folder in folders)
        {
            var model = HuggingFaceBert.Import(folder);
            foreach (var p in reference.Parameters) Assert.Equal(p.Value.ToArray(), model.FindParameter(p.Name)!.Value.ToArray());
        }

        var untied = Variant("untied", n => n, ("cls.predictions.decoder.weight", new float[50 * 32], [50, 32]));
        Assert.Contains("differs from", Assert.Throws<InvalidDataException>(() => HuggingFaceBert.Import(untied)).Message);
        var stranger = Variant("stranger", n => n, ("bert.encoder.layer.0.crossattention.self.query.weight", new float[4], [2, 2]));
        Assert.Contains("'bert.encoder.layer.0.crossattention.self.query.weight'", Assert.Throws<InvalidDataException>(() => HuggingFaceBert.Import(stranger)).Message);
        // A missing tensor is named (here an unused pooler of the same size keeps the count); a file short of weights
        // is refused before the model is allocated.
        var missing = Variant("missing", n => n.Contains("layer.1.attention.self.key.", StringComparison.Ordinal) ? null : n,
            ("bert.pooler.dense.weight", new float[32 * 32], [32, 32]), ("bert.pooler.dense.bias", new float[32], [32]));
        Assert.Contains("'bert.encoder.layer.1.attention.self.key.weight'", Assert.Throws<InvalidDataException>(() => HuggingFaceBert.Import(missing)).Message);
        var shortOf = Variant("short", n => n.Contains("layer.1.attention.self.key.", StringComparison.Ordinal) ? null : n);
        Assert.Contains("describes a BERT of", Assert.Throws<InvalidDataException>(() => HuggingFaceBert.Import(shortOf)).Message);
    }

    [Fact]
    public void ConvertFillMaskAndExportFromTheCommandLine()
    {
        var imported = CliRunner.Run(dir, "convert", "--from-hf", MaskedLm, "--out", "ck");
        Assert.True(imported.ExitCode == 0, imported.Stderr);
        Assert.Contains("BERT masked LM", imported.Stdout);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" }) Assert.True(File.Exists(Path.Combine(dir, "ck", f)), f);

        // The checkpoint and the Hugging Face folder itself give the same fill-mask answer.
        var fromCheckpoint = CliRunner.Run(dir, "fill-mask", "--checkpoint", "ck", "--text", "to be or not to [MASK]", "--top-k", "3");
        var fromFolder = CliRunner.Run(dir, "fill-mask", "--checkpoint", MaskedLm, "--text", "to be or not to [MASK]", "--top-k", "3");
        Assert.True(fromCheckpoint.ExitCode == 0, fromCheckpoint.Stderr);
        Assert.Equal(3, fromCheckpoint.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(fromFolder.Stdout, fromCheckpoint.Stdout);

        var exported = CliRunner.Run(dir, "convert", "--to-hf", "ck", "--out", "hf");
        Assert.True(exported.ExitCode == 0, exported.Stderr);
        using (var original = SafetensorsFile.Open(Path.Combine(MaskedLm, "model.safetensors")))
        using (var back = SafetensorsFile.Open(Path.Combine(dir, "hf", "model.safetensors")))
            foreach (var t in back.Tensors) Assert.Equal(original.ReadFloats(t.Name), back.ReadFloats(t.Name));
        Assert.Contains("\"BertForMaskedLM\"", File.ReadAllText(Path.Combine(dir, "hf", "config.json")));
        Assert.True(File.Exists(Path.Combine(dir, "hf", "vocab.txt")));
    }

    [Theory]
    [InlineData("{\"model_type\": \"roberta\", \"vocab_size\": 50}", "model_type 'roberta' is not supported", "gpt2, bert, vit")]
    [InlineData("{\"architectures\": [\"T5ForConditionalGeneration\"]}", "names no model_type", "T5ForConditionalGeneration")]
    [InlineData("{\"model_type\": \"bert\", \"vocab_size\": 50, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 48, \"position_embedding_type\": \"relative_key\"}", "position_embedding_type 'relative_key'")]
    [InlineData("{\"model_type\": \"bert\", \"vocab_size\": 50, \"hidden_size\": 30, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 48}", "divisible")]
    public void AnotherModelTypeOrAnUnsupportedBertIsOneErrorLine(string json, params string[] mentions)
    {
        Directory.CreateDirectory(Path.Combine(dir, "hf"));
        File.WriteAllText(Path.Combine(dir, "hf", "config.json"), json);
        File.Copy(Path.Combine(MaskedLm, "model.safetensors"), Path.Combine(dir, "hf", "model.safetensors"));
        foreach (var args in new[] { new[] { "convert", "--from-hf", "hf", "--out", "ck" }, ["fill-mask", "--checkpoint", "hf", "--text", "a [MASK]"] })
        {
            var r = CliRunner.Run(dir, args);
            Assert.Equal(1, r.ExitCode);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), r.Stderr);
            foreach (var m in mentions) Assert.Contains(m, lines[0]);
        }
        Assert.False(Directory.Exists(Path.Combine(dir, "ck")));
    }
}
