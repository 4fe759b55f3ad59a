using System.CommandLine;
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
            using var dataset = Dataset.Open(r.GetValue(data)!);
            var model = ModelLoader.LoadForFineTuning(r.GetValue(checkpoint)!, dataset.Tokenizer);
            int blockSize = r.GetValue(block) ?? model.Config.BlockSize;
            var config = new TrainingConfig
            {
                BatchSize = r.GetValue(batch), BlockSize = blockSize, EvalIters = r.GetValue(iters), Seed = r.GetValue(seed),
                NLayer = model.Config.NLayer, NHead = model.Config.NHead, NEmbd = model.Config.NEmbd,
            };
            var source = r.GetValue(split) == "train" ? dataset.Train : dataset.Val;
            var trainer = new Trainer(model, config, source, source);
            float loss = trainer.MeanLoss(source, config.EvalIters, (ulong)config.Seed);
            Console.WriteLine($"{r.GetValue(split)} loss {loss:F4} ({config.EvalIters} batches of {config.BatchSize} x {blockSize} tokens)");
            return Cli.Ok;
        }));
        return command;
    }
}
