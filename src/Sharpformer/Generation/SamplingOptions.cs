namespace Sharpformer.Generation;

/// <summary>How to pick each next token; defaults are nanoGPT's sample.py.</summary>
public sealed record SamplingOptions
{
    public int MaxNewTokens { get; init; } = 500;
    /// <summary>Logits are divided by this; 0 means greedy (argmax).</summary>
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep only the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; } = 200;
    /// <summary>Keep the smallest set of tokens whose probability reaches p (nucleus); 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;
    public ulong Seed { get; init; } = 1337;

    /// <summary>The most tokens one sample may ask for (a million; memory for the tokens is reserved up front).</summary>
    public const int MaxNewTokensLimit = 1 << 20;

    public void Validate()
    {
        Models.Settings.InRange(MaxNewTokens, 0, MaxNewTokensLimit, "max-new-tokens");
        Models.Settings.NonNegativeFinite(Temperature, "temperature");
        Models.Settings.InRange(TopK, 0, Models.Settings.MaxVocabulary, "top-k");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}.");
    }
}
