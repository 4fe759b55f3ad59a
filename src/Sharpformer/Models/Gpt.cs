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
public sealed class Gpt : Model
{
    readonly TransformerBlock[] blocks;
    readonly PackedWeight.Epilogue mlpActivation; // a decode step's activation, applied as c_fc's output is stored

    public Gpt(GptConfig config, int seed = 1337) : base(seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        mlpActivation = (x, y) => Ops.ActivationForward(config.Activation, x, y);
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
        using (Graph.NoGrad())
        {
            var loss = NextTokenLoss(idx, targets, batch, time);
            return Tensor.FromArray(loss.Span, loss.Shape);
        }
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
        using (Graph.NoGrad())
        {
            var logits = Forward(idx, batch, time);
            return Tensor.FromArray(logits.Span, logits.Shape);
        }
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

    // ------------------------------------------------------------------ KV-cached decoding

    /// <summary>
    /// A key/value cache for <see cref="Decode"/>, holding up to BlockSize positions per stream. With
    /// <paramref name="weights"/> (from <see cref="PackForDecode"/>), decode steps of up to
    /// <see cref="Gemm.SkinnyRows"/> rows multiply by the packed block weights.
    /// </summary>
    public GptKvCache NewCache(int batch = 1, GptDecodeWeights? weights = null) => new(this, batch, weights);

    /// <summary>
    /// The block weights packed for decode steps (<see cref="PackedWeight"/>): a second copy of them, and a
    /// snapshot — pack again after the weights change. Share one between the caches of a sampling run, and
    /// dispose it (after them) to return its memory to the array pool.
    /// </summary>
    public GptDecodeWeights PackForDecode() => new(this);

    /// <summary>
    /// Appends tokens to the cache and returns the logits of the last new position: [V] for one stream, or
    /// [batch, V] flattened when the cache has several (tokens then holds batch·n ids, n per stream, stream
    /// by stream). Several tokens at once feed a prompt. Runs without a tape, in evaluation mode (no
    /// dropout), allocating no managed memory once the cache's scratch has grown to the largest prompt.
    /// The span stays valid until the next call with the same cache.
    /// </summary>
    public ReadOnlySpan<float> Decode(ReadOnlySpan<int> tokens, GptKvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache.Model != this) throw new ArgumentException("Gpt.Decode: this cache was made by another model.", nameof(cache));
        int batch = cache.Batch;
        if (tokens.IsEmpty || tokens.Length % batch != 0)
            throw new ArgumentException($"Gpt.Decode: {tokens.Length} tokens cannot be split over {batch} streams.", nameof(tokens));
        int n = tokens.Length / batch, past = cache.Length, total = past + n;
        if (total > Config.BlockSize)
            throw new ArgumentException($"Gpt.Decode: {n} new tokens after {past} cached exceed the block size {Config.BlockSize}; reset the cache and feed the last window.", nameof(tokens));
        for (int i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"Gpt.Decode: token {tokens[i]} at position {i} is outside the vocabulary of {Config.VocabSize}.", nameof(tokens));

        int c = Config.NEmbd, rows = batch * n, hidden = blocks[0].Options.HiddenWidth, vocab = Config.VocabSize;
        float eps = Config.LayerNormEpsilon;
        cache.EnsureScratch(rows);
        Span<float> x = cache.X[..(rows * c)], h = cache.H[..(rows * c)], tmp = cache.Tmp[..(rows * c)];
        Span<float> qkv = cache.Qkv[..(rows * 3 * c)], att = cache.Att[..(rows * c)];
        Span<float> fc = cache.Fc[..(rows * hidden)], act = cache.Act[..(rows * hidden)];
        Span<float> mean = cache.Stats[..rows], rstd = cache.Stats.Slice(rows, rows), lse = cache.Lse[..(Config.NHead * Math.Max(n, batch))];

        // x = wte[token] + wpe[position]
        ReadOnlySpan<float> wte = Wte.Weight.Value.Span, wpe = Wpe.Weight!.Value.Span;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < n; t++)
            {
                int r = b * n + t;
                TensorPrimitives.Add(wte.Slice(tokens[r] * c, c), wpe.Slice((past + t) * c, c), x.Slice(r * c, c));
            }

