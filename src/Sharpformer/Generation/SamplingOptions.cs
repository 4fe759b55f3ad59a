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

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"max-new-tokens must not be negative, got {MaxNewTokens}.");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be zero or positive, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"top-k must not be negative, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}.");
    }
}
