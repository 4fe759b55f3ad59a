using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Where LayerNorm sits: before each sub-layer inside the residual branch (GPT-2) or after the residual add (2017 paper).</summary>
public enum NormPlacement { PreLN, PostLN }

/// <summary>How one Transformer block is built (DESIGN §4).</summary>
public sealed record TransformerBlockOptions
{
    /// <summary>Model width C.</summary>
    public required int Width { get; init; }
    public required int Heads { get; init; }
    /// <summary>Hidden width of the MLP; 0 means 4·C.</summary>
    public int FeedForwardWidth { get; init; }
    public NormPlacement Norm { get; init; } = NormPlacement.PreLN;
    public Activation Activation { get; init; } = Activation.GeluTanh;
    /// <summary>Causal self-attention (decoders) or bidirectional (encoders).</summary>
    public bool Causal { get; init; } = true;
    /// <summary>Adds cross-attention to an encoder's output (ln_cross, cross_attn.*) between self-attention and the MLP.</summary>
    public bool CrossAttention { get; init; }
    public bool Bias { get; init; } = true;
    /// <summary>Dropout on the attention probabilities and after each sub-layer (training mode only), as nanoGPT.</summary>
    public float Dropout { get; init; }
    /// <summary>Dropout on the attention probabilities alone, when it differs from <see cref="Dropout"/> (BERT's attention_probs_dropout_prob).</summary>
    public float? AttentionDropout { get; init; }
    public float LayerNormEpsilon { get; init; } = 1e-5f;

    public int HiddenWidth => FeedForwardWidth > 0 ? FeedForwardWidth : 4 * Width;

    /// <summary>Parameters (elements) a block of these options holds, known without building it (a loader checks a config against its file first).</summary>
    public long ParameterCount
    {
        get
        {
            long c = Width, h = HiddenWidth, b = Bias ? 1 : 0;
            long norm = c + b * c;
            long attention = 3 * c * c + 3 * b * c + c * c + b * c;          // c_attn, c_proj
            long cross = CrossAttention ? norm + c * c + b * c + 2 * c * c + 2 * b * c + c * c + b * c : 0; // ln_cross, q_proj, kv_proj, c_proj
            long mlp = h * c + b * h + c * h + b * c;                          // c_fc, c_proj
            return 2 * norm + attention + cross + mlp;
        }
    }

    public void Validate()
    {
        if (Width <= 0 || Heads <= 0 || Width % Heads != 0)
            throw new ArgumentException($"TransformerBlock: width {Width} must be positive and divisible by {Heads} heads.");
        if (FeedForwardWidth < 0) throw new ArgumentException($"TransformerBlock: feed-forward width {FeedForwardWidth} is negative.");
        if (Dropout is < 0 or >= 1 || float.IsNaN(Dropout)) throw new ArgumentException($"TransformerBlock: dropout must be in [0, 1), got {Dropout}.");
        if (AttentionDropout is < 0 or >= 1 or float.NaN) throw new ArgumentException($"TransformerBlock: attention dropout must be in [0, 1), got {AttentionDropout}.");
        if (!(LayerNormEpsilon > 0)) throw new ArgumentException($"TransformerBlock: layer-norm epsilon must be positive, got {LayerNormEpsilon}.");
    }
}

/// <summary>
/// One Transformer block: self-attention, optional cross-attention, MLP, each in a residual branch with
/// LayerNorm before it (pre-LN, GPT-2) or after the add (post-LN, 2017). Parameter names follow GPT-2:
/// ln_1, attn.c_attn, attn.c_proj, [ln_cross, cross_attn.q_proj, cross_attn.kv_proj, cross_attn.c_proj],
/// ln_2, mlp.c_fc, mlp.c_proj.
/// </summary>
public sealed partial class TransformerBlock : Module
{
    readonly DropoutRng rng;
    readonly RecomputedSegment segment;

    public TransformerBlock(string name, TransformerBlockOptions options, DropoutRng? dropoutRng = null) : base(name)
    {
        options.Validate();
        Options = options;
        rng = dropoutRng ?? new DropoutRng();
        int c = options.Width;
        Ln1 = AddModule(new LayerNorm(Join(name, "ln_1"), c, options.Bias, options.LayerNormEpsilon));
        Attn = AddModule(new MultiHeadAttention(Join(name, "attn"), c, options.Heads, options.Causal, options.Bias));
        if (options.CrossAttention)
        {
            LnCross = AddModule(new LayerNorm(Join(name, "ln_cross"), c, options.Bias, options.LayerNormEpsilon));
            Cross = AddModule(new CrossAttention(Join(name, "cross_attn"), c, options.Heads, options.Bias));
        }
        Ln2 = AddModule(new LayerNorm(Join(name, "ln_2"), c, options.Bias, options.LayerNormEpsilon));
        Mlp = AddModule(new FeedForward(Join(name, "mlp"), c, options.HiddenWidth, options.Activation, options.Bias));
        segment = new RecomputedSegment(x => Layers(x, default, null, default), rng);
    }

    /// <summary>
    /// When training, keep only the block's input and recompute its activations in backward
    /// (<see cref="Ops.Checkpoint"/>); applies to blocks called without key lengths or memory.
    /// </summary>
    public bool ActivationCheckpointing { get; set; }

    public TransformerBlockOptions Options { get; }

    /// <summary>When set, each forward pass also records its attention probabilities there (inference only: see <see cref="AttentionRecorder"/>).</summary>
    public AttentionRecorder? Recorder { get; set; }
    public LayerNorm Ln1 { get; }
    public MultiHeadAttention Attn { get; }
    public LayerNorm? LnCross { get; }
    public CrossAttention? Cross { get; }
    public LayerNorm Ln2 { get; }
    public FeedForward Mlp { get; }