        // Several new positions (a prompt) attend causally, stream by stream. One new position per stream (a
        // decode step) sees every cached key: all streams go in one call, each over its own `total` keys.
        var shape = new AttentionShape(1, Config.NHead, n, total, Config.HeadDim, Causal: true);
        var step = new AttentionShape(batch, Config.NHead, 1, Config.BlockSize, Config.HeadDim, Causal: false);
        cache.KeyLengths.AsSpan().Fill(total);
        for (int l = 0; l < blocks.Length; l++)
        {
            var blk = blocks[l];
            Span<float> kv = cache.Kv(l);
            // x = x + attn(ln_1(x)), keys and values of the new positions appended to the cache
            LayerNormRows(blk.Ln1, x, h, mean, rstd, rows, c, eps);
            var packed = cache.Weights?.Layer(l);
            Linear(blk.Attn.QkvProj, packed?.Qkv, h, qkv, rows);
            for (int b = 0; b < batch; b++)
            {
                var stream = kv.Slice(b * Config.BlockSize * 2 * c, Config.BlockSize * 2 * c);
                for (int t = 0; t < n; t++)
                    qkv.Slice((b * n + t) * 3 * c + c, 2 * c).CopyTo(stream.Slice((past + t) * 2 * c, 2 * c));
                if (n > 1) Attention.Forward(shape, qkv[(b * n * 3 * c)..], 3 * c, stream, stream[c..], 2 * c, att.Slice(b * n * c, n * c), lse);
            }
            if (n == 1) Attention.Forward(step, qkv, 3 * c, kv, kv[c..], 2 * c, att, lse, cache.KeyLengths);
            Linear(blk.Attn.OutProj, packed?.Out, att, tmp, rows);
            TensorPrimitives.Add(x, tmp, x);
            // x = x + mlp(ln_2(x))
            LayerNormRows(blk.Ln2, x, h, mean, rstd, rows, c, eps);
            Linear(blk.Mlp.Fc, packed?.Fc, h, fc, rows, mlpActivation, act);
            Linear(blk.Mlp.Proj, packed?.Proj, act, tmp, rows);
            TensorPrimitives.Add(x, tmp, x);
        }

        // logits of each stream's last position: ln_f, then the tied head
        Span<float> last = h[..(batch * c)];
        for (int b = 0; b < batch; b++) x.Slice((b * n + n - 1) * c, c).CopyTo(last.Slice(b * c, c));
        LayerNormRows(LnF, last, tmp[..(batch * c)], mean, rstd, batch, c, eps);
        Span<float> logits = cache.Logits;
        Gemm.Multiply(tmp[..(batch * c)], wte, logits, batch, c, vocab, transB: true);
        cache.Length = total;
        return logits;
    }

    static ReadOnlySpan<float> BiasOf(Linear l) => l.Bias is null ? default : l.Bias.Value.Span;

    /// <summary>
    /// y = x·Wᵀ + b for a decode step, and z = then(y) if given: through the packed copy for rows the
    /// dot-product path would take (so the path still changes only where GEMM's does, which the sampler's
    /// rebuilds rely on), which applies then as each thread stores its share of y; else through GEMM.
    /// </summary>
    static void Linear(Linear layer, PackedWeight? packed, ReadOnlySpan<float> x, Span<float> y, int rows, PackedWeight.Epilogue? then = null, Span<float> z = default)
    {
        if (packed is not null && rows <= Gemm.SkinnyRows)
        {
            packed.Multiply(x, rows, y, then, z);
            return;
        }
        Gemm.Multiply(x, layer.Weight.Value.Span, y, rows, layer.InFeatures, layer.OutFeatures, transB: true, bias: BiasOf(layer));
        then?.Invoke(y, z);
    }

    static void LayerNormRows(Nn.LayerNorm ln, ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd, int rows, int c, float eps) =>
        Kernels.LayerNorm.Forward(x, ln.Weight.Value.Span, ln.Bias is null ? default : ln.Bias.Value.Span, y, mean[..rows], rstd[..rows], rows, c, eps);
}

/// <summary>
/// Keys and values of every cached position, per layer [batch, BlockSize, 2C] (k and v side by side),
/// plus the scratch a decode step needs. Made by <see cref="Gpt.NewCache"/>; dispose to return the memory.
/// </summary>
public sealed class GptKvCache : IDisposable
{
    readonly Tensor[] kv;
    Tensor? scratch;
    int scratchRows;
    readonly Tensor logits;

    internal GptKvCache(Gpt model, int batch, GptDecodeWeights? weights)
    {
        if (weights is not null && weights.Model != model) throw new ArgumentException("GptKvCache: the packed weights were made from another model.", nameof(weights));
        Weights = weights;
        if (batch <= 0) throw new ArgumentException($"GptKvCache: batch must be positive, got {batch}.", nameof(batch));
        Model = model;
        Batch = batch;
        var cfg = model.Config;
        kv = new Tensor[cfg.NLayer];
        for (int l = 0; l < kv.Length; l++) kv[l] = new Tensor(batch, cfg.BlockSize, 2 * cfg.NEmbd);
        logits = new Tensor(batch, cfg.VocabSize);
        KeyLengths = new int[batch];
    }

    public Gpt Model { get; }
    public int Batch { get; }

    /// <summary>The packed block weights its decode steps use, if any.</summary>
    public GptDecodeWeights? Weights { get; }

    /// <summary>Positions cached per stream.</summary>
    public int Length { get; internal set; }

    /// <summary>Positions the cache can hold per stream (the model's block size).</summary>
    public int Capacity => Model.Config.BlockSize;

    /// <summary>Forgets every cached position (the memory is kept for reuse).</summary>
    public void Reset() => Length = 0;

