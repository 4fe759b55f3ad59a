using Sharpformer.Autograd;
using Sharpformer.Kernels;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Kernels.KernelCases;

namespace Sharpformer.Tests.Kernels;

/// <summary>The patch embedding (a stride-P convolution as one GEMM) against a direct convolution, and its gradients.</summary>
public class PatchEmbeddingTests
{
    public static TheoryData<int, int, int, int, int, int> Shapes => new()
    {
        // batch, channels, height, width, patch, dim
        { 1, 3, 5, 3, 1, 4 },
        { 2, 1, 6, 10, 2, 3 },
        { 3, 3, 8, 12, 4, 17 },
        { 2, 1, 7, 14, 7, 5 },
        { 2, 3, 28, 28, 4, 33 },   // 98 patch rows: the GEMM's blocked path, not the skinny one
        { 1, 1, 28, 21, 7, 65 },
    };

    /// <summary>y[b, py·(W/P) + px, d] = bias[d] + Σ_c,i,j W[d, c, i, j]·x[b, c, py·P + i, px·P + j], in double.</summary>
    static double[] Convolution(PatchShape s, float[] x, float[] w, float[] bias, int dim)
    {
        int p = s.Patch;
        var y = new double[s.Batch * s.Patches * dim];
        for (int b = 0; b < s.Batch; b++)
            for (int py = 0; py < s.PatchRows; py++)
                for (int px = 0; px < s.PatchColumns; px++)
                    for (int d = 0; d < dim; d++)
                    {
                        double sum = bias[d];
                        for (int c = 0; c < s.Channels; c++)
                            for (int i = 0; i < p; i++)
                                for (int j = 0; j < p; j++)
                                    sum += (double)w[((d * s.Channels + c) * p + i) * p + j]
                                        * x[((b * s.Channels + c) * s.Height + py * p + i) * s.Width + px * p + j];
                        y[((b * s.Patches) + py * s.PatchColumns + px) * dim + d] = sum;
                    }
        return y;
    }

