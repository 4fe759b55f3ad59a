using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Generation;
using Sharpformer.Kernels;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>`sample`: nanoGPT's sample.py, streaming text as it is generated.</summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder, out-dir holding one, or Hugging Face GPT-2 folder", Required = true };
        var start = new Option<string>("--start") { Description = "Prompt text", DefaultValueFactory = _ => "\n" };
        var startFile = new Option<string?>("--start-file") { Description = "Read the prompt from a file" };
        var numSamples = new Option<int>("--num-samples") { Description = $"Samples to draw (1 to {MaxSamples:N0})", DefaultValueFactory = _ => 10 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = $"Tokens per sample (0 to {SamplingOptions.MaxNewTokensLimit:N0})", DefaultValueFactory = _ => 500 };
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature (0: greedy; finite, at least 0)", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0: all; at most the vocabulary limit 16,777,216)", DefaultValueFactory = _ => 200 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass, in (0, 1] (1: off)", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "Random seed (any 32-bit integer)", DefaultValueFactory = _ => 1337 };
        var threads = new Option<int>("--threads") { Description = $"Kernel threads (0 to {Training.RunSettings.MaxThreads:N0}; default 0: processor count)" };
        var command = new Command("sample", "Generate text from a checkpoint") { checkpoint, start, startFile, numSamples, maxNew, temperature, topK, topP, seed, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            Settings.InRange(r.GetValue(threads), 0, Training.RunSettings.MaxThreads, "threads");
            Settings.InRange(r.GetValue(numSamples), 1, MaxSamples, "num-samples");
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            var options = new SamplingOptions
            {
                MaxNewTokens = r.GetValue(maxNew),
                Temperature = r.GetValue(temperature),
                TopK = r.GetValue(topK),
                TopP = r.GetValue(topP),
                Seed = (ulong)r.GetValue(seed),
            };
            options.Validate();
            int samples = r.GetValue(numSamples);
            string prompt = r.GetValue(startFile) is { } file
                ? (File.Exists(file) ? File.ReadAllText(file) : throw new FileNotFoundException($"Start file '{file}' does not exist."))
                : r.GetValue(start)!;

            var (model, spec) = ModelLoader.LoadGpt(r.GetValue(checkpoint)!, "sample");
            var tokenizer = spec.Create();
            // As nanoGPT's sample.py, a prompt may name GPT-2's <|endoftext|> (prepared text keeps it as plain text).
            int[] ids = tokenizer is Gpt2Tokenizer gpt2 ? (prompt.Length == 0 ? [Gpt2Tokenizer.EndOfText] : gpt2.EncodeAllowingEndOfText(prompt)) : tokenizer.Encode(prompt);
            if (ids.Length == 0) throw new ArgumentException("The prompt is empty; give --start TEXT.");
            model.Eval();
            var sampler = new Sampler(model, tokenizer.VocabSize);
            var stdout = Console.Out;
            // Samples run together in groups (one weight read per step serves the group); the first of each
            // group streams as it is generated, the others print when the group is done. Stream s uses seed
            // Seed + s, so the text is the same as drawing the samples one by one.
            for (int first = 0, group; first < samples; first += group)
            {
                group = GroupSize(model, samples - first);
                var streamer = new TokenStreamer(tokenizer, stdout);
                var others = new List<int>[group];
                for (int s = 1; s < group; s++) others[s] = new List<int>();
                stdout.Write(prompt);
                foreach (int[] step in sampler.Generate(ids, group, options with { Seed = options.Seed + (ulong)first }))
                {
                    streamer.Add(step[0]);
                    for (int s = 1; s < group; s++) others[s].Add(step[s]);
                }
                streamer.Flush();
                stdout.WriteLine();
                stdout.WriteLine("---------------");
                for (int s = 1; s < group; s++)
                {
                    stdout.Write(prompt);
                    stdout.WriteLine(tokenizer.Decode(others[s].ToArray()));
                    stdout.WriteLine("---------------");
                }
                stdout.Flush();
            }
            return Cli.Ok;
        }));
        return command;
    }

    const int MaxSamples = 1 << 20;

    /// <summary>Samples to run together: at most the sampler's limit, and no more than 1 GB of key/value cache.</summary>
    static int GroupSize(Models.Gpt model, int remaining)
    {
        var cfg = model.Config;
        long perStream = (long)cfg.NLayer * cfg.BlockSize * 2 * cfg.NEmbd * sizeof(float);
        return (int)Math.Clamp(Math.Min(remaining, (1L << 30) / perStream), 1, Sampler.MaxStreams);
    }
}

/// <summary>
/// Writes tokens as they arrive. BPE tokens can split a UTF-8 character, so text is emitted only up to
/// the last complete character; characters decode one by one.
/// </summary>
sealed class TokenStreamer(ITokenizer tokenizer, TextWriter output)
{
    readonly List<int> pending = new();

    public void Add(int token)
    {
        pending.Add(token);
        string text = tokenizer.Decode(pending.ToArray());
        if (text.Length > 0 && text[^1] != '\uFFFD')
        {
            output.Write(text);
            output.Flush();
            pending.Clear();
        }
    }

    public void Flush()
    {
        if (pending.Count > 0) output.Write(tokenizer.Decode(pending.ToArray()));
        pending.Clear();
    }
}
