using Sharpformer.Data;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Data;

/// <summary>Random crop with zero padding and horizontal flip: seeded, resumable, and exact where it must be.</summary>
public class ImageAugmentationTests
{
    const int B = 6, C = 3, H = 5, W = 7, Size = C * H * W;

    static byte[] Images() => Enumerable.Range(0, B * Size).Select(i => (byte)(1 + i % 251)).ToArray(); // no zeros

    [Fact]
    public void SaysWhatItApplies()
    {
        Assert.Equal("crop padding 2, horizontal flip", new ImageAugmentation(2, true).ToString());
        Assert.Equal("crop padding 4", new ImageAugmentation(4).ToString());
        Assert.Equal("horizontal flip", new ImageAugmentation(0, true).ToString());
        Assert.Equal("none", ImageAugmentation.None.ToString());
    }

    [Fact]
    public void SameSeedSameImagesAndAResumedStreamRepeatsThem()
    {
        var augment = new ImageAugmentation(Padding: 2, HorizontalFlip: true);
        var images = Images();
        byte[] Run(ulong seed, int batches, out Rng after)
        {
            var rng = new Rng(seed);
            var output = new byte[images.Length];
            for (int i = 0; i < batches; i++) augment.ApplyToBatch<byte>(images, output, B, C, H, W, ref rng);
            after = rng;
            return output;
        }
        Assert.Equal(Run(5, 3, out _), Run(5, 3, out _));
        Assert.NotEqual(Run(5, 3, out _), Run(6, 3, out _));

        // Save the state after one batch, restore it, run two more: the third batch of the uninterrupted run.
        Run(5, 1, out var saved);
        var resumed = Rng.FromState(saved.State);
        var output = new byte[images.Length];
        for (int i = 0; i < 2; i++) augment.ApplyToBatch<byte>(images, output, B, C, H, W, ref resumed);
        Assert.Equal(Run(5, 3, out _), output);
    }

    [Fact]
    public void DisabledIsACopyAndDrawsNothing()
    {
        var images = Images().Select(v => v / 255f).ToArray();
        var rng = new Rng(1);
        var state = rng.State;
        var output = new float[images.Length];
        Assert.True(ImageAugmentation.None.IsIdentity);
        ImageAugmentation.None.ApplyToBatch<float>(images, output, B, C, H, W, ref rng);
        Assert.Equal(images, output);
        Assert.Equal(state, rng.State);
    }

    [Fact]
    public void FlipTwiceIsTheIdentityAndShiftsMoveWithZeroFill()
    {
        var image = Images()[..Size];
        var once = new byte[Size];
        var twice = new byte[Size];
        ImageAugmentation.Transform<byte>(image, once, C, H, W, 0, 0, flip: true);
        Assert.NotEqual(image, once);
        Assert.Equal(image[W - 1], once[0]); // first row reversed
        ImageAugmentation.Transform<byte>(once, twice, C, H, W, 0, 0, flip: true);
        Assert.Equal(image, twice);

        // Shift by (1, -2): out[c, y, x] = in[c, y + 1, x - 2]; the last row and first two columns are zero.
        ImageAugmentation.Transform<byte>(image, once, C, H, W, 1, -2, flip: false);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    bool inside = y + 1 < H && x - 2 >= 0;
                    Assert.Equal(inside ? image[(c * H + y + 1) * W + x - 2] : 0, once[(c * H + y) * W + x]);
                }
    }

    [Fact]
    public void DrawsCoverEveryOffsetAndFlipAboutHalfTheTime()
    {
        // A single lit pixel in the middle shows where each draw moved it.
        var image = new float[1 * 9 * 9];
        image[4 * 9 + 4] = 1;
        var output = new float[image.Length];
        var rng = new Rng(3);
        var augment = new ImageAugmentation(Padding: 2, HorizontalFlip: false);
        var seen = new HashSet<int>();
        for (int i = 0; i < 400; i++)
        {
            augment.Apply<float>(image, output, 1, 9, 9, ref rng);
            seen.Add(Array.IndexOf(output, 1f));
        }
        Assert.Equal(25, seen.Count); // every (dy, dx) in [-2, 2]²
        Assert.DoesNotContain(-1, seen);

        image[4 * 9 + 4] = 0;
        image[0] = 1; // top-left corner: flipped, it lands top-right
        var flip = new ImageAugmentation(HorizontalFlip: true);
        int flipped = 0;
        for (int i = 0; i < 1000; i++)
        {
            flip.Apply<float>(image, output, 1, 9, 9, ref rng);
            if (output[8] == 1) flipped++;
        }
        Assert.InRange(flipped, 430, 570);
    }
}
