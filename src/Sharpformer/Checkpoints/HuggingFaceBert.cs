using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Text;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Hugging Face BertForMaskedLM / BertForSequenceClassification folders (config.json, model.safetensors, vocab.txt,
/// tokenizer_config.json) ⇄ <see cref="Bert"/>. Outside the blocks the names are the same; inside, the block's
/// GPT-2 names become BERT's: ln_1 → attention.output.LayerNorm, attn.c_attn (q, k, v stacked by rows) →
/// attention.self.query/key/value, attn.c_proj → attention.output.dense, ln_2 → output.LayerNorm, mlp.c_fc →
/// intermediate.dense, mlp.c_proj → output.dense. Both sides use nn.Linear's [out, in] layout, so nothing is
/// transposed and every Hugging Face tensor is one contiguous slice of one of our parameters.
/// </summary>
public static class HuggingFaceBert
{
    const string Prefix = "bert.";
    const string ClassifierArchitecture = "BertForSequenceClassification", MaskedLmArchitecture = "BertForMaskedLM";

    static readonly (string Ours, string Theirs)[] BlockNames =
    [
        ("ln_1", "attention.output.LayerNorm"), ("attn.c_proj", "attention.output.dense"),
        ("ln_2", "output.LayerNorm"), ("mlp.c_fc", "intermediate.dense"), ("mlp.c_proj", "output.dense"),
    ];

    static readonly string[] QueryKeyValue = ["query", "key", "value"];

    /// <summary>
    /// The Hugging Face tensors one of our parameters is made of, each with the slice of our parameter it fills
    /// (offset and length in elements): one for most, three (query, key, value) for a fused c_attn.
    /// </summary>
    public static IReadOnlyList<(string Name, int Offset, int Length)> Parts(string ours, int length)
    {
        int layer = ours.IndexOf(".encoder.layer.", StringComparison.Ordinal);
        if (layer < 0) return [(ours, 0, length)];
        int dot = ours.IndexOf('.', layer + ".encoder.layer.".Length);
        string prefix = ours[..(dot + 1)], local = ours[(dot + 1)..];
        if (local.StartsWith("attn.c_attn.", StringComparison.Ordinal))
        {
            string leaf = local["attn.c_attn.".Length..];
            int third = length / 3;
            return [.. QueryKeyValue.Select((n, k) => ($"{prefix}attention.self.{n}.{leaf}", k * third, third))];
        }
        foreach (var (mine, theirs) in BlockNames)
            if (local.StartsWith(mine + ".", StringComparison.Ordinal))
                return [(prefix + theirs + local[mine.Length..], 0, length)];
        throw new ArgumentException($"No Hugging Face name for BERT parameter '{ours}'.");
    }

    /// <summary>
    /// Reads a Hugging Face BERT folder: a sequence classifier when config.json's architectures name
    /// BertForSequenceClassification, else a masked-LM model. Tensor names may lack the "bert." prefix (BertModel),
    /// LayerNorms may say gamma/beta (old TensorFlow conversions); the position_ids buffer is ignored, and so are the
    /// heads a masked-LM model has no use for (pooler, next-sentence head). Every tensor's presence, dtype and shape
    /// is checked; anything else in the file is an error naming it.
    /// </summary>
    public static Bert Import(string folder)
    {
        var config = ReadConfig(folder);
        string file = Path.Combine(folder, Checkpoint.ModelFile);
        if (!File.Exists(file))
            throw new FileNotFoundException(File.Exists(Path.Combine(folder, "pytorch_model.bin"))
                ? $"'{folder}' holds pytorch_model.bin but no model.safetensors; Sharpformer reads safetensors only (convert with save_pretrained(safe_serialization=True))."
                : $"'{folder}' has no model.safetensors.", file);
        using var st = SafetensorsFile.Open(file);
        // A config claiming a huge model beside a small file is an error before anything is allocated.
        long inFile = st.Tensors.Where(t => !IsBuffer(t.Name)).Sum(t => t.ElementCount), needed = config.ParameterElements();
        if (inFile < needed)
            throw new InvalidDataException($"{file} holds {inFile:N0} weights but config.json describes a BERT of {needed:N0}.");

        var model = new Bert(config);
        var used = new HashSet<string>();
        foreach (var (name, shape, p, offset, length) in Tensors(model))
        {
            string found = Find(st, name);
            var info = st[found];
            if (info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                throw new InvalidDataException($"model.safetensors: tensor '{found}' has dtype {info.DType}; only F32, F16 and BF16 weights can be imported.");
            if (!info.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"model.safetensors: tensor '{found}' has shape {info.ShapeText} but config.json implies [{string.Join(", ", shape)}].");
            st.ReadFloats(found, p.Value.Span.Slice(offset, length));
            used.Add(found);
        }
        foreach (var t in st.Tensors)
        {
            if (used.Contains(t.Name) || IsBuffer(t.Name)) continue;
            string bare = t.Name.StartsWith(Prefix, StringComparison.Ordinal) ? t.Name[Prefix.Length..] : t.Name;
            if (!config.IsClassifier && (bare.StartsWith("pooler.", StringComparison.Ordinal) || t.Name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal)))
                continue; // BertForPreTraining's pooler and next-sentence head: BertForMaskedLM leaves them unused too
            if (!config.IsClassifier && t.Name is "cls.predictions.decoder.weight" or "cls.predictions.decoder.bias")
            {
                var tiedTo = t.Name.EndsWith(".weight", StringComparison.Ordinal) ? model.WordEmbeddings.Weight : model.MlmBias!;
                if (st.ReadFloats(t.Name).AsSpan().SequenceEqual(tiedTo.Value.Span)) continue;
                throw new InvalidDataException($"model.safetensors holds a {t.Name} that differs from {tiedTo.Name}; BERT ties them, so this model cannot be imported.");
            }
            throw new InvalidDataException($"model.safetensors holds a tensor '{t.Name}' that {(config.IsClassifier ? ClassifierArchitecture : MaskedLmArchitecture)} does not have.");
        }
        return model;
    }

    /// <summary>
    /// Writes config.json and model.safetensors as save_pretrained does (the decoder tied to the word embeddings left
    /// out), and the tokenizer's vocab.txt and tokenizer_config.json when one is given.
    /// </summary>
    public static void Export(Bert model, WordPieceTokenizer? tokenizer, string folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        if (c.PreLayerNorm)
            throw new ArgumentException("Hugging Face's BERT is post-LN; a pre-LN BERT (pre_layer_norm) has no Hugging Face equivalent.");
        if (tokenizer is not null && tokenizer.VocabSize > c.VocabSize)
            throw new ArgumentException($"The tokenizer holds {tokenizer.VocabSize} tokens but the model only {c.VocabSize}.");
        AtomicFolder.Write(folder, temp =>
        {
            var writer = new SafetensorsWriter().AddMetadata("format", "pt");
            foreach (var (name, shape, p, offset, length) in Tensors(model))
                writer.Add(name, shape, () => p.Value.Span.Slice(offset, length));
            writer.Save(Path.Combine(temp, Checkpoint.ModelFile));
            var json = new JsonObject
            {
                ["architectures"] = new JsonArray(c.IsClassifier ? ClassifierArchitecture : MaskedLmArchitecture),
                ["model_type"] = "bert",
                ["vocab_size"] = c.VocabSize,
                ["hidden_size"] = c.HiddenSize,
                ["num_hidden_layers"] = c.NumHiddenLayers,
                ["num_attention_heads"] = c.NumAttentionHeads,
                ["intermediate_size"] = c.IntermediateSize,
                ["hidden_act"] = c.HiddenAct,
                ["hidden_dropout_prob"] = c.HiddenDropoutProb,
                ["attention_probs_dropout_prob"] = c.AttentionProbsDropoutProb,
                ["max_position_embeddings"] = c.MaxPositionEmbeddings,
                ["type_vocab_size"] = c.TypeVocabSize,
                ["layer_norm_eps"] = c.LayerNormEps,
                ["initializer_range"] = c.InitializerRange,
                ["position_embedding_type"] = "absolute",
                ["pad_token_id"] = tokenizer?.PadId ?? 0,
                ["torch_dtype"] = "float32",
            };
            if (c.IsClassifier)
            {
                var id2label = new JsonObject();
                var label2id = new JsonObject();
                for (int i = 0; i < c.NumLabels; i++)
                {
                    id2label[i.ToString(CultureInfo.InvariantCulture)] = c.LabelName(i);
                    label2id[c.LabelName(i)] = i;
                }
                json["id2label"] = id2label;
                json["label2id"] = label2id;
            }
            Checkpoint.WriteText(Path.Combine(temp, HuggingFaceConfig.FileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            tokenizer?.Save(temp);
        });
    }

    /// <summary>config.json as a <see cref="BertConfig"/>: the shape, activation, dropouts and, for a classifier, its labels.</summary>
    static BertConfig ReadConfig(string folder)
    {
        using var json = HuggingFaceConfig.Read(folder);
        if (json.ModelType != "bert") throw new InvalidDataException($"{json.Path} describes a {json.ModelType} model, not a BERT.");
        string positions = json.String("position_embedding_type", "absolute");
        if (positions != "absolute")
            throw new InvalidDataException($"{json.Path}: position_embedding_type '{positions}' is not supported (absolute).");
        if (json.Bool("is_decoder", false)) throw new InvalidDataException($"{json.Path}: a BERT decoder (is_decoder) is not supported.");
        bool classifier = json.Architectures.Contains(ClassifierArchitecture);
        var labels = classifier ? json.Labels() : null;
        var config = new BertConfig
        {
            VocabSize = json.Int("vocab_size"), HiddenSize = json.Int("hidden_size"), NumHiddenLayers = json.Int("num_hidden_layers"),
            NumAttentionHeads = json.Int("num_attention_heads"), IntermediateSize = json.Int("intermediate_size"),
            HiddenAct = json.String("hidden_act", "gelu"),
            HiddenDropoutProb = json.Number("hidden_dropout_prob", 0.1f), AttentionProbsDropoutProb = json.Number("attention_probs_dropout_prob", 0.1f),
            MaxPositionEmbeddings = json.Int("max_position_embeddings", 512), TypeVocabSize = json.Int("type_vocab_size", 2),
            LayerNormEps = json.Number("layer_norm_eps", 1e-12f), InitializerRange = json.Number("initializer_range", 0.02f),
            NumLabels = !classifier ? 0 : labels is { Count: > 0 } ? labels.Count : json.Int("num_labels", 2),
            Id2Label = labels,
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{json.Path}: {e.Message}"); }
        return config;
    }

    /// <summary>Buffers some BERT files carry that are not weights (position_ids, and token_type_ids in newer ones).</summary>
    static bool IsBuffer(string name) => name.EndsWith("embeddings.position_ids", StringComparison.Ordinal) || name.EndsWith("embeddings.token_type_ids", StringComparison.Ordinal);

    /// <summary>A Hugging Face name as the file spells it: with or without "bert.", LayerNorm weight/bias or gamma/beta.</summary>
    static string Find(SafetensorsFile st, string name)
    {
        string bare = name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;
        foreach (var candidate in new[] { name, bare })
        {
            if (st.Contains(candidate)) return candidate;
            string old = candidate.EndsWith("LayerNorm.weight", StringComparison.Ordinal) ? candidate[..^"weight".Length] + "gamma"
                : candidate.EndsWith("LayerNorm.bias", StringComparison.Ordinal) ? candidate[..^"bias".Length] + "beta" : candidate;
            if (st.Contains(old)) return old;
        }
        throw new InvalidDataException($"model.safetensors has no tensor '{name}'{(bare == name ? "" : $" (nor '{bare}')")} that config.json implies.");
    }

    /// <summary>Fills every parameter of <paramref name="model"/> from Hugging Face tensors: read(name, destination) copies one in.</summary>
    public static void Import(Bert model, Action<string, Span<float>> read)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(read);
        foreach (var p in model.Parameters)
            foreach (var (name, offset, length) in Parts(p.Name, p.Length))
                read(name, p.Value.Span.Slice(offset, length));
    }

    /// <summary>Every Hugging Face tensor of a model: its name and shape, and the parameter and slice (in elements) it is.</summary>
    static IEnumerable<(string Name, int[] Shape, Parameter Parameter, int Offset, int Length)> Tensors(Bert model)
    {
        foreach (var p in model.Parameters)
        {
            var parts = Parts(p.Name, p.Length);
            int[] shape = [.. p.Shape];
            shape[0] /= parts.Count;
            foreach (var (name, offset, length) in parts) yield return (name, shape, p, offset, length);
        }
    }

    /// <summary>Every parameter (or gradient, with <paramref name="gradients"/>) under Hugging Face names, with its shape.</summary>
    public static List<(string Name, float[] Data, int[] Shape)> Export(Bert model, bool gradients = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return [.. Tensors(model).Select(t => (t.Name, (gradients ? t.Parameter.Grad.Span : t.Parameter.Value.Span).Slice(t.Offset, t.Length).ToArray(), t.Shape))];
    }
}