    /// <summary>
    /// Makes <paramref name="stream"/> hold the positions of a one-stream cache of the same model, and this
    /// cache as long as it (every stream shares one length: the other streams must be refilled to it too).
    /// </summary>
    public void CopyStream(GptKvCache source, int stream)
    {
        if (source.Model != Model || source.Batch != 1)
            throw new ArgumentException("GptKvCache.CopyStream: the source must be a one-stream cache of the same model.", nameof(source));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)stream, (uint)Batch, nameof(stream));
        int width = 2 * Model.Config.NEmbd, positions = Capacity * width;
        for (int l = 0; l < kv.Length; l++)
            source.kv[l].Span[..(source.Length * width)].CopyTo(kv[l].Span.Slice(stream * positions, source.Length * width));
        Length = source.Length;
    }

    internal Span<float> Kv(int layer) => kv[layer].Span;
    internal Span<float> Logits => logits.Span;

    /// <summary>Keys each stream's query sees in a decode step (every stream holds Length positions).</summary>
    internal int[] KeyLengths { get; }

    int c, hidden;
    internal Span<float> X => Slice(0, c);
    internal Span<float> H => Slice(1, c);
    internal Span<float> Tmp => Slice(2, c);
    internal Span<float> Att => Slice(3, c);
    internal Span<float> Qkv => Slice(4, 3 * c);
    internal Span<float> Fc => Slice(7, hidden);
    internal Span<float> Act => Slice(7, hidden, hidden);
    internal Span<float> Stats => Slice(7, 2, 2 * hidden);
    internal Span<float> Lse => scratch!.Span[(scratchRows * (7 * c + 2 * hidden + 2))..];

    Span<float> Slice(int unitsOfC, int perRow, int extraPerRow = 0) =>
        scratch!.Span.Slice(scratchRows * (unitsOfC * c + extraPerRow), scratchRows * perRow);

    /// <summary>Grows the scratch to hold <paramref name="rows"/> rows (only when a longer prompt arrives).</summary>
    internal void EnsureScratch(int rows)
    {
        if (rows <= scratchRows) return;
        var cfg = Model.Config;
        c = cfg.NEmbd;
        hidden = Model.Blocks[0].Options.HiddenWidth;
        scratch?.Dispose();
        scratchRows = Math.Max(rows, Batch);
        scratch = new Tensor(scratchRows * (7 * c + 2 * hidden + 2) + cfg.NHead * Math.Max(cfg.BlockSize, Batch));
    }

    public void Dispose()
    {
        foreach (var t in kv) t.Dispose();
        scratch?.Dispose();
        logits.Dispose();
    }
}

/// <summary>
/// Every block's four linear weights packed for decode steps (<see cref="Gpt.PackForDecode"/>): a snapshot of
/// them, shared by the caches of one sampling run. Dispose it after the run to return its memory to the pool.
/// </summary>
public sealed class GptDecodeWeights : IDisposable
{
    internal readonly record struct Block(PackedWeight Qkv, PackedWeight Out, PackedWeight Fc, PackedWeight Proj);

    /// <summary>Largest copy kept in the shared array pool between runs (reused, its pages are already mapped).</summary>
    const long PooledBytes = 64 << 20;

    readonly Block[] blocks;
    float[]? storage; // every packed weight, one array
    readonly bool pooled;

    internal GptDecodeWeights(Gpt model)
    {
        Model = model;
        long total = Bytes(model) / sizeof(float);
        if (total > Array.MaxLength) throw new InvalidOperationException($"GptDecodeWeights: {total} packed floats exceed one array; this model is too large to pack for decoding.");
        pooled = total * sizeof(float) <= PooledBytes;
        storage = pooled ? System.Buffers.ArrayPool<float>.Shared.Rent((int)total) : GC.AllocateUninitializedArray<float>((int)total);
        int offset = 0;
        blocks = model.Blocks.Select(b => new Block(Pack(b.Attn.QkvProj), Pack(b.Attn.OutProj), Pack(b.Mlp.Fc), Pack(b.Mlp.Proj))).ToArray();

        PackedWeight Pack(Linear layer)
        {
            var packed = new PackedWeight(layer.Weight.Value.Span, layer.Bias is null ? default : layer.Bias.Value.Span, layer.OutFeatures, layer.InFeatures, storage, offset);
            offset += Floats(layer);
            return packed;
        }
    }

    static int Floats(Linear layer) => PackedWeight.Floats(layer.OutFeatures, layer.InFeatures);

    /// <summary>Bytes the packed copy of a model's block weights takes.</summary>
    public static long Bytes(Gpt model) =>
        model.Blocks.Sum(b => (long)Floats(b.Attn.QkvProj) + Floats(b.Attn.OutProj) + Floats(b.Mlp.Fc) + Floats(b.Mlp.Proj)) * sizeof(float);

    public Gpt Model { get; }

    internal Block Layer(int l) => blocks[l];

    public void Dispose()
    {
        foreach (var (qkv, output, fc, proj) in blocks)
        {
            qkv.Dispose(); output.Dispose(); fc.Dispose(); proj.Dispose();
        }
        if (pooled && storage is not null) System.Buffers.ArrayPool<float>.Shared.Return(storage);
        storage = null;
    }
}
