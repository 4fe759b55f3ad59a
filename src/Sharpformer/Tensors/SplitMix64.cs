namespace Sharpformer.Tensors;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014): the state advances by the golden-ratio increment and each output is
/// its finalised value. One small generator whose whole state is one ulong; it seeds <see cref="Rng"/>, draws
/// the dropout seeds and the initial weights, so a seed means the same numbers on every machine.
/// </summary>
public static class SplitMix64
{
    public static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
