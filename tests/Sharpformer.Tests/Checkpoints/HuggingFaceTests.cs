using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Sharpformer.Kernels;
using Sharpformer.Autograd;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tests.Cli;
using Sharpformer.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// Hugging Face GPT-2 import/export against a tiny random GPT-2 written by tools/oracle/make_hf_gpt2.py
/// (real HF layout, 50,257 tokens) and its PyTorch logits (relative 1e-4, absolute 1e-5 of the logits' scale).
/// </summary>
public sealed class HuggingFaceTests : IDisposable
{
    static readonly string Tiny = Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_gpt2_tiny");
    readonly string dir = Directory.CreateTempSubdirectory("sf-hf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static void AssertLogits(Gpt model)
    {
        using var r = SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_gpt2_tiny_reference.safetensors"));
        var ids = r.ReadInts("input_ids");
        var expected = r.ReadFloats("logits");
        using var g = Graph.NoGrad();
        var logits = model.Logits(ids, 1, ids.Length).Span;
        float scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-4 * Math.Abs(expected[i]) + 1e-5 * scale, $"logits[{i}] = {logits[i]}, PyTorch {expected[i]}");
        var targets = ids[1..].Append(-1).ToArray();
        Assert.Equal(r.ReadFloats("loss")[0], model.Loss(ids, targets, 1, ids.Length).Item, 4);
    }

    [Fact]
    public void ImportMatchesPyTorchLogits()
    {
        var model = HuggingFaceGpt2.Import(Tiny);
        Assert.Equal((2, 4, 32, 64, 50257), (model.Config.NLayer, model.Config.NHead, model.Config.NEmbd, model.Config.BlockSize, model.Config.VocabSize));
        Assert.Equal(Activation.GeluTanh, model.Config.Activation);
        AssertLogits(model);
    }

    [Fact]
    public void BoolCausalMaskBuffersAreListedAndIgnored()
    {
        // Hugging Face GPT-2 files often carry each layer's causal mask as a BOOL buffer h.N.attn.bias [1, 1, T, T].
        var model = HuggingFaceGpt2.Import(Tiny);
        string folder = Path.Combine(dir, "with-mask");
        HuggingFaceGpt2.Export(model, folder);
        string file = Path.Combine(folder, "model.safetensors");
        var writer = new SafetensorsWriter().AddMetadata("format", "pt");
        using (var st = SafetensorsFile.Open(file))
            foreach (var t in st.Tensors) writer.Add(t.Name, t.Shape, st.ReadFloats(t.Name));
        int T = model.Config.BlockSize;
        var mask = new byte[T * T];
        for (int i = 0; i < T; i++) for (int j = 0; j <= i; j++) mask[i * T + j] = 1;
        for (int l = 0; l < model.Config.NLayer; l++)
            writer.AddBytes($"transformer.h.{l}.attn.bias", SafetensorsDType.BOOL, [1, 1, T, T], mask);
        writer.Save(file);
        using (var st = SafetensorsFile.Open(file))
        {
            Assert.Equal(SafetensorsDType.BOOL, st["transformer.h.0.attn.bias"].DType);
            Assert.Equal(mask.Select(b => (int)b), st.ReadInts("transformer.h.1.attn.bias"));
            Assert.Throws<InvalidDataException>(() => st.ReadFloats("transformer.h.0.attn.bias"));
        }
        var imported = HuggingFaceGpt2.Import(folder);
        foreach (var p in model.Parameters)
            Assert.Equal(p.Value.Span.ToArray(), imported.FindParameter(p.Name)!.Value.Span.ToArray());
    }

