using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>The smallest GPT a checkpoint test needs, with its character vocabulary, and a temporary folder removed afterwards.</summary>
public abstract class TinyCheckpoint : IDisposable
{
    protected static readonly GptConfig Shape = new() { VocabSize = 11, BlockSize = 8, NLayer = 1, NHead = 2, NEmbd = 8 };
    protected static readonly TokenizerSpec Vocabulary = new() { Kind = "char", VocabSize = 11, Chars = "abcdefghijk" };

    protected readonly string root = Directory.CreateTempSubdirectory("sf-tiny-").FullName;

    protected string In(string name) => Path.Combine(root, name);

    public void Dispose() => Directory.Delete(root, recursive: true);
}
