using System.Text.Json.Serialization;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// Shape of a <see cref="Bert"/>, named as Hugging Face's BertConfig (defaults are bert-base). <c>num_labels</c> 0
/// makes a masked-LM model (BertForMaskedLM: MLM head, no pooler); n ≥ 2 a sequence classifier
/// (BertForSequenceClassification: pooler + classifier).
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record BertConfig : ModelConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 30522;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; set; } = 768;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; set; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; set; } = 12;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; set; } = 3072;
    /// <summary>"gelu" (erf, BERT), "gelu_new" (tanh form) or "relu", as Hugging Face spells them.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; set; } = "gelu";
    [JsonPropertyName("hidden_dropout_prob")] public float HiddenDropoutProb { get; set; } = 0.1f;
    [JsonPropertyName("attention_probs_dropout_prob")] public float AttentionProbsDropoutProb { get; set; } = 0.1f;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; set; } = 512;
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; set; } = 2;
    [JsonPropertyName("layer_norm_eps")] public float LayerNormEps { get; set; } = 1e-12f;
    [JsonPropertyName("initializer_range")] public float InitializerRange { get; set; } = 0.02f;
    /// <summary>LayerNorm before each sub-layer plus a final one (not in Hugging Face's BERT, which is post-LN).</summary>
    [JsonPropertyName("pre_layer_norm")] public bool PreLayerNorm { get; set; }
    /// <summary>0: masked-LM model; n ≥ 2: classifier over n labels.</summary>
    [JsonPropertyName("num_labels")] public int NumLabels { get; set; }
    /// <summary>Label names by class index ("0": "ham"), as Hugging Face; optional.</summary>
    [JsonPropertyName("id2label")] public Dictionary<string, string>? Id2Label { get; set; }

    [JsonIgnore] public override string Kind => "bert";
    [JsonIgnore] public override int ContextLength => MaxPositionEmbeddings;
    [JsonIgnore] public bool IsClassifier => NumLabels > 0;

    /// <summary>The block activation <see cref="HiddenAct"/> names.</summary>
    [JsonIgnore]
    public Activation Activation => HiddenAct switch
    {
        "gelu" => Activation.GeluErf,
        "gelu_new" or "gelu_pytorch_tanh" => Activation.GeluTanh,
        "relu" => Activation.Relu,
        _ => throw new ArgumentException($"hidden_act \"{HiddenAct}\" is not gelu, gelu_new or relu."),
    };

    /// <summary>The class names: <see cref="Id2Label"/> where given, else "LABEL_i" as Hugging Face.</summary>
    public string LabelName(int label) => Id2Label is not null && Id2Label.TryGetValue(label.ToString(System.Globalization.CultureInfo.InvariantCulture), out var name) ? name : $"LABEL_{label}";

    /// <summary>A classifier over these label names (class i is names[i]), as Hugging Face's num_labels and id2label.</summary>
    public BertConfig WithLabels(IReadOnlyList<string> names) => this with
    {
        NumLabels = names.Count,
        Id2Label = names.Select((n, i) => (n, i)).ToDictionary(p => p.i.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.n),
    };

    public override Model Create(int seed = 1337) => new Bert(this, seed);

    /// <summary>The weights of one encoder block.</summary>
    [JsonIgnore]
    public long BlockParameters => new TransformerBlockOptions { Width = HiddenSize, Heads = NumAttentionHeads, FeedForwardWidth = IntermediateSize }.ParameterCount;

    public override long ParameterElements()
    {
        long c = HiddenSize, v = VocabSize;
        long block = BlockParameters;
        long embeddings = (v + MaxPositionEmbeddings + TypeVocabSize) * c + 2 * c;
        long head = IsClassifier ? c * c + c + c * NumLabels + NumLabels : c * c + c + 2 * c + v;
        return embeddings + NumHiddenLayers * block + (PreLayerNorm ? 2 * c : 0) + head;
    }

    public override void Validate()
    {
        Settings.InRange(VocabSize, 1, Settings.MaxVocabulary, "vocab_size");
        Settings.InRange(HiddenSize, 1, Settings.MaxWidth, "hidden_size");
        Settings.InRange(NumHiddenLayers, 1, Settings.MaxLayers, "num_hidden_layers");
        Settings.InRange(NumAttentionHeads, 1, Settings.MaxWidth, "num_attention_heads");
        Settings.InRange(IntermediateSize, 1, 4 * Settings.MaxWidth, "intermediate_size");
        Settings.InRange(MaxPositionEmbeddings, 1, Settings.MaxContext, "max_position_embeddings");
        Settings.InRange(TypeVocabSize, 1, 1 << 16, "type_vocab_size");
        if (NumLabels != 0) Settings.InRange(NumLabels, 2, 1 << 20, "num_labels");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}).");
        _ = Activation;
        Settings.Probability(HiddenDropoutProb, "hidden_dropout_prob");
        Settings.Probability(AttentionProbsDropoutProb, "attention_probs_dropout_prob");
        Settings.PositiveFinite(LayerNormEps, "layer_norm_eps");
        Settings.PositiveFinite(InitializerRange, "initializer_range");
        Settings.FitsInMemory(ParameterElements(), $"A BERT of {NumHiddenLayers} layers, {HiddenSize} wide, vocabulary {VocabSize}");
    }
}