    [Fact]
    public void ExportThenImportIsBitIdentical()
    {
        var model = HuggingFaceGpt2.Import(Tiny);
        string exported = Path.Combine(dir, "exported");
        HuggingFaceGpt2.Export(model, exported);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(exported, "config.json")))!;
        Assert.Equal("gpt2", (string?)config["model_type"]);
        Assert.Equal(32, (int)config["n_embd"]!);
        using (var st = SafetensorsFile.Open(Path.Combine(exported, "model.safetensors")))
        {
            Assert.Equal([32, 96], st["transformer.h.0.attn.c_attn.weight"].Shape); // Conv1D: [in, out]
            Assert.False(st.Contains("lm_head.weight"));
        }
        var back = HuggingFaceGpt2.Import(exported);
        foreach (var p in model.Parameters)
            Assert.True(p.Value.Span.SequenceEqual(back.FindParameter(p.Name)!.Value.Span), p.Name);
    }

    [Fact]
    public void NamesWithoutPrefixAndHalfPrecisionAreRead()
    {
        string bare = Rewrite("bare", name => name.StartsWith("transformer.") ? name["transformer.".Length..] : name);
        AssertLogits(HuggingFaceGpt2.Import(bare));

        string half = Rewrite("half", n => n, toHalf: true);
        var model = HuggingFaceGpt2.Import(half);
        var original = HuggingFaceGpt2.Import(Tiny);
        var w = original.FindParameter("transformer.wte.weight")!.Value.Span;
        var h = model.FindParameter("transformer.wte.weight")!.Value.Span;
        for (int i = 0; i < 1000; i++) Assert.Equal((float)(Half)w[i], h[i]);
    }

    [Fact]
    public void BadFoldersAreRejectedByName()
    {
        Assert.Contains("transformer.h.1.mlp.c_fc.bias", Assert.Throws<InvalidDataException>(() =>
            HuggingFaceGpt2.Import(Rewrite("missing", n => n == "transformer.h.1.mlp.c_fc.bias" ? null : n))).Message);
        Assert.Contains("shape", Assert.Throws<InvalidDataException>(() =>
            HuggingFaceGpt2.Import(Rewrite("shape", n => n, truncateShapeOf: "transformer.wpe.weight"))).Message);
        Assert.Contains("I32", Assert.Throws<InvalidDataException>(() =>
            HuggingFaceGpt2.Import(Rewrite("int", n => n, intDtypeOf: "transformer.ln_f.weight"))).Message);
        string mismatch = Rewrite("config", n => n);
        File.WriteAllText(Path.Combine(mismatch, "config.json"), File.ReadAllText(Path.Combine(mismatch, "config.json")).Replace("\"n_embd\": 32", "\"n_embd\": 64"));
        Assert.Contains("config.json", Assert.Throws<InvalidDataException>(() => HuggingFaceGpt2.Import(mismatch)).Message);
    }

    [Fact]
    public void ConvertFromTheCommandLineThenSampleWithGpt2Tokens()
    {
        var r = CliRunner.Run(dir, "convert", "--from-hf", Tiny, "--out", "ckpt");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var sample = CliRunner.Run(dir, "sample", "--checkpoint", "ckpt", "--start", "Hello world", "--num-samples", "1", "--max-new-tokens", "8");
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.StartsWith("Hello world", sample.Stdout);
        var back = CliRunner.Run(dir, "convert", "--to-hf", "ckpt", "--out", "hf");
        Assert.True(back.ExitCode == 0, back.Stderr);
        Assert.True(HuggingFaceConfig.IsHuggingFaceFolder(Path.Combine(dir, "hf")));

        string badFolder = Rewrite("bad", n => n == "transformer.wte.weight" ? null : n);
        string before = CliRunner.Fingerprint(dir);
        var bad = CliRunner.Run(dir, "convert", "--from-hf", badFolder, "--out", "ckpt", "--overwrite");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("transformer.wte.weight", Assert.Single(bad.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(before, CliRunner.Fingerprint(dir)); // the existing checkpoint is untouched
    }

    [Fact]
    public void Gpt2TokenizerKnowsHelloWorldAndRoundTrips()
    {
        var t = Gpt2Tokenizer.Instance;
        Assert.Equal([15496, 995], t.Encode("Hello world"));
        string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak. ’Tis café — naïve?";
        Assert.Equal(text, t.Decode(t.Encode(text)));
        Assert.Equal(50257, t.VocabSize);
    }

    /// <summary>Copies the tiny HF folder, renaming/dropping tensors (rename returns null to drop) or changing a dtype or shape.</summary>
    string Rewrite(string name, Func<string, string?> rename, bool toHalf = false, string? truncateShapeOf = null, string? intDtypeOf = null)
    {
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(Tiny, "config.json"), Path.Combine(folder, "config.json"));
        using var src = SafetensorsFile.Open(Path.Combine(Tiny, "model.safetensors"));
        var header = new JsonObject();
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var t in src.Tensors)
        {
            string? newName = rename(t.Name);
            if (newName is null) continue;
            byte[] data = src.RawBytes(t.Name).ToArray();
            string dtype = "F32";
            var shape = t.Shape.ToArray();
            if (toHalf) { data = MemoryMarshal.AsBytes(MemoryMarshal.Cast<byte, float>(data).ToArray().Select(v => (Half)v).ToArray().AsSpan()).ToArray(); dtype = "F16"; }
            if (t.Name == intDtypeOf) dtype = "I32";
            if (t.Name == truncateShapeOf) { shape[0] -= 1; data = data[..(data.Length - shape[1] * 4)]; }
            header[newName] = new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["data_offsets"] = new JsonArray(offset, offset + data.Length) };
            blobs.Add(data);
            offset += data.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var f = File.Create(Path.Combine(folder, "model.safetensors"));
        f.Write(BitConverter.GetBytes((long)json.Length));
        f.Write(json);
        foreach (var b in blobs) f.Write(b);
        return folder;
    }
}

