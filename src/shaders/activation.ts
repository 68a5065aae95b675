// Activation functions, plain and gated (GLU: out = act(gate) * up). One thread per output
// element, 256 per workgroup, x/y grid split as in elementwise.ts.
//
// Which model uses which (HF `hidden_act` / llama.cpp op):
//   silu        llama, qwen2/2.5/3, mistral, SmolLM2, Qwen2.5-VL's ViT: SwiGLU = silu(gate) * up
//   gelu-tanh   HF "gelu_pytorch_tanh"/"gelu_new": GPT-2, Gemma (GeGLU), SigLIP (SmolVLM,
//               PaliGemma); also what llama.cpp's ggml_gelu computes for every "gelu"
//   gelu-erf    HF "gelu" (exact, nn.GELU()): BERT, ViT, LLaVA-1.5's mlp2x_gelu projector
//   gelu-quick  HF "quick_gelu", x * sigmoid(1.702 x): OpenAI CLIP (LLaVA-1.5's vision tower), Qwen2-VL's ViT
//   relu
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export type ActivationKind = 'silu' | 'gelu-tanh' | 'gelu-erf' | 'gelu-quick' | 'relu';

export const activationKinds: readonly ActivationKind[] = ['silu', 'gelu-tanh', 'gelu-erf', 'gelu-quick', 'relu'];

export const ACTIVATION_WORKGROUP = 256;

// Sigmoid forms are written x / (1 + exp(-k x)): exp overflows to +inf for very negative
// inputs, giving x / inf = -0 with no NaN. (0.5 * (1 + tanh(u)) == 1 / (1 + exp(-2u)); tanh
// itself has returned NaN for large |u| on some drivers.)
const activationFunction: Record<ActivationKind, string> = {
  silu: /* wgsl */ `fn act(x: f32) -> f32 { return x / (1.0 + exp(-x)); }`,
  'gelu-tanh': /* wgsl */ `fn act(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x); // sqrt(2/π) (x + 0.044715 x^3)
  return x / (1.0 + exp(-2.0 * u));
}`,
  // erf has no WGSL builtin. Numerical Recipes' erfcc (a Chebyshev fit) gives erfc(z) for
  // z >= 0 with relative error < 1.2e-7 everywhere, so the negative tail of gelu keeps its
  // relative accuracy too; gelu(x) = x * erfc(-x/√2) / 2 covers both signs.
  'gelu-erf': /* wgsl */ `fn erfc_nonnegative(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(-z * z + poly);
}
fn act(x: f32) -> f32 {
  let z = x * 0.7071067811865476;
  let erfc_of_minus_z = select(2.0 - erfc_nonnegative(z), erfc_nonnegative(-z), z < 0.0);
  return 0.5 * x * erfc_of_minus_z;
}`,
  'gelu-quick': /* wgsl */ `fn act(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }`,
  relu: /* wgsl */ `fn act(x: f32) -> f32 { return max(x, 0.0); }`,
};

/** out[i] = act(x[i]), or x in place. */
export const activationWgsl = (kind: ActivationKind, inPlace: boolean) => wgsl`
struct Params { n: u32 }
#if ${inPlace}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
#endif
${activationFunction[kind]}

@compute @workgroup_size(${ACTIVATION_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * ${ACTIVATION_WORKGROUP}u;
  if (i >= params.n) { return; }
#if ${inPlace}
  x[i] = act(x[i]);
#else
  out[i] = act(x[i]);
#endif
}
`;

/**
 * out[r][j] = act(gate[r][j]) * up[r][j] over [rows][n]. `fused`: gate and up are the two halves
 * of one [rows][2n] buffer (gate first), as a merged gate_up projection writes them.
 */
export const gatedActivationWgsl = (kind: ActivationKind, fused: boolean) => wgsl`
struct Params { rows: u32, n: u32 }
#if ${fused}
@group(0) @binding(0) var<storage, read> gate_up: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
#else
@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
#endif
${activationFunction[kind]}

@compute @workgroup_size(${ACTIVATION_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * ${ACTIVATION_WORKGROUP}u;
  if (i >= params.rows * params.n) { return; }
#if ${fused}
  let row = i / params.n;
  let g = gate_up[i + row * params.n]; // row * 2n + j
  let u = gate_up[i + (row + 1u) * params.n];
  out[i] = act(g) * u;
#else
  out[i] = act(gate[i]) * up[i];
#endif
}
`;
