using Sharpformer.Autograd;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>y = x·Wᵀ + b with weight [out, in] (PyTorch nn.Linear layout) and an optional bias [out].</summary>
public sealed class Linear : Module
{
    public Linear(string name, int inFeatures, int outFeatures, bool bias = true) : base(name)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Linear '{name}': features must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = AddParameter("weight", outFeatures, inFeatures);
        Bias = bias ? AddParameter("bias", outFeatures) : null;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight.Value, Bias?.Value);

    /// <summary>y = residual + dropout(input(x)·Wᵀ + b) as one op that keeps only x (see <see cref="Ops.Linear(Tensor, Tensor, Tensor?, LinearInput, Tensor?, float, ulong)"/>).</summary>
    public Tensor Forward(Tensor x, LinearInput input, Tensor? residual = null, float dropout = 0f, ulong seed = 0) =>
        Ops.Linear(x, Weight.Value, Bias?.Value, input, residual, dropout, seed);
}

/// <summary>A lookup table [count, dim].</summary>
public sealed class Embedding : Module
{
    public Embedding(string name, int count, int dim) : base(name)
    {
        if (count <= 0 || dim <= 0) throw new ArgumentException($"Embedding '{name}': sizes must be positive, got [{count}, {dim}].");
        Count = count;
        Dim = dim;
        Weight = AddParameter("weight", count, dim);
    }

    public int Count { get; }
    public int Dim { get; }
    public Parameter Weight { get; }

    /// <summary>ids laid out [batch, time] → [batch, time, dim].</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time) => Ops.Embedding(ids, Weight.Value, batch, time);
}

/// <summary>LayerNorm over the last dimension with gain (ones) and optional bias (zeros).</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(string name, int dim, bool bias = true, float eps = 1e-5f) : base(name)
    {
        if (dim <= 0) throw new ArgumentException($"LayerNorm '{name}': dim must be positive, got {dim}.");
        Dim = dim;
        Eps = eps;
        Weight = AddParameter("weight", dim);
        Bias = bias ? AddParameter("bias", dim) : null;
        Weight.Value.Span.Fill(1f);
    }

    public int Dim { get; }
    public float Eps { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight.Value, Bias?.Value, Eps);

    /// <summary>This LayerNorm as the input transform of a fused linear layer (its output is then never stored).</summary>
    public LinearInput AsInput => LinearInput.LayerNorm(Weight.Value, Bias?.Value, Eps);
}

public enum PositionalEncodingKind { Learned, Sinusoidal }

/// <summary>
/// Adds a position vector to each row of x [B, T, C]: learned (a parameter [maxLength, C] named
/// "{name}.weight", as GPT-2's wpe) or the fixed sinusoids of "Attention Is All You Need"
/// (PE[pos, 2i] = sin(pos / 10000^(2i/C)), PE[pos, 2i+1] = cos(same)), which have no parameters.
/// </summary>
public sealed class PositionalEncoding : Module
{
    readonly Tensor table;

    public PositionalEncoding(string name, int maxLength, int dim, PositionalEncodingKind kind) : base(name)
    {
        if (maxLength <= 0 || dim <= 0) throw new ArgumentException($"PositionalEncoding '{name}': sizes must be positive, got [{maxLength}, {dim}].");
        Kind = kind;
        MaxLength = maxLength;
        Dim = dim;
        if (kind == PositionalEncodingKind.Learned)
        {
            Weight = AddParameter("weight", maxLength, dim);
            table = Weight.Value;
        }
        else
        {
            table = new Tensor(maxLength, dim);
            var s = table.Span;
            for (int pos = 0; pos < maxLength; pos++)
                for (int i = 0; i < dim; i += 2)
                {
                    double angle = pos / Math.Pow(10000, (double)i / dim);
                    s[pos * dim + i] = (float)Math.Sin(angle);
                    if (i + 1 < dim) s[pos * dim + i + 1] = (float)Math.Cos(angle);
                }
        }
    }

    public PositionalEncodingKind Kind { get; }
    public int MaxLength { get; }
    public int Dim { get; }

    /// <summary>The learned table, or null for sinusoids.</summary>
    public Parameter? Weight { get; }

    /// <summary>The table rows added to positions 0, 1, …: [MaxLength, Dim].</summary>
    public Tensor Table => table;

