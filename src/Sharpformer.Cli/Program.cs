using System.CommandLine;
using Sharpformer.Cli;
using Sharpformer.Cli.Commands;

var root = new RootCommand("Sharpformer: train and run GPT-style Transformers on the CPU, in pure C#.")
{
    PrepareCommand.Create(),
    TrainCommand.Create(),
    SampleCommand.Create(),
    EvalCommand.Create(),
    PredictCommand.Create(),
    InfoCommand.Create(),
    BenchCommand.Create(),
    ConvertCommand.Create(),
    AttentionCommand.Create(),
    IclCommand.Create(),
    TranslateCommand.Create(),
    BleuCommand.Create(),
    FillMask.Create(),
};

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // One line, as for every other bad input; --help shows the full usage.
    Cli.Fail($"{parse.Errors[0].Message} (see `sharpformer {string.Join(' ', parse.CommandResult.Command.Name == root.Name ? "" : parse.CommandResult.Command.Name)} --help`)".Replace("  ", " "));
    return Cli.UsageError;
}
return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
