using System.Text.Json.Serialization;
using Sharpformer.Kernels;
using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>
/// Shape of a decoder-only GPT, named as nanoGPT's GPTConfig. Defaults are GPT-2 small (124M) with
/// nanoGPT's padded vocabulary.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record GptConfig : ModelConfig
{
    // Settable rather than init-only: the JSON source generator sets every init-only property, so a key missing
    // from a file would become 0 instead of keeping its default.
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 50304;
    [JsonPropertyName("block_size")] public int BlockSize { get; set; } = 1024;
    [JsonPropertyName("n_layer")] public int NLayer { get; set; } = 12;
    [JsonPropertyName("n_head")] public int NHead { get; set; } = 12;
    [JsonPropertyName("n_embd")] public int NEmbd { get; set; } = 768;
    [JsonPropertyName("dropout")] public float Dropout { get; set; }
    [JsonPropertyName("bias")] public bool Bias { get; set; } = true;
    [JsonPropertyName("activation")] public Activation Activation { get; set; } = Activation.GeluTanh;
    [JsonPropertyName("layer_norm_epsilon")] public float LayerNormEpsilon { get; set; } = 1e-5f;

    [JsonIgnore] public int HeadDim => NEmbd / NHead;
    [JsonIgnore] public override string Kind => "gpt";
    [JsonIgnore] public override int ContextLength => BlockSize;

    public override Model Create(int seed = 1337) => new Gpt(this, seed);

    public override long ParameterElements()
    {
        long c = NEmbd, b = Bias ? 1 : 0;
        long block = new TransformerBlockOptions { Width = NEmbd, Heads = NHead, Bias = Bias }.ParameterCount;
        return (long)VocabSize * c + (long)BlockSize * c + NLayer * block + c * (1 + b);
    }

    public override void Validate()
    {
        Settings.InRange(VocabSize, 1, Settings.MaxVocabulary, "vocab-size");
        Settings.InRange(BlockSize, 1, Settings.MaxContext, "block-size");
        Settings.InRange(NLayer, 1, Settings.MaxLayers, "n-layer");
        Settings.InRange(NHead, 1, Settings.MaxWidth, "n-head");
        Settings.InRange(NEmbd, 1, Settings.MaxWidth, "n-embd");
        if (NEmbd % NHead != 0)
            throw new ArgumentException($"n-embd ({NEmbd}) must be divisible by n-head ({NHead}).");
        Settings.FitsInMemory(ParameterElements(), $"A GPT of {NLayer} layers, {NEmbd} wide, vocabulary {VocabSize}");
        Settings.Probability(Dropout, "dropout");
        Settings.PositiveFinite(LayerNormEpsilon, "layer-norm-epsilon");
        if (!Enum.IsDefined(Activation)) throw new ArgumentException($"activation {(int)Activation} is not GeluTanh, GeluErf or Relu.");
    }
}

/// <summary>Source-generated JSON for configs (AOT- and trim-friendly).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    AllowOutOfOrderMetadataProperties = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ModelConfig))]
[JsonSerializable(typeof(GptConfig))]
public partial class ModelJsonContext : JsonSerializerContext;
