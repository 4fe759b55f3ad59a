using System.Text.Json.Serialization;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>Shape of a <see cref="Seq2Seq"/>; the defaults are the 2017 paper's choices at a small size.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record Seq2SeqConfig : ModelConfig
{
    /// <summary>The shared source/target vocabulary.</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; }
    [JsonPropertyName("d_model")] public int DModel { get; set; } = 256;
    [JsonPropertyName("encoder_attention_heads")] public int Heads { get; set; } = 4;
    [JsonPropertyName("encoder_layers")] public int EncoderLayers { get; set; } = 3;
    [JsonPropertyName("decoder_layers")] public int DecoderLayers { get; set; } = 3;
    /// <summary>MLP hidden width; 0 means 4·d_model.</summary>
    [JsonPropertyName("ffn_dim")] public int FfnDim { get; set; }
    [JsonPropertyName("dropout")] public float Dropout { get; set; } = 0.1f;
    /// <summary>Longest source, and longest target + 1 (the position tables).</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxLength { get; set; } = 64;
    /// <summary>"sinusoidal" (the paper's) or "learned".</summary>
    [JsonPropertyName("positions")] public string Positions { get; set; } = "sinusoidal";
    /// <summary>"post" (the paper's: LayerNorm after each residual add) or "pre" (before each sub-layer, plus a final LayerNorm per stack).</summary>
    [JsonPropertyName("norm")] public string Norm { get; set; } = "post";
    [JsonPropertyName("activation")] public Activation Activation { get; set; } = Activation.Relu;
    /// <summary>One table for source embeddings, target embeddings and the output projection (the paper's three-way tying).</summary>
    [JsonPropertyName("tie_word_embeddings")] public bool TieEmbeddings { get; set; } = true;
    [JsonPropertyName("label_smoothing")] public float LabelSmoothing { get; set; } = 0.1f;
    [JsonPropertyName("layer_norm_epsilon")] public float LayerNormEpsilon { get; set; } = 1e-5f;

    [JsonIgnore] public override string Kind => "seq2seq";
    [JsonIgnore] public override int ContextLength => MaxLength;
    [JsonIgnore] public int HiddenWidth => FfnDim > 0 ? FfnDim : 4 * DModel;
    [JsonIgnore] public bool PreLN => Norm == "pre";

    public override Model Create(int seed = 1337) => new Seq2Seq(this, seed);

    public override long ParameterElements()
    {
        long c = DModel, norm = 2 * c;
        var blockShape = new TransformerBlockOptions { Width = DModel, Heads = Heads, FeedForwardWidth = HiddenWidth };
        long encoder = blockShape.ParameterCount, decoder = (blockShape with { CrossAttention = true }).ParameterCount;
        long embeddings = (long)VocabSize * c * (TieEmbeddings ? 1 : 3);
        long positions = Positions == "learned" ? 2L * MaxLength * c : 0;
        long finals = PreLN ? 2 * norm : 0;
        return embeddings + positions + EncoderLayers * encoder + DecoderLayers * decoder + finals;
    }

    public override void Validate()
    {
        Settings.InRange(VocabSize, 5, Settings.MaxVocabulary, "vocab-size");
        Settings.InRange(MaxLength, 2, Settings.MaxContext, "max-length");
        Settings.InRange(EncoderLayers, 1, Settings.MaxLayers, "encoder-layers");
        Settings.InRange(DecoderLayers, 1, Settings.MaxLayers, "decoder-layers");
        Settings.InRange(Heads, 1, Settings.MaxWidth, "heads");
        Settings.InRange(DModel, 1, Settings.MaxWidth, "d-model");
        Settings.InRange(FfnDim, 0, Settings.MaxWidth * 8L, "ffn-dim");
        if (DModel % Heads != 0) throw new ArgumentException($"d-model ({DModel}) must be divisible by heads ({Heads}).");
        if (Positions is not ("sinusoidal" or "learned")) throw new ArgumentException($"positions must be \"sinusoidal\" or \"learned\", not \"{Positions}\".");
        if (Norm is not ("post" or "pre")) throw new ArgumentException($"norm must be \"post\" or \"pre\", not \"{Norm}\".");
        if (!Enum.IsDefined(Activation)) throw new ArgumentException($"activation {(int)Activation} is not GeluTanh, GeluErf or Relu.");
        Settings.Probability(Dropout, "dropout");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new ArgumentException($"label-smoothing must lie in [0, 1), got {LabelSmoothing}.");
        Settings.PositiveFinite(LayerNormEpsilon, "layer-norm-epsilon");
        Settings.FitsInMemory(ParameterElements(), $"An encoder-decoder of {EncoderLayers}+{DecoderLayers} layers, {DModel} wide");
    }
}

