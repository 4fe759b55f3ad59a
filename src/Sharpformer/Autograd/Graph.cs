using Sharpformer.Tensors;

namespace Sharpformer.Autograd;

/// <summary>
/// A scope that owns every tensor an op creates inside it and, when recording, the tape of those ops.
/// <code>
/// using (var g = Graph.Record()) { var loss = model.Loss(x, y, b, t); loss.Backward(); }   // training
/// using (Graph.NoGrad()) { var logits = model.Logits(x, b, t); ... }                      // inference
/// </code>
/// When the scope ends every tensor made in it (outputs, saved statistics, intermediate gradients) goes
/// back to the pool and further use of those tensors throws, so nothing leaks by forgetting to free it.
/// Parameter gradients (<see cref="Tensor.Grad"/> of leaves) persist. Scopes nest and belong to one thread;
/// dispose them in reverse order of creation. The tape's storage is reused by the next scope on the
/// thread, so a steady-state step allocates only the small per-op tensor objects.
/// </summary>
public sealed unsafe class Graph : IDisposable
{
    [ThreadStatic] static Graph? current;
    [ThreadStatic] static Storage? spare;

    /// <summary>Reusable lists: the heavy part of a scope, kept per thread between scopes.</summary>
    sealed class Storage
    {
        public readonly List<Tensor> Tensors = new(256);
        public Node[] Tape = new Node[256];
        public int TapeCount;
        public Storage? Next;
    }

    readonly Graph? parent;
    readonly bool recording;
    readonly Thread thread;
    Storage? storage;
    bool backwardDone;

    Graph(bool recording)
    {
        this.recording = recording;
        parent = current;
        thread = Thread.CurrentThread;
        storage = spare ?? new Storage();
        spare = storage.Next;
        storage.Next = null;
        current = this;
    }

    /// <summary>Starts a scope that records differentiable ops so a loss computed in it can call Backward().</summary>
    public static Graph Record() => new(recording: true);

    /// <summary>Starts an inference scope: ops record nothing and save nothing; outputs live until it ends.</summary>
    public static Graph NoGrad() => new(recording: false);

    /// <summary>The innermost open scope on this thread, or null.</summary>
    public static Graph? Current => current;

    /// <summary>True when ops run now append to a tape.</summary>
    public static bool IsRecordingNow => current is { recording: true };

    public bool IsRecording => recording && storage is not null;

    public bool IsDisposed => storage is null;

    /// <summary>Tensors created in this scope so far.</summary>
    public int TensorCount => Alive.Tensors.Count;

    /// <summary>Nodes on the tape so far.</summary>
    public int NodeCount => Alive.TapeCount;

    Storage Alive => storage ?? throw new ObjectDisposedException(nameof(Graph));

    /// <summary>A new tensor owned by the current scope, or caller-owned when no scope is open.</summary>
    internal static Tensor NewTensor(ReadOnlySpan<int> shape, bool clear = false) =>
        current is { } g ? g.NewOwnedTensor(shape, clear) : Tensor.Create(shape, null, clear);

    /// <summary>A new tensor owned by this scope, also while an inner scope is current (checkpointing).</summary>
    internal Tensor NewOwnedTensor(ReadOnlySpan<int> shape, bool clear = false)
    {
        var t = Tensor.Create(shape, this, clear);
        Alive.Tensors.Add(t);
        return t;
    }

    /// <summary>Whether an op with these inputs must record a node (recording scope and some input needs a gradient).</summary>
    internal static bool ShouldRecord(Tensor a, Tensor? b = null, Tensor? c = null) =>
        current is { recording: true } && (a.NeedsGrad || (b?.NeedsGrad ?? false) || (c?.NeedsGrad ?? false));

    /// <summary>Appends a node to the current scope's tape; marks its output as needing a gradient.</summary>
    internal static void Append(in Node node)
    {
        var g = current!;
        if (node.Out.Owner != g)
            throw new InvalidOperationException("Internal error: a recorded op's output must belong to the recording scope.");
        var s = g.storage!;
        if (g.backwardDone) throw new InvalidOperationException("This scope already ran Backward(); start a new Graph.Record() for the next step.");
        if (s.TapeCount == s.Tape.Length) Array.Resize(ref s.Tape, s.Tape.Length * 2);
        node.Out.NeedsGrad = true;
        node.Out.Producer = s.TapeCount;
        s.Tape[s.TapeCount++] = node;
    }

    internal void Backward(Tensor loss, float seed) => Backward(loss, new ReadOnlySpan<float>(in seed));

    /// <summary>Runs the tape back from <paramref name="output"/>, whose gradient is seeded with <paramref name="gradient"/>.</summary>
    internal void Backward(Tensor output, ReadOnlySpan<float> gradient)
    {
        var s = Alive;
        if (backwardDone) throw new InvalidOperationException("Backward() already ran in this scope; the tape is consumed.");
        if (Thread.CurrentThread != thread) throw new InvalidOperationException("Backward() must run on the thread that recorded the tape.");
        backwardDone = true;
        output.EnsureGrad();
        var g = output.GradSpan;
        for (int i = 0; i < g.Length; i++) g[i] += gradient[i];
        for (int i = output.Producer; i >= 0; i--)
        {
            ref var node = ref s.Tape[i];
            if (node.Out.GradData is not null)
            {
                Ops.Backward(ref node);
                // Every consumer of this output sits later on the tape and has already run, so its gradient is done.
                node.Out.ReleaseGrad();
            }
            node.ReleaseSaved();
        }
    }

    /// <summary>Ends the scope: releases every tensor and saved buffer made in it.</summary>
    public void Dispose()
    {
        var s = storage;
        if (s is null) return;
        if (current != this)
            throw new InvalidOperationException("Graph scopes must be disposed in reverse order of creation, on the thread that created them.");
        for (int i = 0; i < s.TapeCount; i++)
        {
            s.Tape[i].ReleaseSaved();
            s.Tape[i] = default;
        }
        s.TapeCount = 0;
        foreach (var t in s.Tensors) t.Release();
        s.Tensors.Clear();
        storage = null;
        current = parent;
        s.Next = spare;
        spare = s;
    }
}
