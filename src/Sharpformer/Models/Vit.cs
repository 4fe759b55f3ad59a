using System.Text.Json.Serialization;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>How a <see cref="Vit"/> reads its encoder's output: the [CLS] token (Hugging Face, the ViT paper) or the mean of the patch tokens (timm's global_pool="avg").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VitPooling>))]
public enum VitPooling
{
    [JsonStringEnumMemberName("cls")] Cls,
    [JsonStringEnumMemberName("mean")] Mean,
}

/// <summary>
/// Shape of a <see cref="Vit"/>, under Hugging Face ViTConfig's names. The class names (<c>id2label</c>) and the
/// pixel normalisation (<c>image_mean</c>, <c>image_std</c>: Hugging Face's image-processor names, per channel, on
/// pixels scaled to [0, 1]) travel with the model so a checkpoint alone can classify an image file.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record VitConfig : ModelConfig
{
    [JsonPropertyName("image_size")] public int ImageSize { get; set; } = 28;
    [JsonPropertyName("patch_size")] public int PatchSize { get; set; } = 7;
    [JsonPropertyName("num_channels")] public int NumChannels { get; set; } = 1;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; set; } = 64;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; set; } = 2;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; set; } = 4;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; set; } = 256;
    /// <summary>Dropout after the embeddings and after each sub-layer (training only).</summary>
    [JsonPropertyName("hidden_dropout_prob")] public float HiddenDropoutProb { get; set; }
    /// <summary>Dropout on the attention probabilities (timm's attn_drop_rate, 0 in its recipes); unset, the hidden dropout, as configs written before it was.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")] public float? AttentionProbsDropoutProb { get; set; }
    [JsonPropertyName("num_labels")] public int NumLabels { get; set; } = 10;
    [JsonPropertyName("layer_norm_eps")] public float LayerNormEps { get; set; } = 1e-12f;
    [JsonPropertyName("pooling")] public VitPooling Pooling { get; set; } = VitPooling.Cls;
    /// <summary>Class names by label index as strings ("0", "1", …), as Hugging Face; empty means unnamed.</summary>
    [JsonPropertyName("id2label")] public Dictionary<string, string> Id2Label { get; set; } = [];
    [JsonPropertyName("image_mean")] public float[] ImageMean { get; set; } = [0.5f];
    [JsonPropertyName("image_std")] public float[] ImageStd { get; set; } = [0.5f];

    [JsonIgnore] public override string Kind => "vit";
    /// <summary>The dropout applied to the attention probabilities.</summary>
    [JsonIgnore] public float AttentionDropout => AttentionProbsDropoutProb ?? HiddenDropoutProb;
    /// <summary>Tokens per image: the patches and [CLS].</summary>
    [JsonIgnore] public override int ContextLength => Patches + 1;
    [JsonIgnore] public int Patches => ImageSize / PatchSize * (ImageSize / PatchSize);

    /// <summary>The name of each label, its index where <c>id2label</c> has none.</summary>
    [JsonIgnore] public string[] ClassNames =>
        [.. Enumerable.Range(0, NumLabels).Select(i => Id2Label.TryGetValue(i.ToString(System.Globalization.CultureInfo.InvariantCulture), out var name) ? name : i.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    /// <summary>Sets <c>id2label</c> and <c>num_labels</c> from class names in label order.</summary>
    public VitConfig WithClasses(IReadOnlyList<string> names) => this with
    {
        NumLabels = names.Count,
        Id2Label = names.Select((n, i) => (n, i)).ToDictionary(p => p.i.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.n),
    };

    public override Model Create(int seed = 1337) => new Vit(this, seed);

    public override long ParameterElements()
    {
        long d = HiddenSize, p = (long)NumChannels * PatchSize * PatchSize;
        long block = new TransformerBlockOptions { Width = HiddenSize, Heads = NumAttentionHeads, FeedForwardWidth = IntermediateSize }.ParameterCount;
        return p * d + d + d + (long)(Patches + 1) * d + NumHiddenLayers * block + 2 * d + d * NumLabels + NumLabels;
    }

    public override void Validate()
    {
        Settings.InRange(ImageSize, 1, 1 << 14, "image_size");
        Settings.InRange(PatchSize, 1, ImageSize, "patch_size");
        if (ImageSize % PatchSize != 0) throw new ArgumentException($"image_size ({ImageSize}) must be a multiple of patch_size ({PatchSize}).");
        Settings.InRange(NumChannels, 1, 64, "num_channels");
        Settings.InRange(HiddenSize, 1, Settings.MaxWidth, "hidden_size");
        Settings.InRange(NumHiddenLayers, 1, Settings.MaxLayers, "num_hidden_layers");
        Settings.InRange(NumAttentionHeads, 1, Settings.MaxWidth, "num_attention_heads");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}).");
        Settings.InRange(IntermediateSize, 1, Settings.MaxWidth * 4L, "intermediate_size");
        Settings.InRange(NumLabels, 2, 1 << 20, "num_labels");
        Settings.Probability(HiddenDropoutProb, "hidden_dropout_prob");
        Settings.Probability(AttentionDropout, "attention_probs_dropout_prob");
        Settings.PositiveFinite(LayerNormEps, "layer_norm_eps");
        if (!Enum.IsDefined(Pooling)) throw new ArgumentException($"pooling {(int)Pooling} is not \"cls\" or \"mean\".");
        if (Id2Label.Count != 0 && Id2Label.Count != NumLabels)
            throw new ArgumentException($"id2label names {Id2Label.Count} classes but num_labels is {NumLabels}.");
        if (ImageMean.Length != NumChannels || ImageStd.Length != NumChannels)
            throw new ArgumentException($"image_mean ({ImageMean.Length} values) and image_std ({ImageStd.Length}) must hold one value per channel ({NumChannels}).");
        foreach (var s in ImageStd) Settings.PositiveFinite(s, "image_std");
        foreach (var m in ImageMean) Settings.NonNegativeFinite(Math.Abs(m), "image_mean");
        Settings.FitsInMemory(ParameterElements(), $"A ViT of {NumHiddenLayers} layers, {HiddenSize} wide");
    }
}

