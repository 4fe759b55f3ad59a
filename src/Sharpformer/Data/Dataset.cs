using System.Text.Json;
using Sharpformer.Text;

namespace Sharpformer.Data;

/// <summary>
/// A prepared data folder: train.bin, val.bin and meta.json (the tokenizer), nanoGPT's layout.
/// </summary>
public sealed class Dataset : IDisposable
{
    public const string MetaFile = "meta.json";
    public const string TinyShakespeareUrl = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt";

    public string Folder { get; }
    public TokenizerSpec Tokenizer { get; }
    public TokenFile Train { get; }
    public TokenFile Val { get; }

    Dataset(string folder, TokenizerSpec tokenizer, TokenFile train, TokenFile val)
    {
        Folder = folder; Tokenizer = tokenizer; Train = train; Val = val;
    }

    /// <summary>Opens a prepared folder, saying clearly what is missing.</summary>
    /// <summary>
    /// The "task" a prepared folder's meta.json names (images, classify, mlm, translation), or null when it names none
    /// (nanoGPT's token folders) or the folder has no readable meta.json.
    /// </summary>
    public static string? TaskOf(string folder)
    {
        string path = Path.Combine(folder, MetaFile);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("task", out var task) && task.ValueKind == JsonValueKind.String
                ? task.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static Dataset Open(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Data folder '{folder}' does not exist; create it with `sharpformer prepare`.");
        string meta = Path.Combine(folder, MetaFile);
        if (!File.Exists(meta))
            throw new FileNotFoundException($"Data folder '{folder}' has no {MetaFile}; create it with `sharpformer prepare`.", meta);
        TokenizerSpec spec;
        try { spec = JsonSerializer.Deserialize(File.ReadAllBytes(meta), TextJsonContext.Default.TokenizerSpec) ?? throw new JsonException("the file holds null"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            throw new InvalidDataException($"{meta} is not a valid meta.json: {e.Message}");
        }
        spec.Validate(meta);
        if (spec.ModelVocabSize() > ushort.MaxValue + 1) throw new InvalidDataException($"{meta}: a vocabulary of {spec.VocabSize:N0} does not fit uint16 token files.");
        var train = new TokenFile(Path.Combine(folder, "train.bin"));
        try { return new Dataset(folder, spec, train, new TokenFile(Path.Combine(folder, "val.bin"))); }
        catch { train.Dispose(); throw; }
    }

    public void Dispose()
    {
        Train.Dispose();
        Val.Dispose();
    }

    /// <summary>
    /// Tokenizes a text and writes train.bin (first 90%), val.bin (last 10%) and meta.json into
    /// <paramref name="outDir"/>, as nanoGPT's prepare.py. Returns the token counts.
    /// </summary>
    public static (long Train, long Val, int VocabSize) Prepare(string text, ITokenizer? tokenizer, string outDir)
    {
        if (text.Length == 0) throw new ArgumentException("The input text is empty.");
        tokenizer ??= CharTokenizer.FromCorpus(text);
        if (tokenizer.VocabSize > ushort.MaxValue + 1) throw new ArgumentException($"A vocabulary of {tokenizer.VocabSize} does not fit uint16 token files.");
        // nanoGPT splits the text (not the tokens) at 90%; never between the two UTF-16 halves of one character.
        int split = (int)(text.Length * 0.9);
        if (split > 0 && char.IsSurrogatePair(text[split - 1], text[split])) split++;
        int[] train = tokenizer.Encode(text[..split]);
        int[] val = tokenizer.Encode(text[split..]);
        Directory.CreateDirectory(outDir);
        TokenFile.Write(Path.Combine(outDir, "train.bin"), train);
        TokenFile.Write(Path.Combine(outDir, "val.bin"), val);
        File.WriteAllText(Path.Combine(outDir, MetaFile), JsonSerializer.Serialize(tokenizer.Spec, TextJsonContext.Default.TokenizerSpec));
        return (train.Length, val.Length, tokenizer.VocabSize);
    }

    /// <summary>Downloads Tiny Shakespeare (char-rnn's input.txt), failing with one clear line when offline.</summary>
    public static string DownloadTinyShakespeare(TimeSpan? timeout = null)
    {
        using var http = new HttpClient { Timeout = timeout ?? TimeSpan.FromSeconds(30) };
        try
        {
            return http.GetStringAsync(TinyShakespeareUrl).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new IOException($"Could not download Tiny Shakespeare from {TinyShakespeareUrl} ({e.Message.TrimEnd('.')}). Are you offline? Download it by hand and pass --input FILE.");
        }
    }
}