/// <summary>
/// The Transformer of "Attention Is All You Need": token embeddings scaled by √d plus positions (sinusoidal or
/// learned), a bidirectional encoder over each source's own length, a decoder with causal self-attention and
/// cross-attention to the encoder's output (masked to the source length), a final LayerNorm per stack when
/// pre-LN, and an output projection (the shared embedding when tied). Trained by teacher forcing with
/// label-smoothed cross-entropy; decoded greedily or by beam search with a KV cache (Seq2Seq.Decode.cs).
/// </summary>
public sealed partial class Seq2Seq : Model
{
    readonly TransformerBlock[] encoder, decoder;
    readonly Tensor? sinusoids;

    public Seq2Seq(Seq2SeqConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int c = config.DModel;
        if (config.TieEmbeddings) SourceEmbedding = TargetEmbedding = AddModule(new Nn.Embedding("shared", config.VocabSize, c));
        else
        {
            SourceEmbedding = AddModule(new Nn.Embedding("encoder.embed_tokens", config.VocabSize, c));
            TargetEmbedding = AddModule(new Nn.Embedding("decoder.embed_tokens", config.VocabSize, c));
        }
        if (config.Positions == "learned")
        {
            SourcePositions = AddModule(new PositionalEncoding("encoder.embed_positions", config.MaxLength, c, PositionalEncodingKind.Learned));
            TargetPositions = AddModule(new PositionalEncoding("decoder.embed_positions", config.MaxLength, c, PositionalEncodingKind.Learned));
        }
        else
        {
            SourcePositions = TargetPositions = new PositionalEncoding("positions", config.MaxLength, c, PositionalEncodingKind.Sinusoidal);
            sinusoids = SourcePositions.Table;
        }
        var options = new TransformerBlockOptions
        {
            Width = c, Heads = config.Heads, FeedForwardWidth = config.HiddenWidth, Norm = config.PreLN ? NormPlacement.PreLN : NormPlacement.PostLN,
            Activation = config.Activation, Causal = false, Dropout = config.Dropout, LayerNormEpsilon = config.LayerNormEpsilon,
        };
        encoder = new TransformerBlock[config.EncoderLayers];
        for (int i = 0; i < encoder.Length; i++) encoder[i] = AddModule(new TransformerBlock($"encoder.layers.{i}", options, DropoutRng));
        decoder = new TransformerBlock[config.DecoderLayers];
        var decoderOptions = options with { Causal = true, CrossAttention = true };
        for (int i = 0; i < decoder.Length; i++) decoder[i] = AddModule(new TransformerBlock($"decoder.layers.{i}", decoderOptions, DropoutRng));
        if (config.PreLN)
        {
            EncoderNorm = AddModule(new Nn.LayerNorm("encoder.layer_norm", c, bias: true, config.LayerNormEpsilon));
            DecoderNorm = AddModule(new Nn.LayerNorm("decoder.layer_norm", c, bias: true, config.LayerNormEpsilon));
        }
        OutputProjection = config.TieEmbeddings ? SourceEmbedding.Weight : AddModule(new Linear("lm_head", c, config.VocabSize, bias: false)).Weight;

        // Embeddings N(0, d^-1/2), so that the √d-scaled inputs have unit variance (fairseq); other matrices
        // Xavier-uniform (the Annotated Transformer); biases 0, LayerNorm gains 1.
        var rng = new InitRng(unchecked((ulong)seed));
        foreach (var p in Parameters)
        {
            var s = p.Value.Span;
            if (p.Name.EndsWith(".bias", StringComparison.Ordinal)) s.Clear();
            else if (p.Shape.Length == 1) s.Fill(1f);
            else if (p.Name.Contains("embed", StringComparison.Ordinal) || p.Name == "shared.weight") rng.Normal(s, 1 / Math.Sqrt(c));
            else
            {
                double bound = Math.Sqrt(6.0 / (p.Shape[0] + p.Shape[1]));
                for (int i = 0; i < s.Length; i++) s[i] = (float)((2 * rng.NextUniform() - 1) * bound);
            }
        }
    }

    public override Seq2SeqConfig Config { get; }
    public Nn.Embedding SourceEmbedding { get; }
    public Nn.Embedding TargetEmbedding { get; }
    public PositionalEncoding SourcePositions { get; }
    public PositionalEncoding TargetPositions { get; }
    public IReadOnlyList<TransformerBlock> EncoderBlocks => encoder;
    public IReadOnlyList<TransformerBlock> DecoderBlocks => decoder;
    public Nn.LayerNorm? EncoderNorm { get; }
    public Nn.LayerNorm? DecoderNorm { get; }
    /// <summary>The output projection [V, C]: the shared embedding's table when tied, else lm_head.</summary>
    public Parameter OutputProjection { get; }

    float Scale => MathF.Sqrt(Config.DModel);

