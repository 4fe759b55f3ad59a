using System.CommandLine;
using Sharpformer.Generation;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`bleu`: scores a file of translations against references, one sentence per line (sacreBLEU's `sacrebleu REF -i HYP`).</summary>
static class BleuCommand
{
    public static Command Create()
    {
        var hypotheses = new Option<string>("--hypotheses") { Description = "Translations, one per line", Required = true };
        var references = new Option<string>("--references") { Description = "References, one per line, aligned with the translations", Required = true };
        var command = new Command("bleu", "Corpus BLEU (sacreBLEU's default: 13a, 4-grams, case-sensitive) and chrF of translations against references") { hypotheses, references };
        command.SetAction(r => Cli.Run(() =>
        {
            string[] hyp = Lines(r.GetValue(hypotheses)!), refs = Lines(r.GetValue(references)!);
            if (hyp.Length != refs.Length)
                throw new ArgumentException($"'{r.GetValue(hypotheses)}' holds {hyp.Length} lines but '{r.GetValue(references)}' {refs.Length}; they must be aligned line by line.");
            Console.WriteLine(Bleu.Corpus(hyp, refs));
            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"chrF2 = {ChrF.Corpus(hyp, refs):F2}"));
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>The lines of a UTF-8 file; a final line break ends the last line rather than adding an empty one.</summary>
    static string[] Lines(string path)
    {
        var text = TextFile.Read(path).Replace("\r\n", "\n");
        if (text.EndsWith('\n')) text = text[..^1];
        return text.Length == 0 ? [] : text.Split('\n');
    }
}
