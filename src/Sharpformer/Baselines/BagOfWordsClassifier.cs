using Sharpformer.Data;

namespace Sharpformer.Baselines;

public sealed record BagOfWordsOptions
{
    /// <summary>Keep the words found in most training documents, at most this many (ties: ordinal order).</summary>
    public int MaxVocabulary { get; init; } = 20_000;
    /// <summary>tf-idf features ((1 + ln tf)·idf, idf = ln((1 + N)/(1 + df)) + 1, rows L2-normalised); else binary.</summary>
    public bool TfIdf { get; init; } = true;
    public double L2 { get; init; } = 1e-4;
    public double LearningRate { get; init; } = 0.05;
    public int Epochs { get; init; } = 200;
}

/// <summary>
/// The comparison every text classifier should beat: lower-cased words (runs of letters and digits, at most 40
/// long; a text pair's words are added to its text's), a vocabulary of the most frequent words by document frequency
/// in train, tf-idf or binary features, and multinomial logistic regression fitted by full-batch Adam on the mean
/// cross-entropy plus (L2/2)·|W|² (bias not decayed). Single-threaded doubles in a fixed order, so two fits of
/// the same data give the same weights bit for bit.
/// </summary>
/// <remarks>
/// It lives in Baselines/ rather than Models/ because it is not a Transformer and does not use the model contract,
/// tensors or autograd; and not in Data/ because it learns.
/// </remarks>
public sealed class BagOfWordsClassifier
{
    const int MaxWordLength = 40;
    readonly Dictionary<string, int> index;
    readonly double[] idf;
    readonly double[,] weights; // [V, K]
    readonly double[] bias;     // [K]
    readonly bool tfIdf;

    BagOfWordsClassifier(string[] vocabulary, double[] idf, int classes, bool tfIdf)
    {
        Vocabulary = vocabulary;
        index = vocabulary.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i, StringComparer.Ordinal);
        this.idf = idf;
        weights = new double[vocabulary.Length, classes];
        bias = new double[classes];
        this.tfIdf = tfIdf;
    }

    public IReadOnlyList<string> Vocabulary { get; }
    public int Classes => bias.Length;

    public static BagOfWordsClassifier Train(IReadOnlyList<TextExample> train, int classes, BagOfWordsOptions? options = null)
    {
        options ??= new();
        if (train.Count == 0) throw new ArgumentException("Cannot fit a classifier to no examples.");
        if (train.Any(e => (uint)e.Label >= (uint)classes)) throw new ArgumentException($"Every label must be in [0, {classes}).");

        // Vocabulary: top words by document frequency.
        var documentFrequency = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var example in train)
            foreach (var word in Words(example).Distinct())
                documentFrequency[word] = documentFrequency.GetValueOrDefault(word) + 1;
        var kept = documentFrequency.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal)
            .Take(options.MaxVocabulary).ToArray();
        var idf = kept.Select(p => Math.Log((1.0 + train.Count) / (1.0 + p.Value)) + 1).ToArray();
        var model = new BagOfWordsClassifier([.. kept.Select(p => p.Key)], idf, classes, options.TfIdf);

        var features = train.Select(model.Features).ToArray();
        int v = model.Vocabulary.Count, k = classes, n = train.Count;
        var gradW = new double[v, k];
        var gradB = new double[k];
        var adam = new Adam(v * k + k, options.LearningRate);
        var probabilities = new double[k];
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            Array.Clear(gradW);
            Array.Clear(gradB);
            for (int i = 0; i < n; i++)
            {
                model.Softmax(features[i], probabilities);
                probabilities[train[i].Label] -= 1; // d(cross-entropy)/d(logits) = p - onehot
                for (int c = 0; c < k; c++) gradB[c] += probabilities[c] / n;
                foreach (var (j, x) in features[i])
                    for (int c = 0; c < k; c++) gradW[j, c] += x * probabilities[c] / n;
            }
            for (int j = 0; j < v; j++)
                for (int c = 0; c < k; c++) gradW[j, c] += options.L2 * model.weights[j, c];
            adam.Step(model.weights, gradW, model.bias, gradB);
        }
        return model;
    }

    /// <summary>Class probabilities for a text (and its pair).</summary>
    public double[] Probabilities(string text, string? pair = null)
    {
        var p = new double[Classes];
        Softmax(Features(new TextExample(text, pair, 0)), p);
        return p;
    }

    public int Predict(string text, string? pair = null)
    {
        var p = Probabilities(text, pair);
        return Array.IndexOf(p, p.Max());
    }

    /// <summary>Lower-cased runs of letters and digits, at most 40 characters (longer runs are base64 or noise).</summary>
    public static IEnumerable<string> Words(string text)
    {
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool inWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (inWord && start < 0) start = i;
            else if (!inWord && start >= 0)
            {
                if (i - start <= MaxWordLength) yield return text[start..i].ToLowerInvariant();
                start = -1;
            }
        }
    }

    static IEnumerable<string> Words(TextExample e) => e.Pair is null ? Words(e.Text) : Words(e.Text).Concat(Words(e.Pair));

    (int Index, double Value)[] Features(TextExample example)
    {
        var counts = new SortedDictionary<int, int>();
        foreach (var word in Words(example))
            if (index.TryGetValue(word, out int j)) counts[j] = counts.GetValueOrDefault(j) + 1;
        var features = counts.Select(p => (p.Key, tfIdf ? (1 + Math.Log(p.Value)) * idf[p.Key] : 1.0)).ToArray();
        if (tfIdf)
        {
            double norm = Math.Sqrt(features.Sum(f => f.Item2 * f.Item2));
            if (norm > 0) for (int i = 0; i < features.Length; i++) features[i].Item2 /= norm;
        }
        return features;
    }

    void Softmax((int Index, double Value)[] features, double[] result)
    {
        Array.Copy(bias, result, bias.Length);
        foreach (var (j, x) in features)
            for (int c = 0; c < result.Length; c++) result[c] += x * weights[j, c];
        double max = result.Max(), sum = 0;
        for (int c = 0; c < result.Length; c++) sum += result[c] = Math.Exp(result[c] - max);
        for (int c = 0; c < result.Length; c++) result[c] /= sum;
    }

    /// <summary>Adam (beta1 0.9, beta2 0.999, eps 1e-8) over the weights then the bias.</summary>
    sealed class Adam(int size, double learningRate)
    {
        readonly double[] m = new double[size], v = new double[size];
        int t;

        public void Step(double[,] weights, double[,] gradW, double[] bias, double[] gradB)
        {
            t++;
            double c1 = 1 - Math.Pow(0.9, t), c2 = 1 - Math.Pow(0.999, t);
            int i = 0;
            int rows = weights.GetLength(0), cols = weights.GetLength(1);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++, i++) weights[r, c] -= Update(i, gradW[r, c]);
            for (int c = 0; c < bias.Length; c++, i++) bias[c] -= Update(i, gradB[c]);

            double Update(int at, double g)
            {
                m[at] = 0.9 * m[at] + 0.1 * g;
                v[at] = 0.999 * v[at] + 0.001 * g * g;
                return learningRate * (m[at] / c1) / (Math.Sqrt(v[at] / c2) + 1e-8);
            }
        }
    }
}
