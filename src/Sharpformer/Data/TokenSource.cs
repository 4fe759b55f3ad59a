namespace Sharpformer.Data;

/// <summary>A sequence of token ids that batches are cut from (a memory-mapped token file, or memory).</summary>
public interface ITokenSource
{
    long Count { get; }
    /// <summary>Copies tokens [start, start + destination.Length) into destination.</summary>
    void Read(long start, Span<int> destination);
}

/// <summary>Tokens held in memory.</summary>
public sealed class ArrayTokenSource(int[] tokens) : ITokenSource
{
    public long Count => tokens.Length;
    public void Read(long start, Span<int> destination) => tokens.AsSpan(checked((int)start), destination.Length).CopyTo(destination);
}
