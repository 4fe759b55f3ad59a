using Sharpformer.Models;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Maps <see cref="Bert"/>'s parameter names to Hugging Face's BertForMaskedLM / BertForSequenceClassification
/// names. Outside the blocks they are the same; inside, the block's GPT-2 names become BERT's:
/// ln_1 → attention.output.LayerNorm, attn.c_attn (q, k, v stacked by rows) → attention.self.query/key/value,
/// attn.c_proj → attention.output.dense, ln_2 → output.LayerNorm, mlp.c_fc → intermediate.dense,
/// mlp.c_proj → output.dense. Both sides use nn.Linear's [out, in] layout, so nothing is transposed.
/// </summary>
public static class HuggingFaceBert
{
    static readonly (string Ours, string Theirs)[] BlockNames =
    [
        ("ln_1", "attention.output.LayerNorm"), ("attn.c_proj", "attention.output.dense"),
        ("ln_2", "output.LayerNorm"), ("mlp.c_fc", "intermediate.dense"), ("mlp.c_proj", "output.dense"),
    ];

    static readonly string[] QueryKeyValue = ["query", "key", "value"];

    /// <summary>
    /// The Hugging Face tensors one of our parameters is made of, each with the slice of our parameter it fills
    /// (offset and length in elements): one for most, three (query, key, value) for a fused c_attn.
    /// </summary>
    public static IReadOnlyList<(string Name, int Offset, int Length)> Parts(string ours, int length)
    {
        int layer = ours.IndexOf(".encoder.layer.", StringComparison.Ordinal);
        if (layer < 0) return [(ours, 0, length)];
        int dot = ours.IndexOf('.', layer + ".encoder.layer.".Length);
        string prefix = ours[..(dot + 1)], local = ours[(dot + 1)..];
        if (local.StartsWith("attn.c_attn.", StringComparison.Ordinal))
        {
            string leaf = local["attn.c_attn.".Length..];
            int third = length / 3;
            return [.. QueryKeyValue.Select((n, k) => ($"{prefix}attention.self.{n}.{leaf}", k * third, third))];
        }
        foreach (var (mine, theirs) in BlockNames)
            if (local.StartsWith(mine + ".", StringComparison.Ordinal))
                return [(prefix + theirs + local[mine.Length..], 0, length)];
        throw new ArgumentException($"No Hugging Face name for BERT parameter '{ours}'.");
    }

    /// <summary>Fills every parameter of <paramref name="model"/> from Hugging Face tensors: read(name, destination) copies one in.</summary>
    public static void Import(Bert model, Action<string, Span<float>> read)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(read);
        foreach (var p in model.Parameters)
            foreach (var (name, offset, length) in Parts(p.Name, p.Length))
                read(name, p.Value.Span.Slice(offset, length));
    }

    /// <summary>Every parameter (or gradient, with <paramref name="gradients"/>) under Hugging Face names, with its shape.</summary>
    public static List<(string Name, float[] Data, int[] Shape)> Export(Bert model, bool gradients = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tensors = new List<(string, float[], int[])>();
        foreach (var p in model.Parameters)
        {
            var source = gradients ? p.Grad.Span : p.Value.Span;
            var parts = Parts(p.Name, p.Length);
            foreach (var (name, offset, length) in parts)
            {
                int[] shape = [.. p.Shape];
                shape[0] /= parts.Count;
                tensors.Add((name, source.Slice(offset, length).ToArray(), shape));
            }
        }
        return tensors;
    }
}