    /// <summary>
    /// Logits [batch, T, V] of the target inputs [batch, T] given the sources [batch, S] with their lengths (teacher
    /// forcing). Inside a scope the result belongs to it; outside it is caller-owned and made without a tape.
    /// </summary>
    public Tensor Logits(ReadOnlySpan<int> source, ReadOnlySpan<int> sourceLengths, ReadOnlySpan<int> targetInputs, int batch, int sourceTime, int targetTime)
    {
        if (Graph.Current is not null) return Forward(source, sourceLengths, targetInputs, batch, sourceTime, targetTime);
        using (Graph.NoGrad()) return Forward(source, sourceLengths, targetInputs, batch, sourceTime, targetTime).Copy();
    }

    /// <summary>The encoder's output [batch, S, C] (the memory the decoder attends to); scoped as <see cref="Logits"/>.</summary>
    public Tensor Encode(ReadOnlySpan<int> source, ReadOnlySpan<int> sourceLengths, int batch, int sourceTime)
    {
        if (Graph.Current is not null) return EncodeInScope(source, sourceLengths, batch, sourceTime);
        using (Graph.NoGrad()) return EncodeInScope(source, sourceLengths, batch, sourceTime).Copy();
    }

    Tensor Forward(ReadOnlySpan<int> source, ReadOnlySpan<int> sourceLengths, ReadOnlySpan<int> targetInputs, int batch, int sourceTime, int targetTime)
    {
        CheckIds(targetInputs, batch, targetTime, "target");
        var memory = EncodeInScope(source, sourceLengths, batch, sourceTime);
        // Padded target positions come after every real one, so causal attention alone keeps them out of real rows.
        var y = Embed(targetInputs, TargetEmbedding, TargetPositions, batch, targetTime);
        foreach (var block in decoder) y = block.Forward(y, default, memory, sourceLengths);
        if (DecoderNorm is not null) y = DecoderNorm.Forward(y);
        return Ops.Linear(y, OutputProjection.Value);
    }

    Tensor EncodeInScope(ReadOnlySpan<int> source, ReadOnlySpan<int> sourceLengths, int batch, int sourceTime)
    {
        CheckIds(source, batch, sourceTime, "source");
        if (sourceLengths.Length != batch) throw new ArgumentException($"Seq2Seq: {sourceLengths.Length} source lengths for a batch of {batch}.");
        foreach (int n in sourceLengths)
            if (n < 1 || n > sourceTime) throw new ArgumentException($"Seq2Seq: source length {n} is outside 1..{sourceTime}.");
        var x = Embed(source, SourceEmbedding, SourcePositions, batch, sourceTime);
        foreach (var block in encoder) x = block.Forward(x, sourceLengths);
        return EncoderNorm is null ? x : EncoderNorm.Forward(x);
    }

    /// <summary>dropout(√d · E[ids] + positions).</summary>
    Tensor Embed(ReadOnlySpan<int> ids, Nn.Embedding table, PositionalEncoding positions, int batch, int time)
    {
        float p = IsTraining ? Config.Dropout : 0f;
        var x = Ops.Scale(Ops.Embedding(ids, table.Weight.Value, batch, time), Scale);
        x = Ops.AddPositions(x, positions.Weight?.Value ?? sinusoids!);
        return Ops.Dropout(x, p, p > 0 ? DropoutRng.NextSeed() : 0);
    }

    void CheckIds(ReadOnlySpan<int> ids, int batch, int time, string side)
    {
        if (batch <= 0 || time <= 0 || ids.Length != (long)batch * time)
            throw new ArgumentException($"Seq2Seq: {ids.Length} {side} ids do not fill [batch {batch}, time {time}].");
        if (time > Config.MaxLength) throw new ArgumentException($"Seq2Seq: {side} length {time} exceeds max-length {Config.MaxLength}.");
        foreach (int id in ids)
            if ((uint)id >= (uint)Config.VocabSize) throw new ArgumentException($"Seq2Seq: {side} token {id} is outside the vocabulary of {Config.VocabSize}.");
    }

    protected override Tensor BatchLoss(Batch batch)
    {
        if (batch is not TranslationBatch b) throw WrongBatch(batch, "sentence pairs (TranslationBatch)");
        var logits = Forward(b.SourceIds, b.SourceLengths, b.TargetInputs, b.Batch, b.SourceTime, b.TargetTime);
        return Ops.CrossEntropy(logits, b.TargetOutputs, Config.LabelSmoothing);
    }

    /// <summary>
    /// 6 FLOPs per parameter per token it touches (encoder blocks per source token, decoder blocks and the output
    /// projection per target token) plus attention's 12·C per query-key pair (padding counted).
    /// </summary>
    public override long FlopsPerExample(Batch batch)
    {
        if (batch is not TranslationBatch b) throw WrongBatch(batch, "sentence pairs (TranslationBatch)");
        long s = b.SourceTime, t = b.TargetTime, c = Config.DModel;
        long enc = encoder.Sum(m => m.CountAllParameters()), dec = decoder.Sum(m => m.CountAllParameters()) + OutputProjection.Length;
        return 6 * (enc * s + dec * t) + 12 * c * (encoder.Length * s * s + decoder.Length * (t * t + t * s));
    }
}
