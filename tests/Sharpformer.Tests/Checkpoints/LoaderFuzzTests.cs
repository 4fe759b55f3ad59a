using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Text;
using Sharpformer.Training;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// A seeded mutation fuzzer over the JSON loaders (checkpoint config.json, Hugging Face config.json,
/// trainer.json, meta.json) and token files: truncations, flipped bytes, hostile values put in place of any
/// field (wrong types, null, [], huge numbers, deep nesting, long strings) and odd whole documents. Every case
/// either loads or fails with one InvalidDataException or ArgumentException, never another exception, and
/// allocates a bounded amount.
/// </summary>
public sealed class LoaderFuzzTests : TinyCheckpoint
{
    const int Cases = 2000;
    const long AllocationBound = 64L << 20;

    static readonly string[] Hostile =
    [
        "null", "[]", "{}", "\"\"", "\"x\"", "true", "false", "0", "-1", "1.5", "1e300", "-1e300", "2147483648", "-2147483649",
        "9223372036854775808", "1e-45", "\"NaN\"", "\"Infinity\"", "[1,2,3,4]", "[0,0,0,0]", "{\"kind\":\"gpt\"}", "\"gpt2\"", "\"char\"",
        "\"\\ud800\"", new string('[', 5000) + new string(']', 5000), "\"" + new string('a', 100_000) + "\"",
    ];

    /// <summary>The mutated documents of one seed document.</summary>
    static IEnumerable<byte[]> Mutations(byte[] seed, int rngSeed, int cases)
    {
        var random = new Random(rngSeed);
        string text = Encoding.UTF8.GetString(seed);
        for (int i = 0; i < cases; i++)
        {
            switch (i % 5)
            {
                case 0:
                    yield return seed[..random.Next(seed.Length)];
                    break;
                case 1:
                    var flipped = (byte[])seed.Clone();
                    for (int k = random.Next(1, 4); k > 0; k--) flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                    yield return flipped;
                    break;
                case 2 or 3:
                    yield return Encoding.UTF8.GetBytes(ReplaceAField(text, random));
                    break;
                default:
                    yield return random.Next(4) switch
                    {
                        0 => Encoding.UTF8.GetBytes(Hostile[random.Next(Hostile.Length)]),
                        1 => [0xEF, 0xBB, 0xBF, .. seed], // a byte-order mark
                        2 => [0xFF, 0xFE, 0x00, .. seed],  // not UTF-8
                        _ => Encoding.UTF8.GetBytes(text.Replace("}", ", \"extra\": 1}")),
                    };
                    break;
            }
        }
    }

    /// <summary>A random field (at any depth) replaced by a hostile value, or removed.</summary>
    static string ReplaceAField(string json, Random random)
    {
        var doc = JsonNode.Parse(json)!;
        var slots = new List<(JsonNode Parent, object Key)>();
        void Walk(JsonNode? node)
        {
            if (node is JsonObject o) foreach (var (k, v) in o) { slots.Add((o, k)); Walk(v); }
            else if (node is JsonArray a) for (int j = 0; j < a.Count; j++) { slots.Add((a, j)); Walk(a[j]); }
        }
        Walk(doc);
        var (parent, key) = slots[random.Next(slots.Count)];
        const string Marker = "\u0001marker\u0001";
        if (parent is JsonObject obj)
        {
            if (random.Next(6) == 0) { obj.Remove((string)key); return doc.ToJsonString(); }
            obj[(string)key] = Marker;
        }
        else ((JsonArray)parent)[(int)key] = Marker;
        return doc.ToJsonString().Replace("\"\\u0001marker\\u0001\"", Hostile[random.Next(Hostile.Length)]);
    }

    /// <summary>Runs a loader on every mutation of a file: a load or one clean error, within the allocation bound.</summary>
    static (int Loaded, int Refused) Fuzz(string file, int rngSeed, Action load, int cases = Cases)
    {
        byte[] seed = File.ReadAllBytes(file);
        load(); // the seed itself loads
        int loaded = 0, refused = 0;
        foreach (var bytes in Mutations(seed, rngSeed, cases))
        {
            File.WriteAllBytes(file, bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                load();
                loaded++;
            }
            catch (Exception e) when (e.GetType() == typeof(InvalidDataException) || e.GetType() == typeof(ArgumentException))
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name} escaped for {Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 400)])}\n{e}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationBound, $"{allocated:N0} bytes allocated for {Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 400)])}");
        }
        File.WriteAllBytes(file, seed);
        Assert.True(refused > cases / 4, $"only {refused} of {cases} mutations were refused");
        return (loaded, refused);
    }

    [Fact]
    public void CheckpointConfigJson()
    {
        string folder = Path.Combine(root, "checkpoint");
        Checkpoint.Save(folder, Shape.Create(), Vocabulary, new RunSettings());
        Fuzz(Path.Combine(folder, Checkpoint.ConfigFile), 1, () => Checkpoint.ReadConfig(folder));
    }

    [Fact]
    public void TrainerJson()
    {
        string folder = Path.Combine(root, "checkpoint");
        Directory.CreateDirectory(folder);
        var progress = new TrainerProgress(120, 1.25f, [1, 2, 3, 4], 77, 120);
        string file = Path.Combine(folder, Checkpoint.TrainerStateFile);
        File.WriteAllText(file, JsonSerializer.Serialize(progress, CheckpointJsonContext.Default.TrainerProgress));
        Fuzz(file, 2, () => Checkpoint.ReadProgress(folder));
    }

    [Fact]
    public void HuggingFaceConfigJson()
    {
        string folder = Path.Combine(root, "hf");
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "OracleData", "hf_gpt2_tiny")))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        string config = Path.Combine(folder, HuggingFaceGpt2.ConfigFile);
        var (loaded, _) = Fuzz(config, 3, () => HuggingFaceGpt2.ReadConfig(folder));
        Assert.True(loaded > 0);
        // The whole import (config checked against the tensors before the model is built) on fewer cases: a load builds a model.
        Fuzz(config, 5, () => HuggingFaceGpt2.Import(folder), cases: 150);
    }

    [Fact]
    public void MetaJson()
    {
        string folder = Path.Combine(root, "data");
        Dataset.Prepare("abcdefghijk and some more text, abcdefghijk", null, folder);
        var (loaded, _) = Fuzz(Path.Combine(folder, Dataset.MetaFile), 4, () => Dataset.Open(folder).Dispose());
        Assert.True(loaded > 0);
    }

    [Fact]
    public void TokenFilesOfEverySmallSize()
    {
        string folder = Path.Combine(root, "data");
        Dataset.Prepare("abcdefghijk and some more text, abcdefghijk", null, folder);
        string train = Path.Combine(folder, "train.bin");
        for (int size = 0; size < 12; size++)
        {
            File.WriteAllBytes(train, new byte[size]);
            if (size % 2 == 1)
            {
                var e = Assert.Throws<InvalidDataException>(() => Dataset.Open(folder));
                Assert.Contains("whole number of uint16 tokens", e.Message);
                continue;
            }
            using var data = Dataset.Open(folder);
            Assert.Equal(size / 2, data.Train.Count);
        }
    }
}