/// <summary>Fine-tuning Hugging Face GPT-2 weights on GPT-2-tokenized text, from the command line.</summary>
public sealed class FineTuneTests : IDisposable
{
    static readonly string Tiny = Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_gpt2_tiny");
    readonly string dir = Directory.CreateTempSubdirectory("sf-ft-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void TrainInitFromHuggingFaceFolderThenSample()
    {
        File.WriteAllText(Path.Combine(dir, "input.txt"), string.Concat(Enumerable.Repeat("ROMEO:\nBut, soft! what light through yonder window breaks?\n", 40)));
        var prepare = CliRunner.Run(dir, "prepare", "text", "--input", "input.txt", "--out", "data", "--tokenizer", "gpt2");
        Assert.True(prepare.ExitCode == 0, prepare.Stderr);
        Assert.Contains("\"gpt2\"", File.ReadAllText(Path.Combine(dir, "data", "meta.json")));

        var train = CliRunner.Run(dir, "train", "--preset", "finetune-shakespeare", "--init-from", Tiny, "--data", "data", "--out-dir", "out",
            "--block-size", "32", "--max-iters", "4", "--eval-interval", "2", "--eval-iters", "1", "--gradient-accumulation-steps", "2",
            "--always-save-checkpoint", "true", "--threads", "2", "--sample-tokens", "5");
        Assert.True(train.ExitCode == 0, train.Stderr);
        Assert.Contains("iter 4: loss", train.Stdout);
        var info = CliRunner.Run(dir, "info", "--checkpoint", "out");
        Assert.Contains("gpt2 tokenizer", info.Stdout);
        var sample = CliRunner.Run(dir, "sample", "--checkpoint", "out", "--start", "ROMEO:", "--num-samples", "1", "--max-new-tokens", "5");
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.StartsWith("ROMEO:", sample.Stdout);
    }

    [Fact]
    public void TokenizerMismatchBetweenDataAndCheckpointIsOneClearLine()
    {
        File.WriteAllText(Path.Combine(dir, "input.txt"), string.Concat(Enumerable.Repeat("To be, or not to be, that is the question.\n", 40)));
        Assert.Equal(0, CliRunner.Run(dir, "prepare", "text", "--input", "input.txt", "--out", "chars").ExitCode);
        string before = CliRunner.Fingerprint(dir);
        var r = CliRunner.Run(dir, "train", "--init-from", Tiny, "--data", "chars", "--out-dir", "out", "--block-size", "16", "--max-iters", "1");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("tokenizer", Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(before, CliRunner.Fingerprint(dir));
    }
}
