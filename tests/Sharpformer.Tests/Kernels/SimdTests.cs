using System.Runtime.Intrinsics;
using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

public class SimdTests
{
    [Fact]
    public void Sum4GivesEachSumBitForBit()
    {
        // Dot products summed four at a time must equal those summed alone (batched sampling relies on it).
        var r = new Random(3);
        float[] Lanes(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * Math.Pow(10, r.Next(-3, 4))))];
        for (int trial = 0; trial < 200; trial++)
        {
            var v512 = new Vector512<float>[4];
            var v256 = new Vector256<float>[4];
            for (int i = 0; i < 4; i++) { v512[i] = Vector512.Create(Lanes(16)); v256[i] = Vector256.Create(Lanes(8)); }
            var s512 = Lanes512.Sum4(v512[0], v512[1], v512[2], v512[3]);
            var s256 = Lanes256.Sum4(v256[0], v256[1], v256[2], v256[3]);
            for (int i = 0; i < 4; i++)
            {
                Assert.Equal(Lanes512.Sum(v512[i]), s512.GetElement(i));
                Assert.Equal(Lanes256.Sum(v256[i]), s256.GetElement(i));
                // The fixed order: halves folded down to four lanes, then (x0 + x2) + (x1 + x3).
                var q = v256[i].GetLower() + v256[i].GetUpper();
                Assert.Equal((q[0] + q[2]) + (q[1] + q[3]), Lanes256.Sum(v256[i]));
            }
        }
    }
}
