using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Kernels;
using Sharpformer.Models;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Import and export of the Hugging Face GPT-2 layout (config.json + model.safetensors, as
/// GPT2LMHeadModel.save_pretrained writes and from_pretrained reads). Names match ours, with or without
/// the "transformer." prefix; the Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) are
/// stored [in, out] there and [out, in] here, so exactly those are transposed on the way in and out.
/// </summary>
public static class HuggingFaceGpt2
{
    public const string ModelFile = "model.safetensors", ConfigFile = "config.json";
    const string Prefix = "transformer.";
    static readonly string[] Conv1D = [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"];

    static bool IsConv1D(string name) => Conv1D.Any(name.EndsWith);

    /// <summary>The causal-mask buffers some GPT-2 files carry; they are not weights.</summary>
    static bool IsIgnored(string name) => name.EndsWith(".attn.bias") || name.EndsWith(".attn.masked_bias");

    /// <summary>Reads a Hugging Face GPT-2 folder into a model, checking every tensor against config.json.</summary>
    public static Gpt Import(string folder)
    {
        var config = ReadConfig(folder);
        string file = Path.Combine(folder, ModelFile);
        if (!File.Exists(file))
            throw new FileNotFoundException(File.Exists(Path.Combine(folder, "pytorch_model.bin"))
                ? $"'{folder}' holds pytorch_model.bin but no model.safetensors; Sharpformer reads safetensors only (convert with save_pretrained(safe_serialization=True))."
                : $"'{folder}' has no model.safetensors.");
        using var st = SafetensorsFile.Open(file);
        string Find(string name)
        {
            if (st.Contains(name)) return name;
            string bare = name.StartsWith(Prefix) ? name[Prefix.Length..] : name;
            if (st.Contains(bare)) return bare;
            throw new InvalidDataException($"model.safetensors has no tensor '{name}' (nor '{bare}') that config.json implies.");
        }
        bool hasBias = st.Contains(Prefix + "ln_f.bias") || st.Contains("ln_f.bias");
        config = config with { Bias = hasBias };
        // Every tensor the config implies is checked by name and shape before the model is allocated (a config
        // claiming a huge model beside a small file is an error, not gigabytes of zeros).
        foreach (var (name, shape) in HfTensors(config).Where(t => hasBias || !t.Name.EndsWith(".bias")))
        {
            var info = st[Find(name)];
            if (!info.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"{ModelFile}: tensor '{info.Name}' has shape {info.ShapeText} but {ConfigFile} (n_layer {config.NLayer}, n_embd {config.NEmbd}, n_positions {config.BlockSize}, vocab_size {config.VocabSize}) implies [{string.Join(", ", shape)}].");
        }
        var model = new Gpt(config);

        var known = new HashSet<string>();
        float[] scratch = [];
        foreach (var p in model.Parameters)
        {
            string name = Find(p.Name);
            known.Add(name);
            var info = st[name];
            if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                throw new InvalidDataException($"model.safetensors: tensor '{name}' has dtype {info.DType}; only F32, F16 and BF16 weights can be imported.");
            bool transpose = IsConv1D(p.Name);
            int[] expected = transpose ? [p.Shape[1], p.Shape[0]] : p.Shape;
            if (!info.Shape.SequenceEqual(expected))
                throw new InvalidDataException($"model.safetensors: tensor '{name}' has shape {info.ShapeText} but config.json (n_layer {config.NLayer}, n_embd {config.NEmbd}, n_positions {config.BlockSize}, vocab_size {config.VocabSize}) implies [{string.Join(", ", expected)}].");
            if (!transpose)
            {
                st.ReadFloats(name, p.Value.Span);
                continue;
            }
            if (scratch.Length < p.Length) scratch = new float[p.Length];
            var source = scratch.AsSpan(0, p.Length);
            st.ReadFloats(name, source);
            Transpose(source, p.Value.Span, rows: expected[0], cols: expected[1]);
        }

        foreach (var t in st.Tensors)
        {
            if (known.Contains(t.Name) || IsIgnored(t.Name)) continue;
            if (t.Name is "lm_head.weight")
            {
                var wte = model.FindParameter(Prefix + "wte.weight")!;
                var head = st.ReadFloats(t.Name);
                if (!head.AsSpan().SequenceEqual(wte.Value.Span))
                    throw new InvalidDataException("model.safetensors holds an lm_head.weight that differs from the token embedding; Sharpformer's GPT ties them, so this model cannot be imported.");
                continue;
            }
            throw new InvalidDataException($"model.safetensors holds a tensor '{t.Name}' that a GPT-2 model does not have.");
        }
        return model;
    }

    /// <summary>Writes config.json and model.safetensors in the Hugging Face GPT-2 layout. Models without biases get zero biases (the same function).</summary>
    public static void Export(Gpt model, string folder)
    {
        var c = model.Config;
        AtomicFolder.Write(folder, temp =>
        {
            var writer = new SafetensorsWriter().AddMetadata("format", "pt");
            var byName = model.Parameters.ToDictionary(p => p.Name);
            foreach (var (name, shape) in HfTensors(c))
            {
                string ours = name;
                if (byName.TryGetValue(ours, out var p))
                {
                    if (IsConv1D(ours))
                    {
                        var t = new float[p.Length];
                        Transpose(p.Value.Span, t, rows: p.Shape[0], cols: p.Shape[1]);
                        writer.Add(name, shape, t);
                    }
                    else writer.Add(name, shape, () => p.Value.Span);
                }
                else writer.Add(name, shape, new float[shape.Aggregate(1, (a, d) => a * d)]); // absent bias: zeros
            }
            writer.Save(Path.Combine(temp, "model.safetensors"));
            var json = new JsonObject
            {
                ["model_type"] = "gpt2",
                ["architectures"] = new JsonArray("GPT2LMHeadModel"),
                ["n_layer"] = c.NLayer,
                ["n_head"] = c.NHead,
                ["n_embd"] = c.NEmbd,
                ["n_positions"] = c.BlockSize,
                ["n_ctx"] = c.BlockSize,
                ["vocab_size"] = c.VocabSize,
                ["layer_norm_epsilon"] = c.LayerNormEpsilon,
                ["activation_function"] = c.Activation switch { Activation.GeluTanh => "gelu_new", Activation.GeluErf => "gelu", _ => "relu" },
                ["resid_pdrop"] = c.Dropout,
                ["embd_pdrop"] = c.Dropout,
                ["attn_pdrop"] = c.Dropout,
                ["initializer_range"] = 0.02,
                ["bos_token_id"] = 50256,
                ["eos_token_id"] = 50256,
                ["tie_word_embeddings"] = true,
                ["torch_dtype"] = "float32",
            };
            Checkpoint.WriteText(Path.Combine(temp, "config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    /// <summary>Every tensor of an HF GPT-2 with biases, in HF shapes.</summary>
    static IEnumerable<(string Name, int[] Shape)> HfTensors(GptConfig c)
    {
        int C = c.NEmbd;
        yield return (Prefix + "wte.weight", [c.VocabSize, C]);
        yield return (Prefix + "wpe.weight", [c.BlockSize, C]);
        for (int i = 0; i < c.NLayer; i++)
        {
            string h = $"{Prefix}h.{i}.";
            yield return (h + "ln_1.weight", [C]);
            yield return (h + "ln_1.bias", [C]);
            yield return (h + "attn.c_attn.weight", [C, 3 * C]);
            yield return (h + "attn.c_attn.bias", [3 * C]);
            yield return (h + "attn.c_proj.weight", [C, C]);
            yield return (h + "attn.c_proj.bias", [C]);
            yield return (h + "ln_2.weight", [C]);
            yield return (h + "ln_2.bias", [C]);
            yield return (h + "mlp.c_fc.weight", [C, 4 * C]);
            yield return (h + "mlp.c_fc.bias", [4 * C]);
            yield return (h + "mlp.c_proj.weight", [4 * C, C]);
            yield return (h + "mlp.c_proj.bias", [C]);
        }
        yield return (Prefix + "ln_f.weight", [C]);
        yield return (Prefix + "ln_f.bias", [C]);
    }

    /// <summary>Reads config.json, checking each field's JSON type by name: a wrong type, null or a non-object file is one clear error.</summary>
    internal static GptConfig ReadConfig(string folder)
    {
        using var json = HuggingFaceConfig.Read(folder);
        string activation = json.String("activation_function", "gelu_new");
        var config = new GptConfig
        {
            NLayer = json.Int("n_layer"),
            NHead = json.Int("n_head"),
            NEmbd = json.Int("n_embd"),
            BlockSize = json.Int("n_positions", alternative: "n_ctx"),
            VocabSize = json.Int("vocab_size"),
            LayerNormEpsilon = json.Number("layer_norm_epsilon", 1e-5f),
            Activation = activation switch
            {
                "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
                "gelu" => Activation.GeluErf,
                "relu" => Activation.Relu,
                _ => throw new InvalidDataException($"{json.Path}: activation_function '{activation}' is not supported (gelu_new, gelu, relu)."),
            },
            Bias = true,
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{json.Path}: {e.Message}"); }
        return config;
    }

    /// <summary>dst[c, r] = src[r, c] for a [rows, cols] source.</summary>
    static void Transpose(ReadOnlySpan<float> src, Span<float> dst, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[c * rows + r] = src[r * cols + c];
    }
}
