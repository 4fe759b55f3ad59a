using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sharpformer.Kernels;
using Sharpformer.Tensors;
using K = Sharpformer.Kernels;

namespace Sharpformer.Autograd;

/// <summary>
/// Differentiable ops over <see cref="Tensor"/>, each a thin wrapper over a kernel. Outputs belong to the
/// current <see cref="Graph"/> scope (caller-owned when none is open). Inside <see cref="Graph.Record"/>, an
/// op whose inputs need gradients appends a node; its backward adds into the inputs' gradients.
/// Shapes are checked first: bad shapes throw <see cref="ArgumentException"/> naming them, before any work.
/// </summary>
public static unsafe partial class Ops
{
    // ---------------------------------------------------------------- linear

    /// <summary>y = x·Wᵀ + b: x [..., in], weight [out, in] (PyTorch layout), bias [out] or null → [..., out].</summary>
    /// <remarks>The fused op of FusedLinear.cs with nothing fused: one forward and one backward serve both.</remarks>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => Linear(x, weight, bias, LinearInput.AsIs);

    // ---------------------------------------------------------------- layer norm

    /// <summary>LayerNorm over the last dimension: x [..., C], gamma [C], beta [C] or null.</summary>
    public static Tensor LayerNorm(Tensor x, Tensor gamma, Tensor? beta = null, float eps = 1e-5f)
    {
        int cols = x.Cols, rows = x.Rows;
        if (x.Rank < 1 || gamma.Rank != 1 || gamma.Length != cols || (beta is not null && (beta.Rank != 1 || beta.Length != cols)))
            throw new ArgumentException($"LayerNorm: input {x.ShapeText}, weight {gamma.ShapeText}, bias {beta?.ShapeText ?? "none"}: weight and bias must be [{cols}].", nameof(gamma));
        var y = Graph.NewTensor(x.Shape);
        var stats = NativeBuffer.Rent((nuint)rows * 2 * sizeof(float));
        var mean = stats.Floats[..rows];
        var rstd = stats.Floats.Slice(rows, rows);
        K.LayerNorm.Forward(x.Span, gamma.Span, beta is null ? default : beta.Span, y.Span, mean, rstd, rows, cols, eps);
        if (Graph.ShouldRecord(x, gamma, beta))
            Graph.Append(new Node { Kind = OpKind.LayerNorm, Out = y, A = x, B = gamma, C = beta, S0 = stats, I0 = rows, I1 = cols });
        else stats.Return();
        return y;
    }

    static void LayerNormBackward(ref Node n)
    {
        Tensor x = n.A!, gamma = n.B!;
        int rows = n.I0, cols = n.I1;
        var mean = n.S0.Floats[..rows];
        var rstd = n.S0.Floats.Slice(rows, rows);
        var scratch = default(NativeBuffer);
        Span<float> dx = GradOrScratch(x, ref scratch, 0, x.Length);
        Span<float> dgamma = GradOrScratch(gamma, ref scratch, x.Length, cols);
        Span<float> dbeta = n.C is null ? default : GradOrScratch(n.C, ref scratch, x.Length + cols, cols);
        K.LayerNorm.Backward(n.Out.GradSpan, x.Span, gamma.Span, mean, rstd, dx, dgamma, dbeta, rows, cols);
        scratch.Return();
    }

    /// <summary>The input's gradient, or (for an input that needs none) a slice of a scratch buffer the kernel may add into.</summary>
    static Span<float> GradOrScratch(Tensor t, ref NativeBuffer scratch, int offset, int length)
    {
        if (t.NeedsGrad)
        {
            t.EnsureGrad();
            return t.GradSpan;
        }
        if (scratch.IsEmpty) scratch = NativeBuffer.Rent((nuint)(offset + length + 2 * t.Length + 64) * sizeof(float) * 2, clear: true);
        return scratch.Floats.Slice(offset, length);
    }

    // ---------------------------------------------------------------- activations

    /// <summary>GELU, tanh form (GPT-2).</summary>
    public static Tensor Gelu(Tensor x) => Unary(x, OpKind.GeluTanh);

    /// <summary>GELU, exact erf form (PyTorch nn.GELU(), nanoGPT).</summary>
    public static Tensor GeluErf(Tensor x) => Unary(x, OpKind.GeluErf);

