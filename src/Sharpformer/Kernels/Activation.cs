using System.Text.Json.Serialization;

namespace Sharpformer.Kernels;

/// <summary>
/// The MLP's non-linearity: GPT-2's tanh GELU, the exact erf GELU (nanoGPT's nn.GELU, BERT), or ReLU (the 2017
/// paper). It lives with the kernels because every layer from the fused autograd ops up chooses by it.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<Activation>))]
public enum Activation { GeluTanh, GeluErf, Relu }
