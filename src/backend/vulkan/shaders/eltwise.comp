#version 450
// Element-wise ops on f32, one thread per output element:
//   op 0: y = a + b[i % nb]   op 1: y = a * b[i % nb]   op 2: y = a * s   op 3: y = silu(a) * b
//   op 4..8: y = silu(a), gelu(a) (erf), gelu_tanh(a), quick_gelu(a), relu(a)
//   op 9: y = a + b[i / nb]   op 10: y = a * b[i / nb]   (one b value per run of nb: a channel)
//   op 11: y[r, j] = a[r, j] * gelu(a[r, nb + j]) for rows r of a of 2 nb (diffusers' GEGLU)

// 128 invocations: within what every Vulkan device guarantees.
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer ABuf { float a[]; };
layout(std430, binding = 1) readonly buffer BBuf { float b[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint a_off, b_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint n, nb, op;
  float s;
} p;

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, under float32's resolution
// of the 0.5 * x * (1 + erf) it feeds): GLSL has no erf.
float erf_approx(float x) {
  const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
  const float poly =
      t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-x * x));
}

float unary(uint op, float x) {
  if (op == 4u) return x / (1.0 + exp(-x));
  if (op == 5u) return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
  if (op == 6u) {
    // tanh saturates long before |u| = 10; clamping keeps exp-based tanh implementations finite.
    const float u = clamp(0.79788456080286536 * (x + 0.044715 * x * x * x), -10.0, 10.0);
    return 0.5 * x * (1.0 + tanh(u));
  }
  if (op == 7u) return x / (1.0 + exp(-1.702 * x));
  return max(x, 0.0);
}

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 128u +
                 gl_LocalInvocationID.x;
  if (i >= p.n) return;
  if (p.op == 11u) {
    const uint hb = p.a_off / 4u + (i / p.nb) * 2u * p.nb + i % p.nb;
    y[p.y_off / 4u + i] = a[hb] * unary(5u, a[hb + p.nb]);
    return;
  }
  const float av = a[p.a_off / 4u + i];
  float r;
  if (p.op == 9u) {
    r = av + b[p.b_off / 4u + i / p.nb];
  } else if (p.op == 10u) {
    r = av * b[p.b_off / 4u + i / p.nb];
  } else if (p.op == 0u) {
    r = av + b[p.b_off / 4u + i % p.nb];
  } else if (p.op == 1u) {
    r = av * b[p.b_off / 4u + i % p.nb];
  } else if (p.op == 2u) {
    r = av * p.s;
  } else if (p.op == 3u) {
    r = av / (1.0 + exp(-av)) * b[p.b_off / 4u + i];
  } else {
    r = unary(p.op, av);
  }
  y[p.y_off / 4u + i] = r;
}