    static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * (1 + Math.Abs(expected[i])), $"{what}[{i}]: {actual[i]} vs {expected[i]}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardEqualsDirectConvolution(int batch, int channels, int height, int width, int patch, int dim)
    {
        var s = new PatchShape(batch, channels, height, width, patch);
        var x = Random(batch * s.ImageLength, 1);
        var w = Random(dim * s.PatchLength, 2, 0.5);
        var bias = Random(dim, 3);
        var expected = Convolution(s, x, w, bias, dim);
        ForEachConfig((_, _) =>
        {
            var y = new float[batch * s.Patches * dim];
            PatchEmbedding.Forward(s, x, w, bias, y, new float[batch * s.Patches * s.PatchLength]);
            Close(expected, y, "y");
        });
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackwardEqualsDirectSums(int batch, int channels, int height, int width, int patch, int dim)
    {
        var s = new PatchShape(batch, channels, height, width, patch);
        var x = Random(batch * s.ImageLength, 4);
        var w = Random(dim * s.PatchLength, 5, 0.5);
        var dy = Random(batch * s.Patches * dim, 6);
        var start = Random(w.Length + dim + x.Length, 7); // gradients accumulate onto what is there
        // The convolution is linear: dW[d, c, i, j] = Σ_b,patch dy·x, dx[b, c, y, x] = Σ_d dy·W, db[d] = Σ dy.
        var dw = new double[w.Length];
        var db = new double[dim];
        var dx = new double[x.Length];
        int p = patch;
        for (int b = 0; b < batch; b++)
            for (int py = 0; py < s.PatchRows; py++)
                for (int px = 0; px < s.PatchColumns; px++)
                    for (int d = 0; d < dim; d++)
                    {
                        double g = dy[((b * s.Patches) + py * s.PatchColumns + px) * dim + d];
                        db[d] += g;
                        for (int c = 0; c < channels; c++)
                            for (int i = 0; i < p; i++)
                                for (int j = 0; j < p; j++)
                                {
                                    int wi = ((d * channels + c) * p + i) * p + j, xi = ((b * channels + c) * height + py * p + i) * width + px * p + j;
                                    dw[wi] += g * x[xi];
                                    dx[xi] += g * w[wi];
                                }
                    }
        for (int i = 0; i < w.Length; i++) dw[i] += start[i];
        for (int i = 0; i < dim; i++) db[i] += start[w.Length + i];
        for (int i = 0; i < x.Length; i++) dx[i] += start[w.Length + dim + i];
        ForEachConfig((_, _) =>
        {
            var gw = start[..w.Length];
            var gb = start[w.Length..(w.Length + dim)];
            var gx = start[(w.Length + dim)..];
            PatchEmbedding.Backward(s, x, w, dy, new float[batch * s.Patches * s.PatchLength], gw, gb, gx);
            Close(dw, gw, "dW");
            Close(db, gb, "db");
            Close(dx, gx, "dx");
        });
    }

    [Fact]
    public void GatherThenScatterIsTheIdentity()
    {
        var s = new PatchShape(2, 3, 6, 9, 3);
        var x = Random(2 * s.ImageLength, 8);
        var patches = new float[2 * s.Patches * s.PatchLength];
        PatchEmbedding.Gather(s, x, patches);
        Assert.Equal(x[(1 * s.ImageLength) + 2 * 9 * 6 + 3 * 9 + 4], patches[(1 * s.Patches + 1 * 3 + 1) * s.PatchLength + 2 * 9 + 0 * 3 + 1]); // b1 c2 y3 x4
        var back = new float[x.Length];
        PatchEmbedding.ScatterAdd(s, patches, back);
        BitEqual(x, back, "scatter(gather(x))");
    }

    [Theory]
    [InlineData(2, 3, 4, 6, 2, true)]
    [InlineData(1, 1, 3, 6, 3, false)]
    [InlineData(2, 2, 3, 2, 1, true)]
    public void GradientsMatchFiniteDifferences(int batch, int channels, int height, int width, int patch, bool withBias)
    {
        var rng = new Random(11);
        int dim = 3;
        var x = Autograd.GradCheck.Random(rng, 1, batch, channels, height, width);
        var w = Autograd.GradCheck.Random(rng, 0.5f, dim, channels, patch, patch);
        var b = withBias ? Autograd.GradCheck.Random(rng, 0.5f, dim) : null;
        var r = Autograd.GradCheck.Constant(rng, batch, height / patch * (width / patch), dim);
        Autograd.GradCheck.Check(() => Ops.Dot(Ops.PatchEmbedding(x, w, b), r), b is null ? [x, w] : [x, w, b]);
        // The images an intermediate (as after a normalisation op), whose gradient the op starts.
        Autograd.GradCheck.Check(() => Ops.Dot(Ops.PatchEmbedding(Ops.Scale(x, 0.5f), w, b), r), b is null ? [x, w] : [x, w, b]);
    }

    [Fact]
    public void OpOutputIsBatchByPatchesByDim()
    {
        using var x = new Tensor(2, 3, 8, 12);
        using var w = new Tensor(5, 3, 4, 4);
        using (Graph.NoGrad()) Assert.Equal([2, 6, 5], Ops.PatchEmbedding(x, w).Shape.ToArray());
    }

    [Fact]
    public void ImageNotAMultipleOfThePatchIsNamed()
    {
        using var x = new Tensor(1, 1, 7, 8);
        using var w = new Tensor(4, 1, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => Ops.PatchEmbedding(x, w));
        Assert.Contains("image 7x8", e.Message);
        Assert.Contains("2x2 patches", e.Message);
        using var wrongChannels = new Tensor(4, 3, 2, 2);
        Assert.Contains("[D, C, P, P]", Assert.Throws<ArgumentException>(() => Ops.PatchEmbedding(x, wrongChannels)).Message);
        Assert.Throws<ArgumentException>(() => PatchEmbedding.Gather(new PatchShape(1, 1, 9, 9, 2), new float[81], new float[64]));
    }
}