/// <summary>
/// BERT (Devlin et al. 2018), encoder-only: word + learned position + token-type embeddings, LayerNorm and
/// dropout; post-LN GELU blocks attending both ways over each sequence's own length (pre-LN as an option, then
/// with a final LayerNorm); then either the masked-LM head (dense, GELU, LayerNorm, decoder tied to the word
/// embeddings with its own bias) or the pooler (dense + tanh on [CLS]) and a linear classifier.
/// Names are Hugging Face's (bert.embeddings.*, cls.predictions.*, bert.pooler.dense, classifier) except inside
/// the blocks, which keep <see cref="TransformerBlock"/>'s GPT-2 names under bert.encoder.layer.N (ln_1,
/// attn.c_attn with q, k, v fused, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj); the converter maps those.
/// </summary>
public sealed class Bert : Model
{
    readonly TransformerBlock[] blocks;
    int[] zeroSegments = [], headRows = [], headTargets = [];

    public Bert(BertConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int c = config.HiddenSize;
        WordEmbeddings = AddModule(new Nn.Embedding("bert.embeddings.word_embeddings", config.VocabSize, c));
        PositionEmbeddings = AddModule(new PositionalEncoding("bert.embeddings.position_embeddings", config.MaxPositionEmbeddings, c, PositionalEncodingKind.Learned));
        TokenTypeEmbeddings = AddModule(new Nn.Embedding("bert.embeddings.token_type_embeddings", config.TypeVocabSize, c));
        EmbeddingsNorm = AddModule(new Nn.LayerNorm("bert.embeddings.LayerNorm", c, bias: true, config.LayerNormEps));
        var options = new TransformerBlockOptions
        {
            Width = c, Heads = config.NumAttentionHeads, FeedForwardWidth = config.IntermediateSize,
            Norm = config.PreLayerNorm ? NormPlacement.PreLN : NormPlacement.PostLN, Activation = config.Activation, Causal = false,
            Dropout = config.HiddenDropoutProb, AttentionDropout = config.AttentionProbsDropoutProb, LayerNormEpsilon = config.LayerNormEps,
        };
        blocks = new TransformerBlock[config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = AddModule(new TransformerBlock($"bert.encoder.layer.{i}", options, DropoutRng));
        if (config.PreLayerNorm) FinalNorm = AddModule(new Nn.LayerNorm("bert.encoder.LayerNorm", c, bias: true, config.LayerNormEps));
        if (config.IsClassifier)
        {
            Pooler = AddModule(new Linear("bert.pooler.dense", c, c));
            Classifier = AddModule(new Linear("classifier", c, config.NumLabels));
        }
        else
        {
            MlmTransform = AddModule(new Linear("cls.predictions.transform.dense", c, c));
            MlmNorm = AddModule(new Nn.LayerNorm("cls.predictions.transform.LayerNorm", c, bias: true, config.LayerNormEps));
            MlmBias = AddParameter("cls.predictions.bias", config.VocabSize);
        }
        Initialize(seed);
    }

    public override BertConfig Config { get; }
    public Nn.Embedding WordEmbeddings { get; }
    public PositionalEncoding PositionEmbeddings { get; }
    public Nn.Embedding TokenTypeEmbeddings { get; }
    public Nn.LayerNorm EmbeddingsNorm { get; }
    public IReadOnlyList<TransformerBlock> Blocks => blocks;
    /// <summary>The last LayerNorm of a pre-LN encoder; null when post-LN.</summary>
    public Nn.LayerNorm? FinalNorm { get; }
    public Linear? MlmTransform { get; }
    public Nn.LayerNorm? MlmNorm { get; }
    public Parameter? MlmBias { get; }
    public Linear? Pooler { get; }
    public Linear? Classifier { get; }

    /// <summary>Hugging Face's _init_weights: matrices and embeddings N(0, initializer_range), biases 0, LayerNorm gains 1.</summary>
    void Initialize(int seed)
    {
        var rng = new InitRng(unchecked((ulong)seed));
        foreach (var p in Parameters)
        {
            var s = p.Value.Span;
            if (p.Shape.Length >= 2) rng.Normal(s, Config.InitializerRange);
            else if (p.Name.EndsWith(".weight", StringComparison.Ordinal)) s.Fill(1f); // a vector named weight is a LayerNorm gain
            else s.Clear();
        }
    }

    float HiddenDropout => IsTraining ? Config.HiddenDropoutProb : 0f;

    ulong DropoutSeed(float p) => p > 0 ? DropoutRng.NextSeed() : 0;

    /// <summary>
    /// Final hidden states [batch, time, C] of padded sequences ids [batch, time] with segment ids (empty: all 0)
    /// and lengths [batch]. Positions past a sequence's length are ignored as keys; their outputs are meaningless.
    /// </summary>
    public Tensor HiddenStates(ReadOnlySpan<int> ids, ReadOnlySpan<int> segments, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (Graph.Current is not null) return Encode(ids, segments, lengths, batch, time);
        using (Graph.NoGrad()) return Encode(ids, segments, lengths, batch, time).Copy();
    }

    /// <summary>Masked-LM logits [batch, time, vocab] at every position (a masked-LM model only).</summary>
    public Tensor MaskedLmLogits(ReadOnlySpan<int> ids, ReadOnlySpan<int> segments, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (Graph.Current is not null) return MlmHead(Encode(ids, segments, lengths, batch, time));
        using (Graph.NoGrad()) return MlmHead(Encode(ids, segments, lengths, batch, time)).Copy();
    }

    /// <summary>Masked-LM logits [masked positions, vocab] at the positions of a batch that have a target, in order.</summary>
    public Tensor MaskedLmLogits(MaskedLmBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using (Graph.NoGrad())
            return MlmHead(Ops.GatherRows(Encode(batch.Ids, batch.Segments, batch.Lengths, batch.Batch, batch.Time), batch.MaskedPositions())).Copy();
    }

    /// <summary>Class logits [batch, labels] (a classifier only).</summary>
    public Tensor ClassLogits(ReadOnlySpan<int> ids, ReadOnlySpan<int> segments, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (Graph.Current is not null) return ClassifierHead(Encode(ids, segments, lengths, batch, time));
        using (Graph.NoGrad()) return ClassifierHead(Encode(ids, segments, lengths, batch, time)).Copy();
    }

    Tensor Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> segments, ReadOnlySpan<int> lengths, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || ids.Length != (long)batch * time || lengths.Length != batch || (!segments.IsEmpty && segments.Length != ids.Length))
            throw new ArgumentException($"Bert: {ids.Length} ids, {segments.Length} segment ids and {lengths.Length} lengths do not fill [batch {batch}, time {time}].");
        if (time > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"Bert: sequence length {time} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}.");
        foreach (int n in lengths)
            if (n < 1 || n > time) throw new ArgumentException($"Bert: length {n} is outside 1..{time}.");
        if (segments.IsEmpty)
        {
            if (zeroSegments.Length < ids.Length) zeroSegments = new int[ids.Length];
            segments = zeroSegments.AsSpan(0, ids.Length);
        }

