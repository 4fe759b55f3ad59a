using System.Text.Json;

namespace Sharpformer.Cli;

/// <summary>Exit codes and the one place bad input becomes one clear line on stderr.</summary>
static class Cli
{
    public const int Ok = 0, Error = 1, UsageError = 2;
    /// <summary>Stopped by Ctrl+C (SIGINT) after saving, as a shell reports a process ended by SIGINT: 128 + 2.</summary>
    public const int Interrupted = 130;

    public static void Fail(string message)
    {
        Console.Out.Flush();
        Console.Error.WriteLine($"error: {message}");
    }

    /// <summary>Runs a verb; expected failures (bad files, bad settings) end with one line and exit code 1, never a stack trace.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException
                                       or JsonException or KeyNotFoundException or FormatException or OperationCanceledException
                                       or Training.DivergenceException)
        {
            Fail(e.Message);
            return Error;
        }
    }
}
