using System.Text.Json.Serialization;
using Sharpformer.Autograd;
using Sharpformer.Data;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// What every model's config is: JSON with a <c>"kind"</c> discriminator, validated in one place, and the
/// model it builds. The kinds listed here are the registry: a checkpoint's config names its kind and
/// <see cref="Create"/> builds the matching model.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(GptConfig), "gpt")]
[JsonDerivedType(typeof(EncoderClassifierConfig), "encoder-classifier")]
[JsonDerivedType(typeof(Seq2SeqConfig), "seq2seq")]
[JsonDerivedType(typeof(BertConfig), "bert")]
[JsonDerivedType(typeof(VitConfig), "vit")]
public abstract record ModelConfig
{
    /// <summary>The JSON discriminator ("gpt", "encoder-classifier", "seq2seq", "bert", "vit").</summary>
    [JsonIgnore] public abstract string Kind { get; }

    /// <summary>Longest sequence the model takes (its position table), or 0 for inputs that are not sequences.</summary>
    [JsonIgnore] public abstract int ContextLength { get; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public abstract void Validate();

    /// <summary>The model this config describes, initialised from <paramref name="seed"/>.</summary>
    public abstract Model Create(int seed = 1337);

    /// <summary>Parameters (elements) the model will hold, computed without building it, so a loader can compare a config with a file before it allocates.</summary>
    public abstract long ParameterElements();
}

/// <summary>
/// The contract between a model and everything above it (trainer, checkpoints, bench, CLI): its config, its
/// parameters by name (<see cref="Module.Parameters"/>), the training loss on a batch, the FLOPs one example
/// costs, and the dropout generator's state for an exact resume.
/// </summary>
public abstract class Model : Module
{
    protected Model(int seed) : base("") =>
        DropoutRng = new DropoutRng(unchecked((ulong)seed * 0xD1B54A32D192ED03UL));

    public abstract ModelConfig Config { get; }

    /// <summary>Every dropout call of the model takes its next seed from here.</summary>
    protected DropoutRng DropoutRng { get; }

    /// <summary>The dropout generator's state: save it with a checkpoint and set it on resume to replay the same masks.</summary>
    public ulong DropoutState
    {
        get => DropoutRng.State;
        set => DropoutRng.State = value;
    }

    /// <summary>Recompute each block's activations in backward instead of keeping them; models without blocks ignore it.</summary>
    public virtual bool ActivationCheckpointing { get; set; }

    /// <summary>
    /// Names of rank ≥ 2 parameters that AdamW must not decay, as timm's <c>no_weight_decay()</c> (a ViT's [CLS]
    /// token and position embeddings); biases and gains (rank &lt; 2) are never decayed. Empty by default.
    /// </summary>
    public virtual IReadOnlySet<string> NoWeightDecay => NoNames;

    static readonly IReadOnlySet<string> NoNames = new HashSet<string>();

    /// <summary>Whether AdamW's weight decay applies to a parameter: rank ≥ 2 and not named in <see cref="NoWeightDecay"/>.</summary>
    public bool DecaysWeight(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return parameter.Decay && !NoWeightDecay.Contains(parameter.Name);
    }

    /// <summary>Parameters as the model family counts them (GPT leaves out position embeddings, as nanoGPT).</summary>
    public virtual long ParameterCount => CountAllParameters();

    /// <summary>
    /// Mean training loss on a batch: a scalar, differentiable inside <see cref="Graph.Record"/>. Called outside
    /// any scope it runs without a tape and returns a caller-owned tensor. A batch of a kind the model does not
    /// train on is an <see cref="ArgumentException"/>.
    /// </summary>
    public Tensor Loss(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (Graph.Current is not null) return BatchLoss(batch);
        using (Graph.NoGrad()) return BatchLoss(batch).Copy();
    }

    /// <summary>The loss on a batch inside the current scope.</summary>
    protected abstract Tensor BatchLoss(Batch batch);

    /// <summary>
    /// The mean loss on a batch and, for a classifier, how many of its examples the logits' argmax labels
    /// correctly (null for models that do not classify): what evaluation reports, from one forward pass without
    /// gradients, in the current mode.
    /// </summary>
    public (float Loss, int? Correct) Evaluate(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = Graph.NoGrad();
        var (loss, correct) = BatchEvaluation(batch);
        return (loss.Item, correct);
    }

    /// <summary>The loss inside the current scope and, for a classifier, the examples it labels correctly; by default the loss alone.</summary>
    protected virtual (Tensor Loss, int? Correct) BatchEvaluation(Batch batch) => (BatchLoss(batch), null);

    /// <summary>Rows of logits [n, classes] whose largest value (the first, on ties) is at their label.</summary>
    protected static int CountCorrect(Tensor logits, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        int classes = logits.Dim(logits.Rank - 1), correct = 0;
        var span = logits.Span;
        for (int i = 0; i < labels.Length; i++)
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(span.Slice(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }

    /// <summary>Training FLOPs (forward and backward) of one example of this batch's shape, for bench's GFLOP/s.</summary>
    public abstract long FlopsPerExample(Batch batch);

    /// <summary>The error for a batch of a kind this model cannot take.</summary>
    protected ArgumentException WrongBatch(Batch batch, string expected) =>
        new($"A {Config.Kind} model trains on {expected}, not on a {batch.GetType().Name}.", nameof(batch));
}