    public Tensor Forward(Tensor x)
    {
        if (x.Rank == 3 && x.Dim(1) > MaxLength)
            throw new ArgumentException($"PositionalEncoding '{Name}': sequence length {x.Dim(1)} of input {x.ShapeText} exceeds the maximum {MaxLength}.", nameof(x));
        return Ops.AddPositions(x, table);
    }
}

/// <summary>Position-wise MLP: c_proj(act(c_fc(x))), c_fc [hidden, C], c_proj [C, hidden].</summary>
public sealed class FeedForward : Module
{
    public FeedForward(string name, int dim, int hidden, Kernels.Activation activation, bool bias = true) : base(name)
    {
        Activation = activation;
        Fc = AddModule(new Linear(Join(name, "c_fc"), dim, hidden, bias));
        Proj = AddModule(new Linear(Join(name, "c_proj"), hidden, dim, bias));
    }

    public Kernels.Activation Activation { get; }
    public Linear Fc { get; }
    public Linear Proj { get; }

    public Tensor Forward(Tensor x) => Proj.Forward(Activate(Fc.Forward(x), Activation));

    public static Tensor Activate(Tensor x, Kernels.Activation activation) => activation switch
    {
        Kernels.Activation.GeluTanh => Ops.Gelu(x),
        Kernels.Activation.GeluErf => Ops.GeluErf(x),
        Kernels.Activation.Relu => Ops.Relu(x),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, null),
    };
}

/// <summary>
/// Multi-head self-attention: a packed projection c_attn [3C, C] to q, k, v, fused attention (causal or
/// bidirectional, optional key lengths), and the output projection c_proj [C, C]. No [T, T] matrix is kept.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    public MultiHeadAttention(string name, int dim, int heads, bool causal, bool bias = true) : base(name)
    {
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentException($"MultiHeadAttention '{name}': width {dim} is not divisible by {heads} heads.");
        Dim = dim;
        Heads = heads;
        Causal = causal;
        QkvProj = AddModule(new Linear(Join(name, "c_attn"), dim, 3 * dim, bias));
        OutProj = AddModule(new Linear(Join(name, "c_proj"), dim, dim, bias));
    }

    public int Dim { get; }
    public int Heads { get; }
    public bool Causal { get; }
    public Linear QkvProj { get; }
    public Linear OutProj { get; }

    /// <summary>x [B, T, C] → [B, T, C]; keyLengths [B] (optional) masks keys at and past each row's length; dropout acts on the attention probabilities.</summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<int> keyLengths = default, float dropout = 0f, ulong seed = 0) =>
        OutProj.Forward(Ops.SelfAttention(QkvProj.Forward(x), Heads, Causal, keyLengths, dropout, seed));
}

/// <summary>
/// Multi-head cross-attention to an encoder's output: q_proj [C, C] on the queries, kv_proj [2C, C] on the
/// memory (keys and values packed), fused attention, c_proj [C, C].
/// </summary>
public sealed class CrossAttention : Module
{
    public CrossAttention(string name, int dim, int heads, bool bias = true) : base(name)
    {
        if (heads <= 0 || dim % heads != 0)
            throw new ArgumentException($"CrossAttention '{name}': width {dim} is not divisible by {heads} heads.");
        Dim = dim;
        Heads = heads;
        QProj = AddModule(new Linear(Join(name, "q_proj"), dim, dim, bias));
        KvProj = AddModule(new Linear(Join(name, "kv_proj"), dim, 2 * dim, bias));
        OutProj = AddModule(new Linear(Join(name, "c_proj"), dim, dim, bias));
    }

    public int Dim { get; }
    public int Heads { get; }
    public Linear QProj { get; }
    public Linear KvProj { get; }
    public Linear OutProj { get; }

    /// <summary>x [B, Tq, C] attends to memory [B, Tk, C]; memoryLengths [B] (optional) masks padded memory.</summary>
    public Tensor Forward(Tensor x, Tensor memory, ReadOnlySpan<int> memoryLengths = default, float dropout = 0f, ulong seed = 0) =>
        OutProj.Forward(Ops.CrossAttention(QProj.Forward(x), KvProj.Forward(memory), Heads, memoryLengths, dropout, seed));
}
