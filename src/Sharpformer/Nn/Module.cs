using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// A learnable tensor with its Hugging Face name, its permanent gradient, and whether AdamW's weight decay
/// applies to it (matrices and embeddings, i.e. rank >= 2, as nanoGPT's configure_optimizers).
/// </summary>
public sealed class Parameter
{
    public Parameter(string name, params int[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Shape = shape;
        Value = Tensor.Leaf(shape);
    }

    public string Name { get; }

    /// <summary>The weights (caller-owned, permanent). Write into <c>Value.Span</c> to load them.</summary>
    public Tensor Value { get; }

    /// <summary>The gradient, same shape; backward passes add into it, <see cref="Module.ZeroGrad"/> clears it.</summary>
    public Tensor Grad => Value.Grad!;

    public int[] Shape { get; }

    public int Length => Value.Length;

    /// <summary>Weight decay applies by rank (>= 2: weights and embeddings, not biases or LayerNorm gains); a model may exempt more (<c>Model.DecaysWeight</c>).</summary>
    public bool Decay => Shape.Length >= 2;

    public override string ToString() => $"{Name} {Value.ShapeText}";
}

/// <summary>
/// Base of every layer: an ordered list of parameters and child modules (registration order, stable),
/// training/evaluation mode, and gradient zeroing. Parameter names are the full dotted names passed in
/// by the parent (Hugging Face GPT-2 names for Gpt).
/// </summary>
public abstract class Module
{
    readonly List<object> members = [];
    List<Parameter>? flattened;

    /// <summary>Dotted prefix of this module's parameters ("transformer.h.0.attn.c_attn"); may be empty.</summary>
    public string Name { get; }

    protected Module(string name) => Name = name ?? "";

    /// <summary>Every parameter of this module and its children, in registration order.</summary>
    public IReadOnlyList<Parameter> Parameters => flattened ??= Flatten();

    /// <summary>True in training mode (dropout active). Modules start in training mode, as in PyTorch.</summary>
    public bool IsTraining { get; private set; } = true;

    public void Train(bool training = true)
    {
        IsTraining = training;
        foreach (var m in members)
            if (m is Module child) child.Train(training);
    }

    public void Eval() => Train(false);

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad.Span.Clear();
    }

    /// <summary>Total number of parameter elements.</summary>
    public long CountAllParameters()
    {
        long n = 0;
        foreach (var p in Parameters) n += p.Length;
        return n;
    }

    /// <summary>This module and every module below it of type T, in registration order.</summary>
    public IEnumerable<T> Descendants<T>() where T : Module
    {
        if (this is T self) yield return self;
        foreach (var m in members)
            if (m is Module child)
                foreach (var d in child.Descendants<T>()) yield return d;
    }

    /// <summary>The parameter with this full name, or null.</summary>
    public Parameter? FindParameter(string name)
    {
        foreach (var p in Parameters) if (p.Name == name) return p;
        return null;
    }

    /// <summary>"prefix.local", or "local" when the prefix is empty.</summary>
    protected static string Join(string prefix, string local) => prefix.Length == 0 ? local : prefix + "." + local;

    protected Parameter AddParameter(string localName, params int[] shape)
    {
        var p = new Parameter(Join(Name, localName), shape);
        members.Add(p);
        flattened = null;
        return p;
    }

    protected T AddModule<T>(T module) where T : Module
    {
        members.Add(module);
        flattened = null;
        return module;
    }

    List<Parameter> Flatten()
    {
        var list = new List<Parameter>();
        foreach (var m in members)
        {
            if (m is Parameter p) list.Add(p);
            else list.AddRange(((Module)m).Parameters);
        }
        return list;
    }
}

/// <summary>
/// The dropout generator's state, shared by every dropout in a model. Each dropout call takes the next
/// seed, so masks differ across layers and steps; <see cref="State"/> is all there is to save for an
/// exact resume (a <see cref="SplitMix64"/> stream).
/// </summary>
public sealed class DropoutRng(ulong seed = 0) : Autograd.IReplayableRandom
{
    ulong state = seed;

    public ulong State { get => state; set => state = value; }

    public ulong NextSeed() => SplitMix64.Next(ref state);
}
