using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Models;

/// <summary>
/// A decoder-only Transformer as GPT-2 and nanoGPT's model.py: token plus learned position embeddings,
/// dropout, pre-LN blocks with causal self-attention, a final LayerNorm, and an LM head that shares the
/// token embedding's weights. Parameter names are the Hugging Face GPT-2 names.
/// </summary>
public sealed partial class Gpt : Model, ITokenDecoder
{
    readonly TransformerBlock[] blocks;

    public Gpt(GptConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int c = config.NEmbd;

        Wte = AddModule(new Nn.Embedding("transformer.wte", config.VocabSize, c));
        Wpe = AddModule(new PositionalEncoding("transformer.wpe", config.BlockSize, c, PositionalEncodingKind.Learned));
        var blockOptions = new TransformerBlockOptions
        {
            Width = c,
            Heads = config.NHead,
            Norm = NormPlacement.PreLN,
            Activation = config.Activation,
            Causal = true,
            Bias = config.Bias,
            Dropout = config.Dropout,
            LayerNormEpsilon = config.LayerNormEpsilon,
        };
        blocks = new TransformerBlock[config.NLayer];
        for (int i = 0; i < blocks.Length; i++)
            blocks[i] = AddModule(new TransformerBlock($"transformer.h.{i}", blockOptions, DropoutRng));
        LnF = AddModule(new Nn.LayerNorm("transformer.ln_f", c, config.Bias, config.LayerNormEpsilon));
        // lm_head.weight is transformer.wte.weight (weight tying): no parameter of its own.

        Initialize(seed);
    }

    public override GptConfig Config { get; }

    /// <summary>Recompute each block's activations in backward instead of keeping them (training memory falls to about one block's worth).</summary>
    public override bool ActivationCheckpointing
    {
        get => blocks[0].ActivationCheckpointing;
        set { foreach (var b in blocks) b.ActivationCheckpointing = value; }
    }
    public Nn.Embedding Wte { get; }
    public PositionalEncoding Wpe { get; }
    public IReadOnlyList<TransformerBlock> Blocks => blocks;
    public Nn.LayerNorm LnF { get; }

    /// <summary>Parameters excluding the position embedding, as nanoGPT's get_num_params() (the tied head counts once).</summary>
    public override long ParameterCount => CountParameters(nonEmbedding: true);

    /// <summary>Number of parameters; nonEmbedding leaves out wpe (nanoGPT's default), false counts everything.</summary>
    public long CountParameters(bool nonEmbedding = true) =>
        CountAllParameters() - (nonEmbedding ? Wpe.Weight!.Length : 0);

    /// <summary>Estimated training FLOPs per token at sequence length T, as nanoGPT's estimate_mfu: 6N + 12·L·H·Q·T.</summary>
    public long FlopsPerToken(int time) =>
        6 * ParameterCount + 12L * Config.NLayer * Config.NHead * Config.HeadDim * time;

    public override long FlopsPerExample(Batch batch) =>
        batch is TokenBatch t ? FlopsPerToken(t.Time) * t.Time : throw WrongBatch(batch, "next-token windows (TokenBatch)");

    protected override Tensor BatchLoss(Batch batch) =>
        batch is TokenBatch t ? NextTokenLoss(t.Inputs, t.Targets, t.Batch, t.Time) : throw WrongBatch(batch, "next-token windows (TokenBatch)");

    /// <summary>GPT-2 init: N(0, 0.02) weights, residual projections N(0, 0.02/√(2·n_layer)), zero biases, unit LayerNorm gains.</summary>
    void Initialize(int seed)
    {
        var rng = new InitRng(unchecked((ulong)seed));
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.NLayer);
        foreach (var p in Parameters)
        {
            var s = p.Value.Span;
            if (p.Name.EndsWith(".bias", StringComparison.Ordinal)) s.Clear();
            else if (p.Shape.Length == 1) s.Fill(1f); // LayerNorm gain
            else rng.Normal(s, p.Name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? residualStd : 0.02);
        }
    }

    /// <summary>
    /// Mean cross-entropy of next-token predictions for idx [batch, time] against targets [batch, time]
    /// (-1 = ignore). A scalar; differentiable inside <see cref="Graph.Record"/>. Called outside any scope
    /// it runs without a tape and returns a caller-owned tensor.
    /// </summary>
    public Tensor Loss(ReadOnlySpan<int> idx, ReadOnlySpan<int> targets, int batch, int time)
    {
        if (Graph.Current is not null) return NextTokenLoss(idx, targets, batch, time);
        using (Graph.NoGrad()) return NextTokenLoss(idx, targets, batch, time).Copy();
    }

    Tensor NextTokenLoss(ReadOnlySpan<int> idx, ReadOnlySpan<int> targets, int batch, int time)
    {
        CheckTokens(idx, batch, time);
        if (targets.Length != idx.Length)
            throw new ArgumentException($"Gpt.Loss: {targets.Length} targets for {idx.Length} inputs [batch {batch}, time {time}].", nameof(targets));
        for (int i = 0; i < targets.Length; i++)
            if (targets[i] != Kernels.CrossEntropy.IgnoreIndex && (uint)targets[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"Gpt.Loss: target {targets[i]} at position {i} is outside the vocabulary of {Config.VocabSize}.", nameof(targets));
        return Ops.CrossEntropy(Forward(idx, batch, time), targets);
    }

    /// <summary>
    /// Logits [batch, time, vocab] for idx [batch, time]. Inside a scope the result belongs to it; outside
    /// any scope it runs without a tape and returns a caller-owned tensor (dispose it).
    /// </summary>
    public Tensor Logits(ReadOnlySpan<int> idx, int batch, int time)
    {
        CheckTokens(idx, batch, time);
        if (Graph.Current is not null) return Forward(idx, batch, time);
        using (Graph.NoGrad()) return Forward(idx, batch, time).Copy();
    }

    /// <summary>The model's forward pass, as nanoGPT's GPT.forward.</summary>
    Tensor Forward(ReadOnlySpan<int> idx, int batch, int time)
    {
        // dropout(token embeddings + position embeddings) [B, T, C], as one op
        float p = IsTraining ? Config.Dropout : 0f;
        var x = Ops.Embedding(idx, Wte.Weight.Value, batch, time, Wpe.Weight!.Value, p, p > 0 ? DropoutRng.NextSeed() : 0);
        foreach (var block in blocks) x = block.Forward(x);
        return Ops.Linear(x, Wte.Weight.Value, null, LnF.AsInput); // lm_head(ln_f(x)), tied to wte: [B, T, V]
    }

    void CheckTokens(ReadOnlySpan<int> idx, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || idx.Length != (long)batch * time)
            throw new ArgumentException($"Gpt: {idx.Length} tokens do not fill [batch {batch}, time {time}].", nameof(idx));
        if (time > Config.BlockSize)
            throw new ArgumentException($"Gpt: sequence length {time} exceeds the block size {Config.BlockSize}.", nameof(time));
        for (int i = 0; i < idx.Length; i++)
            if ((uint)idx[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"Gpt: token {idx[i]} at position {i} is outside the vocabulary of {Config.VocabSize}.", nameof(idx));
    }
}
