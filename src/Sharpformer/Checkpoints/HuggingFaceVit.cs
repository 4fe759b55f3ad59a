using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Models;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Hugging Face ViTForImageClassification folders (config.json, model.safetensors, preprocessor_config.json) ⇄
/// <see cref="Vit"/>. Every Hugging Face tensor is one contiguous slice of one of our parameters: query, key and
/// value are the three row blocks of the fused attn.c_attn, position_embeddings drops its leading 1; the rest
/// renames one to one (layernorm_before ↔ ln_1, attention.output.dense ↔ attn.c_proj, layernorm_after ↔ ln_2,
/// intermediate.dense ↔ mlp.c_fc, output.dense ↔ mlp.c_proj). Both sides use nn.Linear's [out, in] layout.
/// </summary>
public static class HuggingFaceVit
{
    /// <summary>True when a folder's config.json says model_type "vit".</summary>
    public static bool IsHuggingFaceVit(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "vit";
        }
        catch (JsonException) { return false; }
    }

    /// <summary>Each Hugging Face tensor: its name, its shape, and the slice of our parameter it is.</summary>
    static IEnumerable<(string HfName, int[] HfShape, string Ours, int Offset)> Tensors(VitConfig c)
    {
        int d = c.HiddenSize;
        yield return ("vit.embeddings.cls_token", [1, 1, d], "vit.embeddings.cls_token", 0);
        yield return ("vit.embeddings.position_embeddings", [1, c.Patches + 1, d], "vit.embeddings.position_embeddings", 0);
        yield return ("vit.embeddings.patch_embeddings.projection.weight", [d, c.NumChannels, c.PatchSize, c.PatchSize], "vit.embeddings.patch_embeddings.projection.weight", 0);
        yield return ("vit.embeddings.patch_embeddings.projection.bias", [d], "vit.embeddings.patch_embeddings.projection.bias", 0);
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string hf = $"vit.encoder.layer.{i}.", ours = hf;
            foreach (var (part, row) in new[] { ("query", 0), ("key", 1), ("value", 2) })
            {
                yield return ($"{hf}attention.attention.{part}.weight", [d, d], ours + "attn.c_attn.weight", row * d * d);
                yield return ($"{hf}attention.attention.{part}.bias", [d], ours + "attn.c_attn.bias", row * d);
            }
            foreach (var (hfPart, ourPart, outputs, inputs) in new[]
            {
                ("attention.output.dense", "attn.c_proj", d, d), ("intermediate.dense", "mlp.c_fc", c.IntermediateSize, d),
                ("output.dense", "mlp.c_proj", d, c.IntermediateSize),
            })
            {
                yield return ($"{hf}{hfPart}.weight", [outputs, inputs], $"{ours}{ourPart}.weight", 0);
                yield return ($"{hf}{hfPart}.bias", [outputs], $"{ours}{ourPart}.bias", 0);
            }
            foreach (var (hfPart, ourPart) in new[] { ("layernorm_before", "ln_1"), ("layernorm_after", "ln_2") })
            {
                yield return ($"{hf}{hfPart}.weight", [d], $"{ours}{ourPart}.weight", 0);
                yield return ($"{hf}{hfPart}.bias", [d], $"{ours}{ourPart}.bias", 0);
            }
        }
        yield return ("vit.layernorm.weight", [d], "vit.layernorm.weight", 0);
        yield return ("vit.layernorm.bias", [d], "vit.layernorm.bias", 0);
        yield return ("classifier.weight", [c.NumLabels, d], "classifier.weight", 0);
        yield return ("classifier.bias", [c.NumLabels], "classifier.bias", 0);
    }

    static int Elements(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    /// <summary>Reads a Hugging Face ViT folder, checking every tensor's presence and shape against config.json.</summary>
    public static Vit Import(string folder)
    {
        var config = ReadConfig(folder);
        string file = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(file)) throw new FileNotFoundException($"'{folder}' has no model.safetensors.", file);
        using var st = SafetensorsFile.Open(file);
        var model = new Vit(config);
        var known = new HashSet<string>();
        foreach (var (hfName, hfShape, ours, offset) in Tensors(config))
        {
            if (!st.Contains(hfName)) throw new InvalidDataException($"model.safetensors has no tensor '{hfName}' that config.json implies.");
            var info = st[hfName];
            if (!info.Shape.SequenceEqual(hfShape))
                throw new InvalidDataException($"model.safetensors: tensor '{hfName}' has shape {info.ShapeText} but config.json implies [{string.Join(", ", hfShape)}].");
            st.ReadFloats(hfName, model.FindParameter(ours)!.Value.Span.Slice(offset, Elements(hfShape)));
            known.Add(hfName);
        }
        foreach (var t in st.Tensors)
            if (!known.Contains(t.Name))
                throw new InvalidDataException($"model.safetensors holds a tensor '{t.Name}' that ViTForImageClassification (without pooler) does not have.");
        return model;
    }

    /// <summary>Writes config.json, preprocessor_config.json and model.safetensors in the Hugging Face layout ([CLS] pooling only).</summary>
    public static void Export(Vit model, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        if (c.Pooling != VitPooling.Cls)
            throw new ArgumentException("Hugging Face's ViTForImageClassification classifies from [CLS]; a ViT with mean pooling has no Hugging Face equivalent.");
        AtomicFolder.Write(folder, temp =>
        {
            var writer = new SafetensorsWriter().AddMetadata("format", "pt");
            foreach (var (hfName, hfShape, ours, offset) in Tensors(c))
            {
                var p = model.FindParameter(ours)!;
                writer.Add(hfName, hfShape, () => p.Value.Span.Slice(offset, Elements(hfShape)));
            }
            writer.Save(Path.Combine(temp, "model.safetensors"));
            var names = c.ClassNames;
            var id2label = new JsonObject();
            var label2id = new JsonObject();
            for (int i = 0; i < names.Length; i++)
            {
                id2label[i.ToString(CultureInfo.InvariantCulture)] = names[i];
                label2id[names[i]] = i;
            }
            var json = new JsonObject
            {
                ["model_type"] = "vit",
                ["architectures"] = new JsonArray("ViTForImageClassification"),
                ["image_size"] = c.ImageSize,
                ["patch_size"] = c.PatchSize,
                ["num_channels"] = c.NumChannels,
                ["hidden_size"] = c.HiddenSize,
                ["num_hidden_layers"] = c.NumHiddenLayers,
                ["num_attention_heads"] = c.NumAttentionHeads,
                ["intermediate_size"] = c.IntermediateSize,
                ["hidden_act"] = "gelu",
                ["hidden_dropout_prob"] = c.HiddenDropoutProb,
                ["attention_probs_dropout_prob"] = c.AttentionDropout,
                ["layer_norm_eps"] = c.LayerNormEps,
                ["qkv_bias"] = true,
                ["initializer_range"] = 0.02,
                ["id2label"] = id2label,
                ["label2id"] = label2id,
                ["torch_dtype"] = "float32",
            };
            var indented = new JsonSerializerOptions { WriteIndented = true };
            Checkpoint.WriteText(Path.Combine(temp, "config.json"), json.ToJsonString(indented));
            var processor = new JsonObject
            {
                ["image_processor_type"] = "ViTImageProcessor",
                ["do_resize"] = true,
                ["size"] = new JsonObject { ["height"] = c.ImageSize, ["width"] = c.ImageSize },
                ["do_rescale"] = true,
                ["rescale_factor"] = 1.0 / 255,
                ["do_normalize"] = true,
                ["image_mean"] = new JsonArray([.. c.ImageMean.Select(v => (JsonNode?)JsonValue.Create(v))]),
                ["image_std"] = new JsonArray([.. c.ImageStd.Select(v => (JsonNode?)JsonValue.Create(v))]),
            };
            Checkpoint.WriteText(Path.Combine(temp, "preprocessor_config.json"), processor.ToJsonString(indented));
        });
    }

    static VitConfig ReadConfig(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' has no config.json.", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement;
            int Int(string name, int? fallback = null) =>
                r.TryGetProperty(name, out var v) && v.TryGetInt32(out int i) ? i
                : fallback ?? throw new InvalidDataException($"{path} has no integer '{name}'.");
            float Float(string name, float fallback) => r.TryGetProperty(name, out var v) && v.TryGetSingle(out float f) ? f : fallback;
            string act = r.TryGetProperty("hidden_act", out var a) ? a.GetString() ?? "gelu" : "gelu";
            if (act != "gelu") throw new InvalidDataException($"{path}: hidden_act '{act}' is not supported (gelu).");
            if (r.TryGetProperty("qkv_bias", out var q) && q.ValueKind == JsonValueKind.False)
                throw new InvalidDataException($"{path}: qkv_bias false is not supported.");
            var names = new Dictionary<string, string>();
            if (r.TryGetProperty("id2label", out var labels) && labels.ValueKind == JsonValueKind.Object)
                foreach (var p in labels.EnumerateObject()) names[p.Name] = p.Value.GetString() ?? p.Name;
            int channels = Int("num_channels", 3);
            var (mean, std) = ReadNormalization(folder, channels);
            var config = new VitConfig
            {
                ImageSize = Int("image_size"), PatchSize = Int("patch_size"), NumChannels = channels, HiddenSize = Int("hidden_size"),
                NumHiddenLayers = Int("num_hidden_layers"), NumAttentionHeads = Int("num_attention_heads"), IntermediateSize = Int("intermediate_size"),
                HiddenDropoutProb = Float("hidden_dropout_prob", 0f), AttentionProbsDropoutProb = Float("attention_probs_dropout_prob", 0f), LayerNormEps = Float("layer_norm_eps", 1e-12f),
                NumLabels = names.Count > 0 ? names.Count : Int("num_labels", 2), Id2Label = names, ImageMean = mean, ImageStd = std,
            };
            try { config.Validate(); }
            catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
            return config;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON: {e.Message}");
        }
    }

    /// <summary>image_mean and image_std from preprocessor_config.json, or ViTImageProcessor's defaults (0.5, 0.5).</summary>
    static (float[] Mean, float[] Std) ReadNormalization(string folder, int channels)
    {
        float[] Default() => Enumerable.Repeat(0.5f, channels).ToArray();
        string path = Path.Combine(folder, "preprocessor_config.json");
        if (!File.Exists(path)) return (Default(), Default());
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        float[] Read(string name) =>
            doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
                ? [.. v.EnumerateArray().Select(e => e.GetSingle())]
                : Default();
        return (Read("image_mean"), Read("image_std"));
    }
}
