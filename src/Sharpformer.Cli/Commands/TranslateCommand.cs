using System.CommandLine;
using Sharpformer.Cli.Tasks;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`translate`: a seq2seq checkpoint turns --text, or each line of stdin, into one translation per line on stdout.</summary>
static class TranslateCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder of a seq2seq model (or the out-dir holding one)", Required = true };
        var text = new Option<string?>("--text") { Description = "Sentence to translate (default: every line of stdin, streaming)" };
        var beam = new Option<int>("--beam") { Description = "Beam size; 1 is greedy", DefaultValueFactory = _ => 1 };
        var lenpen = new Option<double>("--lenpen") { Description = "Length penalty α (fairseq: score / length^α)", DefaultValueFactory = _ => 1.0 };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("translate", "Translate sentences with an encoder-decoder checkpoint") { checkpoint, text, beam, lenpen, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            string path = r.GetValue(checkpoint)!;
            var search = new TranslationSearch { BeamSize = r.GetValue(beam), LengthPenalty = r.GetValue(lenpen) };
            search.Validate();
            var (model, tokenizers) = ModelLoader.LoadWithTokenizers(path);
            if (model is not Seq2Seq seq2seq) throw new ArgumentException($"`translate` needs a seq2seq checkpoint, but '{path}' holds a {model.Config.Kind} model.");
            if (!tokenizers.TryGetValue("source", out var spec)) throw new ArgumentException($"'{path}' holds no source tokenizer.");
            var tokenizer = (SubwordTokenizer)spec.Create();
            string? single = r.GetValue(text);
            IEnumerable<string> lines = single is not null ? [single] : ReadLines(Console.In);
            foreach (var line in lines)
            {
                // an empty line stays an empty line, so the output stays aligned with the input
                if (line.Trim().Length == 0)
                {
                    Console.WriteLine();
                    continue;
                }
                var ids = tokenizer.Encode(line.Trim());
                if (ids.Length > seq2seq.Config.MaxLength)
                    Console.Error.WriteLine($"warning: a line of {ids.Length} tokens was cut to the model's {seq2seq.Config.MaxLength}");
                var output = seq2seq.Translate([TranslationData.Clip(ids, seq2seq)], search)[0];
                Console.WriteLine(tokenizer.Decode(output));
            }
            return Cli.Ok;
        }));
        return command;
    }

    static IEnumerable<string> ReadLines(TextReader reader)
    {
        while (reader.ReadLine() is { } line) yield return line;
    }
}
