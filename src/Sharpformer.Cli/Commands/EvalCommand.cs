using System.CommandLine;
using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Kernels;
using Sharpformer.Training;
using Sharpformer.Cli.Tasks;

namespace Sharpformer.Cli.Commands;

/// <summary>`eval`: the mean loss of a checkpoint on a split (nanoGPT's estimate_loss).</summary>
static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint folder, out-dir holding one, or Hugging Face GPT-2 folder (required unless --baseline)" };
        var data = new Option<string>("--data") { Description = "Prepared data folder", Required = true };
        var split = new Option<string>("--split") { Description = "val or train; test for classification data, or image or translation data prepared with a test set", DefaultValueFactory = _ => "val" };
        split.AcceptOnlyFromAmong("val", "train", "test");
        var iters = new Option<int>("--eval-iters") { Description = "Batches to average (1 to 1,048,576)", DefaultValueFactory = _ => 200 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per batch (1 to 1,048,576)", DefaultValueFactory = _ => 12 };
        var block = new Option<int?>("--block-size") { Description = "Context length (1 to the model's, which is the default)" };
        var seed = new Option<int>("--seed") { Description = "Random seed for the batches (any 32-bit integer)", DefaultValueFactory = _ => 1337 };
        var threads = new Option<int>("--threads") { Description = $"Kernel threads (0 to {RunSettings.MaxThreads:N0}; default 0: processor count)" };
        var confusion = new Option<string?>("--confusion") { Description = "Image or classification data: confusion-matrix PNG to write (default: confusion_SPLIT.png beside the checkpoint)" };
        var baseline = new Option<string?>("--baseline") { Description = "Classification data: instead of a checkpoint, fit this baseline on the train split and evaluate it: bag-of-words (tf-idf logistic regression)" };
        baseline.AcceptOnlyFromAmong("bag-of-words");
        var sentences = new Option<int>("--sentences") { Description = "Translation data: sentences of the split to translate for BLEU", DefaultValueFactory = _ => 500 };
        var beam = new Option<int>("--beam") { Description = "Translation data: beam size for the beam BLEU", DefaultValueFactory = _ => 4 };
        var command = new Command("eval", "Print a checkpoint's loss on a data split (image classifiers: accuracy, per class, a confusion matrix; translation: val loss, greedy and beam BLEU, chrF; masked-LM: loss and masked-token accuracy; text classifiers: accuracy, macro-F1, per class, a confusion matrix)")
            { checkpoint, data, split, iters, batch, block, seed, threads, sentences, beam, confusion, baseline };
        command.SetAction(r => Cli.Run(() =>
        {
            Settings.InRange(r.GetValue(threads), 0, RunSettings.MaxThreads, "threads");
            Settings.InRange(r.GetValue(batch), 1, 1 << 20, "batch-size");
            Settings.InRange(r.GetValue(iters), 1, 1 << 20, "eval-iters");
            if (r.GetValue(block) is { } b) Settings.InRange(b, 1, Settings.MaxContext, "block-size");
            if (r.GetValue(threads) is > 0 and var t) Parallelism.ThreadCount = t;
            if (r.GetValue(baseline) is not null)
            {
                if (r.GetValue(checkpoint) is not null) throw new ArgumentException("--baseline fits its own model; leave out --checkpoint.");
                TextEvaluation.Baseline(r.GetValue(data)!, r.GetValue(split)!, r.GetValue(confusion));
                return Cli.Ok;
            }
            if (r.GetValue(checkpoint) is null) throw new ArgumentException("eval needs --checkpoint (or, on classification data, --baseline bag-of-words).");
            if (TextClassificationFolder.IsClassificationFolder(r.GetValue(data)!))
            {
                TextEvaluation.Run(r.GetValue(checkpoint)!, r.GetValue(data)!, r.GetValue(split)!, r.GetValue(confusion), r.GetValue(batch));
                return Cli.Ok;
            }
            if (Tasks.MlmData.IsMlmFolder(r.GetValue(data)!))
                return EvalMaskedLm(r.GetValue(checkpoint)!, r.GetValue(data)!, r.GetValue(split)!, r.GetValue(iters), r.GetValue(batch), r.GetValue(seed));
            if (TranslationData.IsTranslationFolder(r.GetValue(data)!))
            {
                string at = r.GetValue(checkpoint)!;
                var (translator, _) = ModelLoader.LoadWithTokenizers(at);
                if (translator is not Seq2Seq s2s) throw new ArgumentException($"`eval` on translation data needs a seq2seq checkpoint, but '{at}' holds a {translator.Config.Kind} model.");
                string part = r.GetValue(split)! == "train" ? "val" : r.GetValue(split)!;
                TranslationData.Evaluate(s2s, r.GetValue(data)!, part, r.GetValue(sentences), r.GetValue(beam), r.GetValue(batch));
                return Cli.Ok;
            }
            if (ImageDataFolder.IsImageFolder(r.GetValue(data)!))
            {
                ImageEvaluation.Run(r.GetValue(checkpoint)!, r.GetValue(data)!, r.GetValue(split)!, r.GetValue(confusion));
                return Cli.Ok;
            }
            if (r.GetValue(split) == "test") throw new ArgumentException("--split test is for image or translation data prepared with a test set; token data has train and val.");
            // The in-context-learning sequences are drawn, not read: train is the training ciphers, val the held-out ones.
            bool ciphers = SubstitutionCipherData.IsSubstitutionCipher(r.GetValue(data)!);
            using var dataset = ciphers ? null : Dataset.Open(r.GetValue(data)!);
            string path = r.GetValue(checkpoint)!;
            var model = dataset is not null ? ModelLoader.LoadForData(path, dataset.Tokenizer, dataset.Folder) : SubstitutionCipherData.LoadGpt(path);
            if (model is not Gpt) throw new ArgumentException($"`eval` on token data needs a GPT checkpoint, but '{path}' holds a {model.Config.Kind} model.");
            int blockSize = r.GetValue(block) ?? model.Config.ContextLength, batchSize = r.GetValue(batch), evalIters = r.GetValue(iters);
            Settings.InRange(blockSize, 1, model.Config.ContextLength, "block-size");
            Settings.InRange((long)batchSize * blockSize, 1, 1 << 26, "batch-size x block-size");
            string name = r.GetValue(split)!;
            IBatchSource source = dataset is null ? new SubstitutionCipherBatches(batchSize, blockSize, heldOut: name != "train")
                : new LanguageModelBatches(name == "train" ? dataset.Train : dataset.Val, batchSize, blockSize, name);
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
