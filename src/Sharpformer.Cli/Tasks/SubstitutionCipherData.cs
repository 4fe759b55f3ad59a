using Sharpformer.Checkpoints;
using Sharpformer.Cli.Commands;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Cli.Tasks;

/// <summary>
/// The in-context-learning sequences (<see cref="SubstitutionCiphers"/>), drawn as needed, no folder: training on
/// the training ciphers, validation on the held-out ones, trained as next-token prediction by a GPT.
/// </summary>
sealed class SubstitutionCipherData : TrainingData
{
    public static bool IsSubstitutionCipher(string data) => data == SubstitutionCiphers.DataName;

    public override string Folder => SubstitutionCiphers.DataName;

    public override string Describe(RunSettings run) =>
        $"{SubstitutionCiphers.DataName} (a fresh random cipher per sequence; validation on the 1 in {SubstitutionCiphers.HeldOutOneIn} " +
        $"held out from training); {run.TokensPerIteration:N0} tokens per iteration";

    public override IReadOnlyDictionary<string, TokenizerSpec> Tokenizers =>
        new Dictionary<string, TokenizerSpec> { [CheckpointConfig.TextRole] = SubstitutionCiphers.Tokenizer.Spec };

    public override ModelConfig Adapt(ModelConfig model) =>
        model is GptConfig gpt ? gpt with { VocabSize = SubstitutionCiphers.Tokenizer.Spec.ModelVocabSize() } : model;

    public override void EnsureFits(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, RunSettings run, string modelSource)
    {
        EnsureGpt(model, modelTokenizers, modelSource);
        if (run.BlockSize > ((Gpt)model).Config.BlockSize)
            throw new ArgumentException($"block-size {run.BlockSize} exceeds the model's block_size {((Gpt)model).Config.BlockSize}.");
    }

    /// <summary>A checkpoint's GPT trained on the cipher sequences; anything else is one clear error.</summary>
    public static Gpt LoadGpt(string path)
    {
        var (model, tokenizers) = ModelLoader.LoadWithTokenizers(path);
        return EnsureGpt(model, tokenizers, $"The model at '{path}'");
    }

    /// <summary>Throws unless the model is a GPT whose tokenizer is the cipher sequences' characters.</summary>
    public static Gpt EnsureGpt(Model model, IReadOnlyDictionary<string, TokenizerSpec>? modelTokenizers, string modelSource)
    {
        if (model is not Gpt gpt) throw new ArgumentException($"The cipher sequences train GPT models; {modelSource} is a {model.Config.Kind} model.");
        if (modelTokenizers is not null)
        {
            if (!modelTokenizers.TryGetValue(CheckpointConfig.TextRole, out var spec)) throw new ArgumentException($"{modelSource} has no text tokenizer.");
            var cipher = SubstitutionCiphers.Tokenizer.Spec;
            if (spec.Kind != cipher.Kind || spec.Chars != cipher.Chars)
                throw new ArgumentException($"{modelSource} was not trained on the cipher sequences: its tokenizer is {spec.Kind} with {spec.VocabSize} tokens, " +
                    $"theirs the {cipher.VocabSize} characters {cipher.Chars}; train one with `sharpformer icl`.");
        }
        return gpt;
    }

    public override IBatchSource TrainBatches(RunSettings run) => new SubstitutionCipherBatches(run.BatchSize, run.BlockSize, heldOut: false);
    public override IBatchSource ValBatches(RunSettings run) => new SubstitutionCipherBatches(run.BatchSize, run.BlockSize, heldOut: true);

    /// <summary>A few held-out prompts with the model's answers; `icl` measures accuracy properly.</summary>
    public override void Demonstrate(Model model, RunSettings run, int amount)
    {
        if (amount <= 0 || model is not Gpt gpt) return;
        gpt.Eval();
        int shots = Math.Min(8, SubstitutionCiphers.MaxShots(gpt.Config.BlockSize));
        var rng = new Tensors.Rng((ulong)run.Seed);
        var prompts = InContextEvaluation.Draw(ref rng, shots, 3);
        var answers = InContextEvaluation.Answer(gpt, prompts.Tokens, prompts.Answers.Length);
        Console.WriteLine($"held-out ciphers, {shots} examples each (the answer is the query's cipher letter):");
        for (int n = 0; n < answers.Length; n++)
        {
            string text = SubstitutionCiphers.Show(prompts.Tokens.AsSpan(n * prompts.Length, prompts.Length));
            string said = SubstitutionCiphers.Tokenizer.Decode([answers[n]]), right = SubstitutionCiphers.Tokenizer.Decode([prompts.Answers[n]]);
            Console.WriteLine($"  {text} -> {said} ({(answers[n] == prompts.Answers[n] ? "right" : $"wrong; the cipher says {right}")})");
        }
    }

    public override void Dispose() { }
}
