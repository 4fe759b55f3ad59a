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
        var split = new Option<string>("--split") { Description = "val or train; test for image data prepared with a test set", DefaultValueFactory = _ => "val" };
        split.AcceptOnlyFromAmong("val", "train", "test");
        var confusion = new Option<string?>("--confusion") { Description = "Image data: confusion-matrix PNG to write (default: confusion_SPLIT.png beside the checkpoint)" };
        var iters = new Option<int>("--eval-iters") { Description = "Batches to average", DefaultValueFactory = _ => 200 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per batch", DefaultValueFactory = _ => 12 };
        var block = new Option<int?>("--block-size") { Description = "Context length (default: the model's)" };
        var seed = new Option<int>("--seed") { Description = "Random seed for the batches", DefaultValueFactory = _ => 1337 };
        var threads = new Option<int>("--threads") { Description = "Kernel threads (default: processor count)" };
        var command = new Command("eval", "Print a checkpoint's loss on a data split (image classifiers: accuracy, per class, and a confusion matrix)")
            { checkpoint, data, split, iters, batch, block, seed, threads, confusion };
        command.SetAction(r => Cli.Run(() =>
        {
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            if (ImageDataFolder.IsImageFolder(r.GetValue(data)!))
            {
                ImageEvaluation.Run(r.GetValue(checkpoint)!, r.GetValue(data)!, r.GetValue(split)!, r.GetValue(confusion));
                return Cli.Ok;
            }
            if (r.GetValue(split) == "test") throw new ArgumentException("--split test is for image data prepared with a test set; token data has train and val.");
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
}