/// <summary>
/// A Vision Transformer (Dosovitskiy et al. 2020) as Hugging Face's ViTForImageClassification: the image cut into
/// P×P patches, each mapped linearly to the width D (a stride-P convolution done as one GEMM), a learned [CLS] token
/// put in front, learned position embeddings added, dropout, pre-LN bidirectional blocks with GELU (erf), a final
/// LayerNorm, and a linear classifier on [CLS] (or on the mean of the patch tokens).
/// Parameter names are Hugging Face's outside the blocks (vit.embeddings.cls_token, vit.embeddings.position_embeddings,
/// vit.embeddings.patch_embeddings.projection, vit.layernorm, classifier); each block keeps the project's
/// <see cref="TransformerBlock"/> names under vit.encoder.layer.N (ln_1, attn.c_attn with q, k, v fused, attn.c_proj,
/// ln_2, mlp.c_fc, mlp.c_proj), which the Hugging Face converter maps to and from Hugging Face's.
/// Shapes differ from Hugging Face's in one place: position_embeddings is [N+1, D] here, [1, N+1, D] there.
/// </summary>
public sealed class Vit : Model
{
    readonly TransformerBlock[] blocks;

    public Vit(VitConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int d = config.HiddenSize, p = config.PatchSize;
        PatchWeight = AddParameter("vit.embeddings.patch_embeddings.projection.weight", d, config.NumChannels, p, p);
        PatchBias = AddParameter("vit.embeddings.patch_embeddings.projection.bias", d);
        ClsToken = AddParameter("vit.embeddings.cls_token", 1, 1, d);
        PositionEmbeddings = AddParameter("vit.embeddings.position_embeddings", config.Patches + 1, d);
        var options = new TransformerBlockOptions
        {
            Width = d, Heads = config.NumAttentionHeads, FeedForwardWidth = config.IntermediateSize, Norm = NormPlacement.PreLN,
            Activation = Activation.GeluErf, Causal = false, Dropout = config.HiddenDropoutProb, AttentionDropout = config.AttentionDropout, LayerNormEpsilon = config.LayerNormEps,
        };
        blocks = new TransformerBlock[config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = AddModule(new TransformerBlock($"vit.encoder.layer.{i}", options, DropoutRng));
        Norm = AddModule(new Nn.LayerNorm("vit.layernorm", d, bias: true, config.LayerNormEps));
        Classifier = AddModule(new Linear("classifier", d, config.NumLabels));

        // Hugging Face ViT's _init_weights: N(0, 0.02) for weights, [CLS] and positions; zero biases; LayerNorm gains 1.
        new InitRng(unchecked((ulong)seed)).Encoder(Parameters);
    }

    public override VitConfig Config { get; }
    public Parameter PatchWeight { get; }
    public Parameter PatchBias { get; }
    public Parameter ClsToken { get; }
    public Parameter PositionEmbeddings { get; }
    public IReadOnlyList<TransformerBlock> Blocks => blocks;
    public Nn.LayerNorm Norm { get; }
    public Linear Classifier { get; }

    /// <summary>timm's VisionTransformer.no_weight_decay(): the [CLS] token and the position embeddings.</summary>
    public override IReadOnlySet<string> NoWeightDecay => noWeightDecay ??= new HashSet<string> { ClsToken.Name, PositionEmbeddings.Name };

    IReadOnlySet<string>? noWeightDecay;

    public override bool ActivationCheckpointing
    {
        get => blocks[0].ActivationCheckpointing;
        set { foreach (var b in blocks) b.ActivationCheckpointing = value; }
    }

    /// <summary>Class logits [batch, labels] of normalised images [batch, channels, size, size] (caller-owned outside a scope).</summary>
    public Tensor Logits(ReadOnlySpan<float> images, int batch)
    {
        if (Graph.Current is not null) return Forward(images, batch);
        using (Graph.NoGrad()) return Forward(images, batch).Copy();
    }

    /// <summary>
    /// Class probabilities [count, labels] of images given as bytes [count, channels, size, size], normalised with the
    /// config's mean and std, in evaluation mode, <paramref name="batchSize"/> images at a time.
    /// </summary>
    public float[] Probabilities(ReadOnlySpan<byte> images, int count, int batchSize = 256)
    {
        int size = Config.NumChannels * Config.ImageSize * Config.ImageSize, labels = Config.NumLabels;
        if (count < 0 || images.Length != (long)count * size)
            throw new ArgumentException($"Vit: {images.Length} bytes are not {count} images of [{Config.NumChannels}, {Config.ImageSize}, {Config.ImageSize}].");
        bool training = IsTraining;
        Eval();
        try
        {
            var probabilities = new float[(long)count * labels];
            var pixels = new float[Math.Min(batchSize, Math.Max(count, 1)) * size];
            for (int start = 0; start < count; start += batchSize)
            {
                int n = Math.Min(batchSize, count - start);
                ImageBatch.Normalize(images.Slice(start * size, n * size), pixels.AsSpan(0, n * size), Config.ImageSize * Config.ImageSize, Config.ImageMean, Config.ImageStd);
                using var logits = Logits(pixels.AsSpan(0, n * size), n);
                var output = probabilities.AsSpan(start * labels, n * labels);
                for (int i = 0; i < n; i++) Kernels.Softmax.Apply(logits.Span.Slice(i * labels, labels), output.Slice(i * labels, labels));
            }
            return probabilities;
        }
        finally
        {
            Train(training);
        }
    }

    Tensor Forward(ReadOnlySpan<float> images, int batch)
    {
        int c = Config.NumChannels, h = Config.ImageSize, size = c * h * h;
        if (batch <= 0 || images.Length != (long)batch * size)
            throw new ArgumentException($"Vit: {images.Length} values are not a batch of {batch} images [{c}, {h}, {h}].");
        var x = Graph.NewTensor([batch, c, h, h]);
        images.CopyTo(x.Span);

        float p = IsTraining ? Config.HiddenDropoutProb : 0f;
        var tokens = Ops.PatchEmbedding(x, PatchWeight.Value, PatchBias.Value);                        // [B, N, D]
        tokens = Ops.AddPositions(Ops.PrependRow(tokens, ClsToken.Value), PositionEmbeddings.Value);    // [B, N+1, D]
        if (p > 0) tokens = Ops.Dropout(tokens, p, DropoutRng.NextSeed());
        foreach (var block in blocks) tokens = block.Forward(tokens);
        tokens = Norm.Forward(tokens);
        return Classifier.Forward(Pool(tokens));                                                         // [B, labels]
    }

    /// <summary>[CLS] (position 0), or the mean of the patch tokens (positions 1..N) → [B, D].</summary>
    Tensor Pool(Tensor tokens)
    {
        if (Config.Pooling == VitPooling.Cls) return Ops.TakePosition(tokens, 0);
        int n = tokens.Dim(1) - 1;
        var sum = Ops.TakePosition(tokens, 1);
        for (int t = 2; t <= n; t++) sum = Ops.Add(sum, Ops.TakePosition(tokens, t));
        return Ops.Scale(sum, 1f / n);
    }

    protected override Tensor BatchLoss(Batch batch) => BatchEvaluation(batch).Loss;

    protected override (Tensor Loss, int? Correct) BatchEvaluation(Batch batch)
    {
        if (batch is not ImageBatch b) throw WrongBatch(batch, "labelled images (ImageBatch)");
        var logits = Forward(b.Pixels, b.Batch);
        return (Ops.CrossEntropy(logits, b.Labels), CountCorrect(logits, b.Labels));
    }

    /// <summary>6N per token plus attention's 12·L·D·T over the T = patches + 1 tokens of an image, as for GPT.</summary>
    public override long FlopsPerExample(Batch batch)
    {
        if (batch is not ImageBatch) throw WrongBatch(batch, "labelled images (ImageBatch)");
        long t = Config.ContextLength;
        return (6 * CountAllParameters() + 12L * Config.NumHiddenLayers * Config.HiddenSize * t) * t;
    }
}
