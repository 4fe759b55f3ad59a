namespace Sharpformer.Text;

/// <summary>What models need to know of a tokenizer beyond encoding: the embedding size, and whether two specs agree.</summary>
public static class TokenizerSpecs
{
    /// <summary>
    /// Rows of the embedding table for this tokenizer: GPT-2's 50,257 padded to 50,304 (a multiple of 64, as
    /// nanoGPT does for faster kernels; the padded rows are never sampled), else the vocabulary itself.
    /// </summary>
    public static int ModelVocabSize(this TokenizerSpec spec) =>
        spec.Kind == "gpt2" ? (spec.VocabSize + 63) / 64 * 64 : spec.VocabSize;

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> unless <paramref name="data"/> encodes text exactly as the
    /// model's tokenizer does (same kind, size and, for characters, the same vocabulary in the same order).
    /// </summary>
    public static void EnsureSameAs(this TokenizerSpec model, TokenizerSpec data, string modelSource, string dataSource)
    {
        if (model.Kind != data.Kind || model.VocabSize != data.VocabSize)
            throw new ArgumentException($"{modelSource} uses the {model.Kind} tokenizer ({model.VocabSize} tokens) but {dataSource} was prepared with {data.Kind} ({data.VocabSize} tokens); prepare the data with --tokenizer {model.Kind}.");
        if (model.Chars != data.Chars)
            throw new ArgumentException($"{modelSource} and {dataSource} both use {model.VocabSize} characters, but not the same ones in the same order: prepare the data with the model's vocabulary.");
    }

    /// <summary>
    /// Checks a spec read from a file (meta.json, a checkpoint's config): a kind and a vocab_size in range; for the
    /// kinds the spec alone describes (char, gpt2) the tokenizer must build and match that size (other kinds keep
    /// their vocabulary beside the checkpoint). Anything else, null included, is an <see cref="InvalidDataException"/>
    /// naming <paramref name="source"/>.
    /// </summary>
    public static void Validate(this TokenizerSpec? spec, string source)
    {
        if (spec is null) throw new InvalidDataException($"{source}: the tokenizer is null.");
        if (string.IsNullOrEmpty(spec.Kind)) throw new InvalidDataException($"{source}: the tokenizer has no kind.");
        if (spec.VocabSize < 1 || spec.VocabSize > Models.Settings.MaxVocabulary)
            throw new InvalidDataException($"{source}: vocab_size must be between 1 and {Models.Settings.MaxVocabulary:N0}, got {spec.VocabSize:N0}.");
        if (spec.Kind is not ("char" or "gpt2")) return;
        ITokenizer tokenizer;
        try { tokenizer = spec.Create(); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException) { throw new InvalidDataException($"{source}: {e.Message}"); }
        if (tokenizer.VocabSize != spec.VocabSize)
            throw new InvalidDataException($"{source}: vocab_size {spec.VocabSize} does not match the {spec.Kind} tokenizer's {tokenizer.VocabSize} tokens.");
    }
}
