using Sharpformer.Baselines;
using Sharpformer.Data;
using Sharpformer.Training;

namespace Sharpformer.Tests.Baselines;

public sealed class BagOfWordsClassifierTests
{
    // Three classes, each signalled by its own words amid shared filler; separable by construction.
    static List<TextExample> Synthetic(int perClass, int seed)
    {
        string[][] cue = [["apple", "pear", "plum"], ["goal", "match", "striker"], ["vote", "senate", "ballot"]];
        string[] filler = ["the", "a", "of", "and", "today", "news", "said", "very"];
        var rng = new Random(seed);
        var examples = new List<TextExample>();
        for (int i = 0; i < perClass; i++)
            for (int c = 0; c < 3; c++)
            {
                var words = Enumerable.Range(0, 6).Select(_ => filler[rng.Next(filler.Length)]).Append(cue[c][rng.Next(3)]);
                examples.Add(new TextExample(string.Join(' ', words.OrderBy(_ => rng.Next())).ToUpperInvariant(), null, c));
            }
        return examples;
    }

    [Fact]
    public void SeparatesASeparableDatasetPerfectly()
    {
        var train = Synthetic(30, seed: 1);
        var test = Synthetic(20, seed: 2);
        foreach (bool tfIdf in new[] { true, false })
        {
            var model = BagOfWordsClassifier.Train(train, 3, new() { TfIdf = tfIdf, Epochs = 100 });
            var metrics = ClassificationMetrics.From(test.Select(e => e.Label).ToArray(), test.Select(e => model.Predict(e.Text)).ToArray(), 3);
            Assert.Equal(1.0, metrics.Accuracy);
            Assert.Equal(1.0, metrics.MacroF1);
            Assert.True(model.Probabilities("A VOTE TODAY")[2] > 0.9);
        }
    }

    [Fact]
    public void VocabularyIsTheTopWordsByDocumentFrequencyAndFitsAreIdentical()
    {
        TextExample[] train = [new("b a a a", null, 0), new("b c", null, 1), new("c, d! B", null, 0), new("e", null, 1)];
        var model = BagOfWordsClassifier.Train(train, 2, new() { MaxVocabulary = 3, Epochs = 5 });
        Assert.Equal(["b", "c", "a"], model.Vocabulary); // df 3, 2, then a/d/e with df 1 in ordinal order
        var again = BagOfWordsClassifier.Train(train, 2, new() { MaxVocabulary = 3, Epochs = 5 });
        Assert.Equal(model.Probabilities("a b c d"), again.Probabilities("a b c d"));
        Assert.Equal(["caf\u00e9", "x2", "y"], BagOfWordsClassifier.Words("CAF\u00c9 -- x2_y " + new string('q', 41)));
    }

    [Fact]
    public void MetricsFollowTheirDefinitions()
    {
        // True 0,0,0,1,1,2 predicted 0,1,0,1,1,1: class 2 never predicted (precision 0, F1 0).
        var m = ClassificationMetrics.From([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 1, 1], 3);
        Assert.Equal(4.0 / 6, m.Accuracy, 12);
        Assert.Equal((1.0, 2.0 / 3), (m.Precision(0), m.Recall(0)));
        Assert.Equal((0.5, 1.0), (m.Precision(1), m.Recall(1)));
        Assert.Equal((0.0, 0.0, 0.0), (m.Precision(2), m.Recall(2), m.F1(2)));
        Assert.Equal((0.8 + 2.0 / 3 + 0) / 3, m.MacroF1, 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Add(3, 0));
    }
}
