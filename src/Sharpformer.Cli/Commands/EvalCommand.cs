using System.CommandLine;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>`eval`: the mean loss of a checkpoint on a split (nanoGPT's estimate_loss).</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder, out-dir holding one, or Hugging Face GPT-2 folder", Required = true };
        var data = new Option<string>("--data") { Description = "Prepared data folder", Required = true };
        var split = new Option<string>("--split") { Description = "val or train", DefaultValueFactory = _ => "val" };
        split.AcceptOnlyFromAmong("val", "train");
        var iters = new Option<int>("--eval-iters") { Description = "Batches to average", DefaultValueFactory = _ => 200 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per batch", DefaultValueFactory = _ => 12 };
        var block = new Option<int?>("--block-size") { Description = "Context length (default: the model's)" };
        var seed = new Option<int>("--seed") { Description = "Random seed for the batches", DefaultValueFactory = _ => 1337 };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("eval", "Print a checkpoint's loss on a data split") { checkpoint, data, split, iters, batch, block, seed, threads };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            if (Tasks.MlmData.IsMlmFolder(r.GetValue(data)!))
                return EvalMaskedLm(r.GetValue(checkpoint)!, r.GetValue(data)!, r.GetValue(split)!, r.GetValue(iters), r.GetValue(batch), r.GetValue(seed));
            using var dataset = Dataset.Open(r.GetValue(data)!);
            string path = r.GetValue(checkpoint)!;
            var model = ModelLoader.LoadForData(path, dataset.Tokenizer, dataset.Folder);
            if (model is not Gpt) throw new ArgumentException($"`eval` on token data needs a GPT checkpoint, but '{path}' holds a {model.Config.Kind} model.");
            int blockSize = r.GetValue(block) ?? model.Config.ContextLength, batchSize = r.GetValue(batch), evalIters = r.GetValue(iters);
            Settings.InRange(blockSize, 1, model.Config.ContextLength, "block-size");
            Settings.InRange(batchSize, 1, 1 << 20, "batch-size");
            Settings.InRange(evalIters, 1, 1 << 20, "eval-iters");
            string name = r.GetValue(split)!;
            var source = new LanguageModelBatches(name == "train" ? dataset.Train : dataset.Val, batchSize, blockSize, name);
            float loss = Trainer.MeanLoss(model, source, evalIters, (ulong)r.GetValue(seed));
            Console.WriteLine($"{name} loss {loss:F4} ({evalIters} batches of {batchSize} x {blockSize} tokens)");
            return Cli.Ok;
        }));
        return command;
    }

    /// <summary>Masked-LM loss and masked-token accuracy of a BERT checkpoint on masked-LM data (masks drawn from --seed).</summary>
    static int EvalMaskedLm(string path, string folder, string split, int iters, int batchSize, int seed)
    {
        Settings.InRange(batchSize, 1, 1 << 20, "batch-size");
        Settings.InRange(iters, 1, 1 << 20, "eval-iters");
        using var data = new Tasks.MlmData(folder);
        var (model, tokenizer) = FillMask.LoadMaskedLm(path);
        if (tokenizer.VocabSize != data.Tokenizer.VocabSize)
            throw new ArgumentException($"'{path}' has a WordPiece vocabulary of {tokenizer.VocabSize}, the data in '{folder}' one of {data.Tokenizer.VocabSize}.");
        int blockSize = Math.Min(model.Config.MaxPositionEmbeddings, Math.Max(data.BlockSize, 1));
        var source = new MaskedLmSequences(split == "train" ? data.Train : data.Val, batchSize, blockSize, data.Rule);
        var (loss, accuracy) = Tasks.MlmData.Evaluate(model, source, iters, (ulong)seed);
        Console.WriteLine($"{split} masked-LM loss {loss:F4}, masked-token accuracy {accuracy:P2} ({iters} batches of {batchSize} sequences)");
        return Cli.Ok;
    }
}