    public static Tensor Relu(Tensor x) => Unary(x, OpKind.Relu);

    /// <summary>tanh (BERT's pooler).</summary>
    public static Tensor Tanh(Tensor x) => Unary(x, OpKind.Tanh);

    static Tensor Unary(Tensor x, OpKind kind)
    {
        var y = Graph.NewTensor(x.Shape);
        switch (kind)
        {
            case OpKind.GeluTanh: Activations.GeluForward(x.Span, y.Span); break;
            case OpKind.GeluErf: Activations.GeluErfForward(x.Span, y.Span); break;
            case OpKind.Tanh: Activations.TanhForward(x.Span, y.Span); break;
            default: Activations.ReluForward(x.Span, y.Span); break;
        }
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = kind, Out = y, A = x });
        return y;
    }

    static void UnaryBackward(ref Node n)
    {
        var x = n.A!;
        if (!x.NeedsGrad) return;
        x.EnsureGrad();
        switch (n.Kind)
        {
            case OpKind.GeluTanh: Activations.GeluBackward(x.Span, n.Out.GradSpan, x.GradSpan); break;
            case OpKind.GeluErf: Activations.GeluErfBackward(x.Span, n.Out.GradSpan, x.GradSpan); break;
            case OpKind.Tanh: Activations.TanhBackward(x.Span, n.Out.GradSpan, x.GradSpan); break;
            default: Activations.ReluBackward(x.Span, n.Out.GradSpan, x.GradSpan); break;
        }
    }

    // ---------------------------------------------------------------- add, scale

    /// <summary>
    /// a + b. b has a's shape, or a trailing part of it (broadcast over a's leading dimensions, as a bias or a
    /// [T, C] table added to [B, T, C]).
    /// </summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        if (!IsSuffix(b.Shape, a.Shape) || b.Length == 0 && a.Length != 0)
            throw new ArgumentException($"Add: shape {b.ShapeText} is neither {a.ShapeText} nor a trailing part of it.", nameof(b));
        var y = Graph.NewTensor(a.Shape);
        int inner = b.Length;
        var ys = y.Span;
        if (inner == a.Length) TensorPrimitives.Add(a.Span, b.Span, ys);
        else
        {
            ReadOnlySpan<float> xs = a.Span, bs = b.Span;
            for (int o = 0; o < a.Length; o += inner) TensorPrimitives.Add(xs.Slice(o, inner), bs, ys.Slice(o, inner));
        }
        if (Graph.ShouldRecord(a, b)) Graph.Append(new Node { Kind = OpKind.Add, Out = y, A = a, B = b });
        return y;
    }

    static bool IsSuffix(ReadOnlySpan<int> s, ReadOnlySpan<int> of) => s.Length <= of.Length && s.SequenceEqual(of[^s.Length..]);

    static void AddBackward(ref Node n)
    {
        var dy = n.Out.GradSpan;
        Tensor a = n.A!, b = n.B!;
        if (a.NeedsGrad)
        {
            a.EnsureGrad();
            TensorPrimitives.Add(a.GradSpan, dy, a.GradSpan);
        }
        if (b.NeedsGrad)
        {
            b.EnsureGrad();
            var db = b.GradSpan;
            int inner = b.Length;
            for (int o = 0; o < dy.Length; o += inner) TensorPrimitives.Add(db, dy.Slice(o, inner), db);
        }
    }

    /// <summary>
    /// x [B, T, C] + table[t] for t in [0, T): adds the first T rows of a position table [maxT, C] to every
    /// sequence (learned positions as nanoGPT's wte(idx) + wpe(pos), or a fixed sinusoidal table).
    /// </summary>
    public static Tensor AddPositions(Tensor x, Tensor table)
    {
        if (x.Rank != 3 || table.Rank != 2 || table.Dim(1) != x.Dim(2) || table.Dim(0) < x.Dim(1))
            throw new ArgumentException($"AddPositions: input {x.ShapeText} needs a table [>= {(x.Rank == 3 ? x.Dim(1) : 0)}, C] with C its last dimension; got {table.ShapeText}.", nameof(table));
        int batch = x.Dim(0), rowsPerSeq = x.Dim(1) * x.Dim(2);
        var y = Graph.NewTensor(x.Shape);
        AddToEverySequence(x.Span, table.Span[..rowsPerSeq], y.Span);
        if (Graph.ShouldRecord(x, table)) Graph.Append(new Node { Kind = OpKind.AddPositions, Out = y, A = x, B = table, I0 = batch, I1 = rowsPerSeq });
        return y;
    }

    /// <summary>y[b] = x[b] + table for every sequence b (x and y hold whole sequences of table's length; y may be x).</summary>
    static void AddToEverySequence(ReadOnlySpan<float> x, ReadOnlySpan<float> table, Span<float> y)
    {
        for (int start = 0; start < x.Length; start += table.Length)
            TensorPrimitives.Add(x.Slice(start, table.Length), table, y.Slice(start, table.Length));
    }

    /// <summary>sum += dy[b] over every sequence b: the gradient of a table added to every sequence.</summary>
    static void SumOverSequences(ReadOnlySpan<float> dy, Span<float> sum)
    {
        for (int start = 0; start < dy.Length; start += sum.Length)
            TensorPrimitives.Add(sum, dy.Slice(start, sum.Length), sum);
    }

    static void AddPositionsBackward(ref Node n)
    {
        var dy = n.Out.GradSpan;
        Tensor x = n.A!, table = n.B!;
        if (x.NeedsGrad)
        {
            x.EnsureGrad();
            TensorPrimitives.Add(x.GradSpan, dy, x.GradSpan);
        }
        if (table.NeedsGrad)
        {
            table.EnsureGrad();
            SumOverSequences(dy, table.GradSpan[..n.I1]);
        }
    }

    /// <summary>x * s.</summary>
    public static Tensor Scale(Tensor x, float s)
    {
        var y = Graph.NewTensor(x.Shape);
        TensorPrimitives.Multiply(x.Span, s, y.Span);
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = OpKind.Scale, Out = y, A = x, F0 = s });
        return y;
    }

    static void ScaleBackward(ref Node n)
    {
        var x = n.A!;
        if (!x.NeedsGrad) return;
        x.EnsureGrad();
        TensorPrimitives.MultiplyAdd(n.Out.GradSpan, n.F0, x.GradSpan, x.GradSpan);
    }

    // ---------------------------------------------------------------- dropout

    /// <summary>
    /// Inverted dropout with probability <paramref name="p"/>; the mask is a function of (seed, element index)
    /// only. p = 0 returns x itself (no copy, no node).
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, ulong seed)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentException($"Dropout: probability {p} is outside [0, 1).", nameof(p));
        if (p == 0) return x;
        var y = Graph.NewTensor(x.Shape);
        var mask = NativeBuffer.Rent((nuint)x.Length);
        K.Dropout.Forward(x.Span, y.Span, mask.ByteSpan[..x.Length], p, seed);
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = OpKind.Dropout, Out = y, A = x, S0 = mask, F0 = p });
        else mask.Return();
        return y;
    }

    static void DropoutBackward(ref Node n)
    {
        var x = n.A!;
        if (!x.NeedsGrad) return;
        x.EnsureGrad();
        K.Dropout.Backward(n.Out.GradSpan, n.S0.ByteSpan[..x.Length], x.GradSpan, n.F0);
    }

    // ---------------------------------------------------------------- embedding

    /// <summary>Rows of <paramref name="table"/> [V, C] for ids laid out [batch, time] → [batch, time, C].</summary>
    public static Tensor Embedding(ReadOnlySpan<int> ids, Tensor table, int batch, int time) => Embedding(ids, table, batch, time, null);

    /// <summary>
    /// dropout(table[ids] + positions[t]) for ids laid out [batch, time] → [batch, time, C], in one op (a GPT's
    /// input): only the ids are kept; backward makes the dropout mask again from the seed.
    /// </summary>
    public static Tensor Embedding(ReadOnlySpan<int> ids, Tensor table, int batch, int time, Tensor? positions, float dropout = 0f, ulong seed = 0)
    {
        if (table.Rank != 2) throw new ArgumentException($"Embedding: table {table.ShapeText} must be [vocab, dim].", nameof(table));
        if (batch <= 0 || time <= 0 || ids.Length != (long)batch * time)
            throw new ArgumentException($"Embedding: {ids.Length} ids do not fill [batch {batch}, time {time}].", nameof(ids));
        int rows = table.Dim(0), dim = table.Dim(1);
        if (positions is not null && (positions.Rank != 2 || positions.Dim(1) != dim || positions.Dim(0) < time))
            throw new ArgumentException($"Embedding: positions {positions.ShapeText} must be [>= {time}, {dim}].", nameof(positions));
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"Embedding: dropout {dropout} is outside [0, 1).", nameof(dropout));
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new ArgumentException($"Embedding: id {ids[i]} at position {i} is outside the table {table.ShapeText}.", nameof(ids));
        var y = Graph.NewTensor([batch, time, dim]);
        K.Embedding.Forward(ids, table.Span, y.Span, dim);
        if (positions is not null) AddToEverySequence(y.Span, positions.Span[..(time * dim)], y.Span);
        if (dropout > 0) DropoutInPlace(y.Span, dropout, seed);
        if (Graph.ShouldRecord(table, positions))
        {
            var saved = NativeBuffer.Rent((nuint)ids.Length * sizeof(int));
            ids.CopyTo(saved.Ints);
            Graph.Append(new Node { Kind = OpKind.Embedding, Out = y, A = table, B = positions, S0 = saved, I0 = ids.Length, I1 = dim, I2 = batch, F0 = dropout, Seed = seed });
        }
        return y;
    }

    /// <summary>x = dropout(x) with the mask of (seed, index); applied to a gradient, this is dropout's backward.</summary>
    static void DropoutInPlace(Span<float> x, float p, ulong seed)
    {
        var mask = NativeBuffer.Rent((nuint)x.Length);
        K.Dropout.Forward(x, x, mask.ByteSpan[..x.Length], p, seed);
        mask.Return();
    }

    static void EmbeddingBackward(ref Node n)
    {
        var dy = n.Out.GradSpan;
        if (n.F0 > 0) DropoutInPlace(dy, n.F0, n.Seed); // dy is not needed after this op
        var table = n.A!;
        if (table.NeedsGrad)
        {
            table.EnsureGrad();
            K.Embedding.Backward(n.S0.Ints[..n.I0], dy, table.GradSpan, n.I1);
        }
        if (n.B is { NeedsGrad: true } positions)
        {
            positions.EnsureGrad();
            SumOverSequences(dy, positions.GradSpan[..(dy.Length / n.I2)]);
        }
    }

    // ---------------------------------------------------------------- attention

    /// <summary>
    /// Multi-head self-attention from the packed projection qkv [B, T, 3C] (q, k, v side by side, heads
    /// contiguous inside each) → [B, T, C]. Optional key lengths [B] mask padded keys. Fused: saves only the
    /// output and the log-sum-exp per row, never a [T, T] matrix.
    /// </summary>
    public static Tensor SelfAttention(Tensor qkv, int heads, bool causal, ReadOnlySpan<int> keyLengths = default, float dropout = 0f, ulong seed = 0)
    {
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"SelfAttention: dropout {dropout} is outside [0, 1).", nameof(dropout));
        if (qkv.Rank != 3 || heads <= 0 || qkv.Dim(2) % (3 * heads) != 0)
            throw new ArgumentException($"SelfAttention: qkv {qkv.ShapeText} must be [B, T, 3C] with C divisible by {heads} heads.", nameof(qkv));
        int batch = qkv.Dim(0), time = qkv.Dim(1), c = qkv.Dim(2) / 3;
        CheckKeyLengths(keyLengths, batch, time, "SelfAttention");
        var shape = new AttentionShape(batch, heads, time, time, c / heads, causal);
        var y = Graph.NewTensor([batch, time, c]);
        var lse = NativeBuffer.Rent((nuint)(batch * heads * time) * sizeof(float));
        var qs = qkv.Span;
        Attention.Forward(shape, qs, 3 * c, qs[c..], qs[(2 * c)..], 3 * c, y.Span, lse.Floats, keyLengths, dropout, seed);
        if (Graph.ShouldRecord(qkv))
            Graph.Append(new Node { Kind = OpKind.SelfAttention, Out = y, A = qkv, S0 = lse, S1 = SaveInts(keyLengths), I0 = heads, Flag = causal, F0 = dropout, Seed = seed });
        else lse.Return();
        return y;
    }

    static void SelfAttentionBackward(ref Node n)
    {
        var qkv = n.A!;
        if (!qkv.NeedsGrad) return;
        int batch = qkv.Dim(0), time = qkv.Dim(1), c = qkv.Dim(2) / 3, heads = n.I0;
        var shape = new AttentionShape(batch, heads, time, time, c / heads, n.Flag);
        qkv.EnsureGrad();
        var qs = qkv.Span;
        var dq = qkv.GradSpan;
        Attention.Backward(shape, qs, 3 * c, qs[c..], qs[(2 * c)..], 3 * c, n.Out.Span, n.S0.Floats, n.Out.GradSpan,
            dq, dq[c..], dq[(2 * c)..], n.S1.IsEmpty ? default : n.S1.Ints[..batch], n.F0, n.Seed);
    }

    /// <summary>
    /// Multi-head cross-attention: queries q [B, Tq, C] attend to keys and values packed kv [B, Tk, 2C]
    /// (an encoder's memory projected once). Optional key lengths [B] mask padded memory positions.
    /// </summary>
    public static Tensor CrossAttention(Tensor q, Tensor kv, int heads, ReadOnlySpan<int> keyLengths = default, float dropout = 0f, ulong seed = 0)
    {
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentException($"CrossAttention: dropout {dropout} is outside [0, 1).", nameof(dropout));
        if (q.Rank != 3 || kv.Rank != 3 || heads <= 0 || q.Dim(2) % heads != 0 || kv.Dim(2) != 2 * q.Dim(2) || kv.Dim(0) != q.Dim(0))
            throw new ArgumentException($"CrossAttention: q {q.ShapeText} and kv {kv.ShapeText} must be [B, Tq, C] and [B, Tk, 2C] with C divisible by {heads} heads.", nameof(kv));
        int batch = q.Dim(0), tq = q.Dim(1), tk = kv.Dim(1), c = q.Dim(2);
        CheckKeyLengths(keyLengths, batch, tk, "CrossAttention");
        var shape = new AttentionShape(batch, heads, tq, tk, c / heads, false);
        var y = Graph.NewTensor([batch, tq, c]);
        var lse = NativeBuffer.Rent((nuint)(batch * heads * tq) * sizeof(float));
        var kvs = kv.Span;
        Attention.Forward(shape, q.Span, c, kvs, kvs[c..], 2 * c, y.Span, lse.Floats, keyLengths, dropout, seed);
        if (Graph.ShouldRecord(q, kv))
            Graph.Append(new Node { Kind = OpKind.CrossAttention, Out = y, A = q, B = kv, S0 = lse, S1 = SaveInts(keyLengths), I0 = heads, F0 = dropout, Seed = seed });
        else lse.Return();
        return y;
    }

    static void CrossAttentionBackward(ref Node n)
    {
        Tensor q = n.A!, kv = n.B!;
        int batch = q.Dim(0), tq = q.Dim(1), tk = kv.Dim(1), c = q.Dim(2), heads = n.I0;
        var shape = new AttentionShape(batch, heads, tq, tk, c / heads, false);
        var scratch = default(NativeBuffer);
        var dq = GradOrScratch(q, ref scratch, 0, q.Length);
        var dkv = GradOrScratch(kv, ref scratch, q.Length, kv.Length);
        var kvs = kv.Span;
        Attention.Backward(shape, q.Span, c, kvs, kvs[c..], 2 * c, n.Out.Span, n.S0.Floats, n.Out.GradSpan,
            dq, dkv, dkv[c..], n.S1.IsEmpty ? default : n.S1.Ints[..batch], n.F0, n.Seed);
        scratch.Return();
    }

    static void CheckKeyLengths(ReadOnlySpan<int> keyLengths, int batch, int keys, string op)
    {
        if (keyLengths.IsEmpty) return;
        if (keyLengths.Length != batch)
            throw new ArgumentException($"{op}: {keyLengths.Length} key lengths for a batch of {batch}.", nameof(keyLengths));
        for (int b = 0; b < batch; b++)
            if ((uint)keyLengths[b] > (uint)keys)
                throw new ArgumentException($"{op}: key length {keyLengths[b]} of row {b} is outside [0, {keys}].", nameof(keyLengths));
    }

    static NativeBuffer SaveInts(ReadOnlySpan<int> values)
    {
        if (values.IsEmpty) return default;
        var saved = NativeBuffer.Rent((nuint)values.Length * sizeof(int));
        values.CopyTo(saved.Ints);
        return saved;
    }

    // ---------------------------------------------------------------- cross-entropy

    /// <summary>
    /// Mean cross-entropy of logits [..., V] against one target per row (ignore index -1) → a scalar.
    /// Rows whose target is -1 count neither in the sum nor in the mean. <paramref name="smoothing"/> ε spreads ε of
    /// each target's mass evenly over the vocabulary (label smoothing, as PyTorch's label_smoothing).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, float smoothing = 0f)
    {
        int rows = logits.Rows, vocab = logits.Cols;
        if (logits.Rank < 1 || targets.Length != rows)
            throw new ArgumentException($"CrossEntropy: {targets.Length} targets for logits {logits.ShapeText} ({rows} rows).", nameof(targets));
        for (int r = 0; r < rows; r++)
            if (targets[r] != K.CrossEntropy.IgnoreIndex && (uint)targets[r] >= (uint)vocab)
                throw new ArgumentException($"CrossEntropy: target {targets[r]} at row {r} is outside the vocabulary of {vocab} (logits {logits.ShapeText}).", nameof(targets));
        var loss = Graph.NewTensor([]);
        var lse = NativeBuffer.Rent((nuint)rows * sizeof(float));
        loss.Span[0] = K.CrossEntropy.Forward(logits.Span, targets, lse.Floats[..rows], rows, vocab, out int count, smoothing);
        if (Graph.ShouldRecord(logits))
            Graph.Append(new Node { Kind = OpKind.CrossEntropy, Out = loss, A = logits, S0 = lse, S1 = SaveInts(targets), I0 = rows, I1 = vocab, I2 = count, F0 = smoothing });
        else lse.Return();
        return loss;
    }

    static void CrossEntropyBackward(ref Node n)
    {
        var logits = n.A!;
        int rows = n.I0, vocab = n.I1;
        float dLoss = n.Out.GradSpan[0];
        var targets = n.S1.Ints[..rows];
        if (logits.GradData is null)
        {
            logits.EnsureGrad(clear: false); // the kernel overwrites
            K.CrossEntropy.Backward(logits.Span, targets, n.S0.Floats[..rows], logits.GradSpan, rows, vocab, n.I2, dLoss, n.F0);
        }
        else
        {
            var tmp = NativeBuffer.Rent((nuint)logits.Length * sizeof(float));
            var t = tmp.Floats[..logits.Length];
            K.CrossEntropy.Backward(logits.Span, targets, n.S0.Floats[..rows], t, rows, vocab, n.I2, dLoss, n.F0);
            TensorPrimitives.Add(logits.GradSpan, t, logits.GradSpan);
            tmp.Return();
        }
    }

    // ---------------------------------------------------------------- reshaping (copies: there are no views)

    /// <summary>The same elements under another shape of equal size (a copy).</summary>
    public static Tensor Reshape(Tensor x, params ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n != x.Length || shape.Length > Tensor.MaxRank)
            throw new ArgumentException($"Reshape: {x.ShapeText} cannot become {Tensor.Format(shape)}.", nameof(shape));
        var y = Graph.NewTensor(shape);
        x.Span.CopyTo(y.Span);
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = OpKind.Reshape, Out = y, A = x });
        return y;
    }

    static void ReshapeBackward(ref Node n)
    {
        var x = n.A!;
        x.EnsureGrad();
        TensorPrimitives.Add(x.GradSpan, n.Out.GradSpan, x.GradSpan);
    }

    /// <summary>Puts <paramref name="row"/> [C] in front of every sequence of x [B, T, C] → [B, T+1, C] (a ViT/BERT class token).</summary>
    public static Tensor PrependRow(Tensor x, Tensor row)
    {
        if (x.Rank != 3 || row.Length != x.Dim(2))
            throw new ArgumentException($"PrependRow: row {row.ShapeText} must hold C = last dimension of input {x.ShapeText} [B, T, C].", nameof(row));
        int batch = x.Dim(0), time = x.Dim(1), c = x.Dim(2);
        var y = Graph.NewTensor([batch, time + 1, c]);
        ReadOnlySpan<float> xs = x.Span, r = row.Span;
        var ys = y.Span;
        for (int b = 0; b < batch; b++)
        {
            r.CopyTo(ys.Slice(b * (time + 1) * c, c));
            xs.Slice(b * time * c, time * c).CopyTo(ys.Slice((b * (time + 1) + 1) * c, time * c));
        }
        if (Graph.ShouldRecord(x, row)) Graph.Append(new Node { Kind = OpKind.PrependRow, Out = y, A = x, B = row });
        return y;
    }

    static void PrependRowBackward(ref Node n)
    {
        Tensor x = n.A!, row = n.B!;
        int batch = x.Dim(0), time = x.Dim(1), c = x.Dim(2);
        var dy = n.Out.GradSpan;
        if (x.NeedsGrad)
        {
            x.EnsureGrad();
            var dx = x.GradSpan;
            for (int b = 0; b < batch; b++)
            {
                var d = dx.Slice(b * time * c, time * c);
                TensorPrimitives.Add(d, dy.Slice((b * (time + 1) + 1) * c, time * c), d);
            }
        }
        if (row.NeedsGrad)
        {
            row.EnsureGrad();
            var dr = row.GradSpan;
            for (int b = 0; b < batch; b++) TensorPrimitives.Add(dr, dy.Slice(b * (time + 1) * c, c), dr);
        }
    }

    /// <summary>Position <paramref name="t"/> of every sequence of x [B, T, C] → [B, C] (class-token readout).</summary>
    public static Tensor TakePosition(Tensor x, int t)
    {
        if (x.Rank != 3 || (uint)t >= (uint)x.Dim(1))
            throw new ArgumentException($"TakePosition: position {t} is outside input {x.ShapeText} [B, T, C].", nameof(t));
        int batch = x.Dim(0), time = x.Dim(1), c = x.Dim(2);
        var y = Graph.NewTensor([batch, c]);
        for (int b = 0; b < batch; b++) x.Span.Slice((b * time + t) * c, c).CopyTo(y.Span.Slice(b * c, c));
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = OpKind.TakePosition, Out = y, A = x, I0 = t });
        return y;
    }

    static void TakePositionBackward(ref Node n)
    {
        var x = n.A!;
        int batch = x.Dim(0), time = x.Dim(1), c = x.Dim(2);
        x.EnsureGrad();
        var dx = x.GradSpan;
        var dy = n.Out.GradSpan;
        for (int b = 0; b < batch; b++)
        {
            var d = dx.Slice((b * time + n.I0) * c, c);
            TensorPrimitives.Add(d, dy.Slice(b * c, c), d);
        }
    }

    /// <summary>
    /// Rows <paramref name="rows"/> of x viewed as [rows, C] → [n, C]: the masked positions of a masked-LM batch,
    /// so the vocabulary projection runs on those alone.
    /// </summary>
    public static Tensor GatherRows(Tensor x, ReadOnlySpan<int> rows)
    {
        int c = x.Cols, count = x.Rows;
        if (x.Rank < 2 || rows.IsEmpty) throw new ArgumentException($"GatherRows: need an input of rank >= 2 and at least one row, got {x.ShapeText} and {rows.Length} rows.", nameof(rows));
        foreach (int r in rows)
            if ((uint)r >= (uint)count) throw new ArgumentException($"GatherRows: row {r} is outside input {x.ShapeText} ({count} rows).", nameof(rows));
        var y = Graph.NewTensor([rows.Length, c]);
        for (int i = 0; i < rows.Length; i++) x.Span.Slice(rows[i] * c, c).CopyTo(y.Span.Slice(i * c, c));
        if (Graph.ShouldRecord(x)) Graph.Append(new Node { Kind = OpKind.GatherRows, Out = y, A = x, S0 = SaveInts(rows), I0 = rows.Length, I1 = c });
        return y;
    }

    static void GatherRowsBackward(ref Node n)
    {
        var x = n.A!;
        int c = n.I1;
        x.EnsureGrad();
        var dx = x.GradSpan;
        var dy = n.Out.GradSpan;
        var rows = n.S0.Ints[..n.I0];
        for (int i = 0; i < rows.Length; i++)
        {
            var d = dx.Slice(rows[i] * c, c);
            TensorPrimitives.Add(d, dy.Slice(i * c, c), d);
        }
    }

    // ---------------------------------------------------------------- dot

    /// <summary>Σ a·b over all elements (same shapes) → a scalar, summed in double.</summary>
    public static Tensor Dot(Tensor a, Tensor b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ArgumentException($"Dot: shapes {a.ShapeText} and {b.ShapeText} differ.", nameof(b));
        var y = Graph.NewTensor([]);
        ReadOnlySpan<float> x = a.Span, w = b.Span;
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += (double)x[i] * w[i];
        y.Span[0] = (float)sum;
        if (Graph.ShouldRecord(a, b)) Graph.Append(new Node { Kind = OpKind.Dot, Out = y, A = a, B = b });
        return y;
    }

    static void DotBackward(ref Node n)
    {
        float g = n.Out.GradSpan[0];
        Tensor a = n.A!, b = n.B!;
        if (a.NeedsGrad)
        {
            a.EnsureGrad();
            TensorPrimitives.MultiplyAdd(b.Span, g, a.GradSpan, a.GradSpan);
        }
        if (b.NeedsGrad)
        {
            b.EnsureGrad();
            TensorPrimitives.MultiplyAdd(a.Span, g, b.GradSpan, b.GradSpan);
        }
    }

    // ---------------------------------------------------------------- dispatch

    // ---------------------------------------------------------------- activation checkpointing

    /// <summary>
    /// y = segment(x), keeping only x: inside a recording scope the segment runs without a tape (its
    /// intermediates are freed at once) and runs again, recorded, when backward reaches y. Gradients are the
    /// same; memory falls to one segment's activations at a time, for one more forward pass of compute.
    /// </summary>
    public static Tensor Checkpoint(Tensor x, RecomputedSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!Graph.IsRecordingNow) return segment.Forward(x);
        ulong randomState = segment.Random?.State ?? 0;
        var scope = Graph.Current!;
        Tensor output;
        using (Graph.NoGrad())
        {
            var inner = segment.Forward(x);
            output = scope.NewOwnedTensor(inner.Shape);
            inner.Span.CopyTo(output.Span);
        }
        Graph.Append(new Node { Kind = OpKind.Checkpoint, Out = output, A = x, Function = segment, Seed = randomState });
        return output;
    }

    static void CheckpointBackward(ref Node n)
    {
        var segment = (RecomputedSegment)n.Function!;
        Tensor x = n.A!;
        ulong resume = segment.Random?.State ?? 0;
        if (segment.Random is { } random) random.State = n.Seed; // replay the same dropout masks
        using (var g = Graph.Record())
        {
            var input = Graph.NewTensor(x.Shape);
            x.Span.CopyTo(input.Span);
            input.NeedsGrad = true;
            var y = segment.Forward(input);
            if (y.Producer >= 0 && y.Owner == g) g.Backward(y, n.Out.GradSpan);
            if (x.NeedsGrad && input.GradData is not null)
            {
                x.EnsureGrad();
                TensorPrimitives.Add(x.GradSpan, input.GradSpan, x.GradSpan);
            }
        }
        if (segment.Random is { } r) r.State = resume;
    }

    internal static void Backward(ref Node n)
    {
        switch (n.Kind)
        {
            case OpKind.LayerNorm: LayerNormBackward(ref n); break;
            case OpKind.GeluTanh or OpKind.GeluErf or OpKind.Relu or OpKind.Tanh: UnaryBackward(ref n); break;
            case OpKind.Add: AddBackward(ref n); break;
            case OpKind.AddPositions: AddPositionsBackward(ref n); break;
            case OpKind.Scale: ScaleBackward(ref n); break;
            case OpKind.Dropout: DropoutBackward(ref n); break;
            case OpKind.Embedding: EmbeddingBackward(ref n); break;
            case OpKind.SelfAttention: SelfAttentionBackward(ref n); break;
            case OpKind.CrossAttention: CrossAttentionBackward(ref n); break;
            case OpKind.CrossEntropy: CrossEntropyBackward(ref n); break;
            case OpKind.Dot: DotBackward(ref n); break;
            case OpKind.Reshape: ReshapeBackward(ref n); break;
            case OpKind.PrependRow: PrependRowBackward(ref n); break;
            case OpKind.TakePosition: TakePositionBackward(ref n); break;
            case OpKind.GatherRows: GatherRowsBackward(ref n); break;
            case OpKind.Checkpoint: CheckpointBackward(ref n); break;
            case OpKind.FusedLinear: FusedLinearBackward(ref n); break;
            case OpKind.PatchEmbedding: PatchEmbeddingBackward(ref n); break;
            default: throw new InvalidOperationException($"No backward for {n.Kind}.");
        }
    }
}