        var x = Ops.Embedding(ids, WordEmbeddings.Weight.Value, batch, time, PositionEmbeddings.Weight!.Value); // words + positions
        x = Ops.Add(x, Ops.Embedding(segments, TokenTypeEmbeddings.Weight.Value, batch, time));
        float p = HiddenDropout;
        x = Ops.Dropout(EmbeddingsNorm.Forward(x), p, DropoutSeed(p));
        foreach (var block in blocks) x = block.Forward(x, lengths);
        return FinalNorm is null ? x : FinalNorm.Forward(x);
    }

    /// <summary>h [..., C] → vocabulary logits: LayerNorm(act(dense(h)))·Eᵀ + b, E the word embeddings.</summary>
    Tensor MlmHead(Tensor hidden)
    {
        if (MlmTransform is null) throw new InvalidOperationException("This BERT is a classifier (num_labels > 0); it has no masked-LM head.");
        var h = MlmNorm!.Forward(FeedForward.Activate(MlmTransform.Forward(hidden), Config.Activation));
        return Ops.Linear(h, WordEmbeddings.Weight.Value, MlmBias!.Value);
    }

    /// <summary>hidden [B, T, C] → classifier(dropout(tanh(pooler(h[:, 0])))).</summary>
    Tensor ClassifierHead(Tensor hidden)
    {
        if (Pooler is null) throw new InvalidOperationException("This BERT is a masked-LM model (num_labels 0); it has no classifier.");
        var pooled = Ops.Tanh(Pooler.Forward(Ops.TakePosition(hidden, 0)));
        float p = HiddenDropout;
        return Classifier!.Forward(Ops.Dropout(pooled, p, DropoutSeed(p)));
    }

    protected override Tensor BatchLoss(Batch batch)
    {
        switch (batch)
        {
            case MaskedLmBatch b when !Config.IsClassifier:
            {
                // The vocabulary projection runs on the masked positions only; the mean is over those, as Hugging Face's.
                var hidden = Encode(b.Ids, b.Segments, b.Lengths, b.Batch, b.Time);
                int rows = HeadRows(b);
                return Ops.CrossEntropy(MlmHead(Ops.GatherRows(hidden, headRows.AsSpan(0, rows))), headTargets.AsSpan(0, rows));
            }
            case LabeledSequenceBatch when Config.IsClassifier:
                return BatchEvaluation(batch).Loss;
            default:
                throw WrongBatch(batch, Config.IsClassifier ? "labelled sequences (LabeledSequenceBatch)" : "masked-LM sequences (MaskedLmBatch)");
        }
    }

    /// <summary>A classifier's batches also count the examples it labels correctly, for the accuracy curve.</summary>
    protected override (Tensor Loss, int? Correct) BatchEvaluation(Batch batch)
    {
        if (batch is not LabeledSequenceBatch b || !Config.IsClassifier) return (BatchLoss(batch), null);
        var logits = ClassifierHead(Encode(b.Ids, b.Segments, b.Lengths, b.Batch, b.Time));
        return (Ops.CrossEntropy(logits, b.Labels), CountCorrect(logits, b.Labels));
    }

    /// <summary>
    /// A sequence classifier over <paramref name="labels"/> that starts from this model: every parameter the two share
    /// by name and shape (the embeddings, the encoder, and the pooler when this model has one) is copied, and the rest
    /// (the classifier, and the pooler of a masked-LM model) is initialised afresh from the seed, as Hugging Face's
    /// BertForSequenceClassification.from_pretrained does with a masked-LM checkpoint. Also returns the fresh names.
    /// </summary>
    public (Bert Model, IReadOnlyList<string> Fresh) ToClassifier(IReadOnlyList<string> labels, int seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var classifier = new Bert(Config.WithLabels(labels), seed);
        var fresh = new List<string>();
        foreach (var p in classifier.Parameters)
        {
            var source = FindParameter(p.Name);
            if (source is not null && source.Shape.AsSpan().SequenceEqual(p.Shape)) source.Value.Span.CopyTo(p.Value.Span);
            else fresh.Add(p.Name);
        }
        return (classifier, fresh);
    }

    /// <summary>Class probabilities [batch, labels] (softmax of <see cref="ClassLogits"/>) in evaluation mode.</summary>
    public float[] ClassProbabilities(ReadOnlySpan<int> ids, ReadOnlySpan<int> segments, ReadOnlySpan<int> lengths, int batch, int time)
    {
        Eval();
        using var logits = ClassLogits(ids, segments, lengths, batch, time);
        var probabilities = new float[logits.Span.Length];
        int labels = Config.NumLabels;
        for (int b = 0; b < batch; b++)
            Kernels.Softmax.Apply(logits.Span.Slice(b * labels, labels), probabilities.AsSpan(b * labels, labels));
        return probabilities;
    }

    /// <summary>
    /// The masked-LM head's rows of a batch, in <see cref="headRows"/> and <see cref="headTargets"/>: the masked positions
    /// and their targets, then rows without a target (row 0 again, target -1, so no loss and no gradient) up to a
    /// multiple of <see cref="HeadRowMultiple"/>. The number of masked positions changes from batch to batch, and every
    /// new count would make the head's [rows, vocab] buffers a size the tensor pool has not seen and keeps (about 20 MB
    /// a step for the Shakespeare preset); rounded up, a few sizes serve every batch.
    /// </summary>
    int HeadRows(MaskedLmBatch b)
    {
        var positions = b.MaskedPositions();
        int rows = RoundUpHeadRows(positions.Length);
        if (headRows.Length < rows) { headRows = new int[rows]; headTargets = new int[rows]; }
        positions.CopyTo(headRows);
        b.MaskedTargets().CopyTo(headTargets);
        headRows.AsSpan(positions.Length, rows - positions.Length).Clear();
        headTargets.AsSpan(positions.Length, rows - positions.Length).Fill(-1);
        return rows;
    }

    const int HeadRowMultiple = 64;

    static int RoundUpHeadRows(int rows) => (rows + HeadRowMultiple - 1) / HeadRowMultiple * HeadRowMultiple;

    /// <summary>
    /// What a step computes, per example: 6 FLOPs per block weight for every row of the padded batch; attention's
    /// 12·C·T·n per layer for a sequence of n tokens (its T query rows against its n keys, forward and backward); and the
    /// head only where it runs, the masked-LM transform and vocabulary projection at the masked rows (rounded up as
    /// <see cref="HeadRows"/> does), or the pooler and classifier on [CLS]. Look-ups, LayerNorms and activations are not
    /// counted.
    /// </summary>
    public override long FlopsPerExample(Batch batch)
    {
        var (examples, time, lengths, headRowCount) = batch switch
        {
            MaskedLmBatch b when !Config.IsClassifier => (b.Batch, b.Time, b.Lengths, RoundUpHeadRows(b.MaskedPositions().Length)),
            LabeledSequenceBatch b when Config.IsClassifier => (b.Batch, b.Time, b.Lengths, b.Batch),
            _ => throw WrongBatch(batch, Config.IsClassifier ? "labelled sequences (LabeledSequenceBatch)" : "masked-LM sequences (MaskedLmBatch)"),
        };
        long c = Config.HiddenSize, layers = Config.NumHiddenLayers;
        long encoder = 6 * layers * Config.BlockParameters * examples * time;
        long attention = 12 * layers * c * time * lengths.Sum(n => (long)n);
        long head = 6 * (c * c + c * (Config.IsClassifier ? Config.NumLabels : Config.VocabSize)) * headRowCount;
        return (encoder + attention + head) / examples;
    }
}
