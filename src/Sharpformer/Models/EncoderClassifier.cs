using System.Text.Json.Serialization;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>Shape of an <see cref="EncoderClassifier"/>.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record EncoderClassifierConfig : ModelConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; }
    [JsonPropertyName("max_length")] public int MaxLength { get; set; } = 128;
    [JsonPropertyName("n_layer")] public int NLayer { get; set; } = 1;
    [JsonPropertyName("n_head")] public int NHead { get; set; } = 2;
    [JsonPropertyName("n_embd")] public int NEmbd { get; set; } = 64;
    [JsonPropertyName("num_labels")] public int NumLabels { get; set; } = 2;
    [JsonPropertyName("dropout")] public float Dropout { get; set; }
    [JsonPropertyName("activation")] public Activation Activation { get; set; } = Activation.GeluErf;
    [JsonPropertyName("layer_norm_epsilon")] public float LayerNormEpsilon { get; set; } = 1e-5f;

    [JsonIgnore] public override string Kind => "encoder-classifier";
    [JsonIgnore] public override int ContextLength => MaxLength;

    public override Model Create(int seed = 1337) => new EncoderClassifier(this, seed);

    public override long ParameterElements()
    {
        long c = NEmbd;
        long block = new TransformerBlockOptions { Width = NEmbd, Heads = NHead }.ParameterCount;
        return (long)VocabSize * c + (long)MaxLength * c + NLayer * block + 2 * c + c * NumLabels + NumLabels;
    }

    public override void Validate()
    {
        Settings.InRange(VocabSize, 1, Settings.MaxVocabulary, "vocab-size");
        Settings.InRange(MaxLength, 1, Settings.MaxContext, "max-length");
        Settings.InRange(NLayer, 1, Settings.MaxLayers, "n-layer");
        Settings.InRange(NHead, 1, Settings.MaxWidth, "n-head");
        Settings.InRange(NEmbd, 1, Settings.MaxWidth, "n-embd");
        Settings.InRange(NumLabels, 2, 1 << 20, "num-labels");
        if (NEmbd % NHead != 0) throw new ArgumentException($"n-embd ({NEmbd}) must be divisible by n-head ({NHead}).");
        Settings.FitsInMemory(ParameterElements(), $"An encoder of {NLayer} layers, {NEmbd} wide");
        Settings.Probability(Dropout, "dropout");
        Settings.PositiveFinite(LayerNormEpsilon, "layer-norm-epsilon");
    }
}

/// <summary>
/// A small bidirectional encoder that classifies token sequences: token + learned position embeddings,
/// pre-LN encoder blocks attending over each sequence's own length, a final LayerNorm, and a linear head on
/// the first position. The simplest model that is not a GPT, proving the model contract.
/// </summary>
public sealed class EncoderClassifier : Model
{
    readonly TransformerBlock[] blocks;

    public EncoderClassifier(EncoderClassifierConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int c = config.NEmbd;
        Wte = AddModule(new Nn.Embedding("encoder.wte", config.VocabSize, c));
        Wpe = AddModule(new PositionalEncoding("encoder.wpe", config.MaxLength, c, PositionalEncodingKind.Learned));
        var options = new TransformerBlockOptions
        {
            Width = c, Heads = config.NHead, Norm = NormPlacement.PreLN, Activation = config.Activation,
            Causal = false, Dropout = config.Dropout, LayerNormEpsilon = config.LayerNormEpsilon,
        };
        blocks = new TransformerBlock[config.NLayer];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = AddModule(new TransformerBlock($"encoder.h.{i}", options, DropoutRng));
        LnF = AddModule(new Nn.LayerNorm("encoder.ln_f", c, bias: true, config.LayerNormEpsilon));
        Head = AddModule(new Linear("classifier", c, config.NumLabels));

        new InitRng(unchecked((ulong)seed)).Encoder(Parameters);
    }

    public override EncoderClassifierConfig Config { get; }
    public Nn.Embedding Wte { get; }
    public PositionalEncoding Wpe { get; }
    public IReadOnlyList<TransformerBlock> Blocks => blocks;
    public Nn.LayerNorm LnF { get; }
    public Linear Head { get; }

    /// <summary>Class logits [batch, labels] of padded sequences ids [batch, time] with their lengths.</summary>
    public Tensor Logits(ReadOnlySpan<int> ids, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (Graph.Current is not null) return Forward(ids, lengths, batch, time);
        using (Graph.NoGrad()) return Forward(ids, lengths, batch, time).Copy();
    }

    Tensor Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || ids.Length != (long)batch * time || lengths.Length != batch)
            throw new ArgumentException($"EncoderClassifier: {ids.Length} ids and {lengths.Length} lengths do not fill [batch {batch}, time {time}].");
        if (time > Config.MaxLength) throw new ArgumentException($"EncoderClassifier: sequence length {time} exceeds max-length {Config.MaxLength}.");
        foreach (int id in ids)
            if ((uint)id >= (uint)Config.VocabSize) throw new ArgumentException($"EncoderClassifier: token {id} is outside the vocabulary of {Config.VocabSize}.");
        foreach (int n in lengths)
            if (n < 1 || n > time) throw new ArgumentException($"EncoderClassifier: length {n} is outside 1..{time}.");

        float p = IsTraining ? Config.Dropout : 0f;
        var x = Ops.Embedding(ids, Wte.Weight.Value, batch, time, Wpe.Weight!.Value, p, p > 0 ? DropoutRng.NextSeed() : 0); // [B, T, C]
        foreach (var block in blocks) x = block.Forward(x, lengths);
        var first = Ops.TakePosition(LnF.Forward(x), 0);                                                               // [B, C]
        return Head.Forward(first);                                                                                     // [B, labels]
    }

    protected override Tensor BatchLoss(Batch batch) => BatchEvaluation(batch).Loss;

    protected override (Tensor Loss, int? Correct) BatchEvaluation(Batch batch)
    {
        if (batch is not LabeledSequenceBatch b) throw WrongBatch(batch, "labelled sequences (LabeledSequenceBatch)");
        var logits = Forward(b.Ids, b.Lengths, b.Batch, b.Time);
        return (Ops.CrossEntropy(logits, b.Labels), CountCorrect(logits, b.Labels));
    }

    /// <summary>6N per token plus attention's 12·L·C·T, as for GPT (padding counted: the kernels skip only masked keys).</summary>
    public override long FlopsPerExample(Batch batch) =>
        batch is LabeledSequenceBatch b
            ? (6 * CountAllParameters() + 12L * Config.NLayer * Config.NEmbd * b.Time) * b.Time
            : throw WrongBatch(batch, "labelled sequences (LabeledSequenceBatch)");
}