    /// <summary>
    /// x [B, T, C] → [B, T, C]. keyLengths [B] masks padded self-attention keys; memory [B, S, C] and
    /// memoryLengths [B] feed cross-attention (required exactly when the block has it).
    /// </summary>
    public Tensor Forward(Tensor x, ReadOnlySpan<int> keyLengths = default, Tensor? memory = null, ReadOnlySpan<int> memoryLengths = default)
    {
        if (x.Rank != 3 || x.Dim(2) != Options.Width)
            throw new ArgumentException($"TransformerBlock '{Name}': input {x.ShapeText} must be [B, T, {Options.Width}].", nameof(x));
        if ((memory is null) == Options.CrossAttention)
            throw new ArgumentException(Options.CrossAttention
                ? $"TransformerBlock '{Name}' has cross-attention and needs the encoder memory [B, S, {Options.Width}]."
                : $"TransformerBlock '{Name}' has no cross-attention but was given memory {memory!.ShapeText}.", nameof(memory));
        if (memory is not null && (memory.Rank != 3 || memory.Dim(0) != x.Dim(0) || memory.Dim(2) != Options.Width))
            throw new ArgumentException($"TransformerBlock '{Name}': memory {memory.ShapeText} must be [{x.Dim(0)}, S, {Options.Width}] for input {x.ShapeText}.", nameof(memory));

        if (ActivationCheckpointing && keyLengths.IsEmpty && memory is null) return Ops.Checkpoint(x, segment);
        return Layers(x, keyLengths, memory, memoryLengths);
    }

    Tensor Layers(Tensor x, ReadOnlySpan<int> keyLengths, Tensor? memory, ReadOnlySpan<int> memoryLengths)
    {
        if (Options.Norm == NormPlacement.PreLN)
        {
            // x + dropout(c_proj(attention(c_attn(ln_1(x))))), and likewise the MLP: LayerNorm and activation
            // outputs are recomputed in backward instead of stored, and each residual add and dropout is fused
            // into the projection before it (Ops.Linear with a LinearInput).
            var qkv = Attn.QkvProj.Forward(x, Ln1.AsInput);
            Recorder?.RecordSelf(Name, qkv, Attn.Heads, Attn.Causal, keyLengths);
            x = Attn.OutProj.Forward(Ops.SelfAttention(qkv, Attn.Heads, Attn.Causal, keyLengths, AttentionP, AttentionSeed()), LinearInput.AsIs, x, DropoutP, DropoutSeed());
            if (Cross is not null)
            {
                var q = Cross.QProj.Forward(x, LnCross!.AsInput);
                var kv = Cross.KvProj.Forward(memory!);
                if (Recorder is not null) RecordCross(q, kv, memoryLengths);
                var attended = Ops.CrossAttention(q, kv, Cross.Heads, memoryLengths, AttentionP, AttentionSeed());
                x = Cross.OutProj.Forward(attended, LinearInput.AsIs, x, DropoutP, DropoutSeed());
            }
            var hidden = Mlp.Fc.Forward(x, Ln2.AsInput);
            x = Mlp.Proj.Forward(hidden, LinearInput.Activated(Mlp.Activation), x, DropoutP, DropoutSeed());
        }
        else
        {
            // ln_1(x + dropout(c_proj(attention(c_attn(x))))), and likewise the MLP: each residual add and dropout is
            // fused into the projection before it, and the activation into the MLP's output projection, so neither
            // the projections' outputs nor the activation's are stored.
            var qkv = Attn.QkvProj.Forward(x);
            Recorder?.RecordSelf(Name, qkv, Attn.Heads, Attn.Causal, keyLengths);
            x = Ln1.Forward(Attn.OutProj.Forward(Ops.SelfAttention(qkv, Attn.Heads, Attn.Causal, keyLengths, AttentionP, AttentionSeed()), LinearInput.AsIs, x, DropoutP, DropoutSeed()));
            if (Recorder is not null && Cross is not null) RecordCross(Cross.QProj.Forward(x), Cross.KvProj.Forward(memory!), memoryLengths);
            if (Cross is not null) x = LnCross!.Forward(Ops.Add(x, Drop(Cross.Forward(x, memory!, memoryLengths, AttentionP, AttentionSeed()))));
            x = Ln2.Forward(Mlp.Proj.Forward(Mlp.Fc.Forward(x), LinearInput.Activated(Mlp.Activation), x, DropoutP, DropoutSeed()));
        }
        return x;
    }

    void RecordCross(Tensor q, Tensor kv, ReadOnlySpan<int> memoryLengths)
    {
        int c = Options.Width;
        var shape = new AttentionShape(q.Dim(0), Options.Heads, q.Dim(1), kv.Dim(1), c / Options.Heads, Causal: false);
        Recorder!.Record(Name, true, shape, q.Span, c, kv.Span, 2 * c, memoryLengths);
    }

    float DropoutP => IsTraining ? Options.Dropout : 0f;

    ulong DropoutSeed() => DropoutP > 0 ? rng.NextSeed() : 0;

    float AttentionP => IsTraining ? Options.AttentionDropout ?? Options.Dropout : 0f;

    ulong AttentionSeed() => AttentionP > 0 ? rng.NextSeed() : 0;

    Tensor Drop(Tensor x) => Ops.Dropout(x, DropoutP, DropoutSeed()); // p = 0 returns x itself
}
