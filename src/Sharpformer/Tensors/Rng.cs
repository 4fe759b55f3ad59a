namespace Sharpformer.Tensors;

/// <summary>
/// A small seeded generator (xoshiro256**) whose whole state is four ulongs, so a run can save it in a
/// checkpoint and continue the same random stream after a resume. Not for cryptography.
/// </summary>
public struct Rng
{
    ulong s0, s1, s2, s3;

    public Rng(ulong seed)
    {
        // SplitMix64 spreads any seed (even 0) over the four words.
        s0 = SplitMix64.Next(ref seed); s1 = SplitMix64.Next(ref seed); s2 = SplitMix64.Next(ref seed); s3 = SplitMix64.Next(ref seed);
    }

    /// <summary>The generator's state, for checkpoints.</summary>
    public readonly ulong[] State => [s0, s1, s2, s3];

    public static Rng FromState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4) throw new ArgumentException($"An Rng state has 4 words, got {state.Length}.", nameof(state));
        return new Rng { s0 = state[0], s1 = state[1], s2 = state[2], s3 = state[3] };
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// <summary>Uniform integer in [0, bound), unbiased (Lemire's multiply-shift with rejection).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound), bound, "bound must be positive.");
        ulong b = (ulong)bound;
        while (true)
        {
            UInt128 m = (UInt128)NextUInt64() * b;
            ulong low = (ulong)m;
            if (low >= b || low >= (0 - b) % b) return (int)(m >> 64);
        }
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box-Muller), for weight initialisation.</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
