using System.Text.Json.Serialization;
using Sharpformer.Kernels;

namespace Sharpformer.Models;

/// <summary>
/// Shape of a decoder-only GPT, named as nanoGPT's GPTConfig. Defaults are GPT-2 small (124M) with
/// nanoGPT's padded vocabulary.
/// </summary>
public sealed record GptConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 50304;
    [JsonPropertyName("block_size")] public int BlockSize { get; init; } = 1024;
    [JsonPropertyName("n_layer")] public int NLayer { get; init; } = 12;
    [JsonPropertyName("n_head")] public int NHead { get; init; } = 12;
    [JsonPropertyName("n_embd")] public int NEmbd { get; init; } = 768;
    [JsonPropertyName("dropout")] public float Dropout { get; init; }
    [JsonPropertyName("bias")] public bool Bias { get; init; } = true;
    [JsonPropertyName("activation")] public Activation Activation { get; init; } = Activation.GeluTanh;
    [JsonPropertyName("layer_norm_epsilon")] public float LayerNormEpsilon { get; init; } = 1e-5f;

    [JsonIgnore] public int HeadDim => NEmbd / NHead;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the setting that cannot work.</summary>
    public void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value <= 0) throw new ArgumentException($"{name} must be positive, got {value}.");
        }
        Positive(VocabSize, "vocab-size");
        Positive(BlockSize, "block-size");
        Positive(NLayer, "n-layer");
        Positive(NHead, "n-head");
        Positive(NEmbd, "n-embd");
        if (NEmbd % NHead != 0)
            throw new ArgumentException($"n-embd ({NEmbd}) must be divisible by n-head ({NHead}).");
        if (Dropout is < 0 or >= 1 || float.IsNaN(Dropout))
            throw new ArgumentException($"dropout must be in [0, 1), got {Dropout}.");
        if (!(LayerNormEpsilon > 0))
            throw new ArgumentException($"layer-norm-epsilon must be positive, got {LayerNormEpsilon}.");
    }
}

/// <summary>Source-generated JSON for configs (AOT- and trim-friendly).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(GptConfig))]
public partial class ModelJsonContext : JsonSerializerContext;
