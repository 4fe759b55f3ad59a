using System.CommandLine;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`fill-mask`: the most likely tokens at each [MASK] of a text, as Hugging Face's fill-mask pipeline.</summary>
static class FillMask
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "BERT masked-LM checkpoint folder (or out-dir holding one)", Required = true };
        var text = new Option<string>("--text") { Description = "Text with one or more [MASK] tokens", Required = true };
        var topK = new Option<int>("--top-k") { Description = "Tokens to show per [MASK]", DefaultValueFactory = _ => 5 };
        var command = new Command("fill-mask", "Print the most likely tokens for each [MASK] in a text (BERT masked-LM checkpoints)") { checkpoint, text, topK };
        command.SetAction(r => Cli.Run(() =>
        {
            string path = r.GetValue(checkpoint)!;
            int k = r.GetValue(topK);
            Models.Settings.InRange(k, 1, 1000, "top-k");
            var (bert, tokenizer) = LoadMaskedLm(path);
            var results = TopTokens(bert, tokenizer, r.GetValue(text)!, k);
            for (int m = 0; m < results.Count; m++)
            {
                if (results.Count > 1) Console.WriteLine($"[MASK] {m + 1}:");
                foreach (var (token, p) in results[m]) Console.WriteLine($"{token,-16} {p:F4}");
            }
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>A BERT masked-LM checkpoint and the WordPiece tokenizer saved beside it.</summary>
    public static (Bert Model, WordPieceTokenizer Tokenizer) LoadMaskedLm(string path)
    {
        string folder = Checkpoint.Resolve(path);
        var (model, _) = ModelLoader.LoadWithTokenizers(folder);
        if (model is not Bert { Config.IsClassifier: false } bert)
            throw new ArgumentException($"`fill-mask` needs a BERT masked-LM checkpoint, but '{path}' holds a {(model is Bert ? "BERT classifier" : model.Config.Kind + " model")}.");
        if (!File.Exists(Path.Combine(folder, WordPieceTokenizer.VocabFileName)))
            throw new ArgumentException($"'{folder}' has no {WordPieceTokenizer.VocabFileName} beside the model.");
        return (bert, WordPieceTokenizer.Load(folder));
    }

    /// <summary>For each [MASK] of the text, the k most likely tokens with their probabilities.</summary>
    public static List<(string Token, double Probability)[]> TopTokens(Bert model, WordPieceTokenizer tokenizer, string text, int k)
    {
        var encoding = tokenizer.EncodeForModel(text, null, model.Config.MaxPositionEmbeddings);
        if (encoding.TruncatedTokens > 0)
            throw new ArgumentException($"The text is {encoding.TruncatedTokens} word pieces longer than the model's {model.Config.MaxPositionEmbeddings} positions.");
        var ids = encoding.Ids;
        var masks = Enumerable.Range(0, ids.Length).Where(i => ids[i] == tokenizer.MaskId).ToArray();
        if (masks.Length == 0) throw new ArgumentException($"The text has no {WordPieceVocabulary.Mask} token.");
        model.Eval();
        var logits = model.MaskedLmLogits(ids, encoding.SegmentIds, [ids.Length], 1, ids.Length);
        int vocab = model.Config.VocabSize;
        var results = new List<(string, double)[]>();
        foreach (int t in masks)
        {
            var row = logits.Span.Slice(t * vocab, vocab).ToArray();
            var probabilities = new float[vocab];
            Kernels.Softmax.Apply(row, probabilities);
            results.Add([.. Enumerable.Range(0, vocab).OrderByDescending(i => probabilities[i]).Take(k).Select(i => (tokenizer.Token(i), (double)probabilities[i]))]);
        }
        return results;
    }
}
