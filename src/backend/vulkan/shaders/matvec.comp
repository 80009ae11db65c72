#version 450
// y[m, n] = x[m, k] · w[n, k]ᵀ for small m: one workgroup per output row n and up to ROWS rows
// of x (the z dimension of the grid walks the rest), 64 threads striding over the row's 32-value
// chunks, then a shared-memory tree reduction (works for any subgroup size).
// variants: f32=W_F32 f16=W_F16 bf16=W_BF16 q4_0=W_Q4_0 q4_1=W_Q4_1 q5_0=W_Q5_0 q5_1=W_Q5_1 q8_0=W_Q8_0 q2_k=W_Q2_K q3_k=W_Q3_K q4_k=W_Q4_K q5_k=W_Q5_K q6_k=W_Q6_K iq4_nl=W_IQ4_NL iq4_xs=W_IQ4_XS
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { uint w[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, w_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint m, n, k;
  uint ldx, ldw, ldy;  // x, y: elements; w: bytes
} p;

#include "dequant.glsl"

const uint ROWS = 4u;
shared float partial[ROWS][64];

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.n) return;  // whole workgroups only, so the barriers below stay uniform
  const uint tid = gl_LocalInvocationID.x;
  const uint m0 = gl_WorkGroupID.z * ROWS;
  const uint rb = p.w_off + row * p.ldw;
  const uint chunks = (p.k + 31u) / 32u;  // float rows may end mid-chunk
  float acc[ROWS];
  for (uint r = 0u; r < ROWS; ++r) acc[r] = 0.0;
  float v[32];
  for (uint c = tid; c < chunks; c += 64u) {
    decode_chunk(rb, c, p.k, v);
    const uint count = min(32u, p.k - c * 32u);
    for (uint r = 0u; r < ROWS; ++r) {
      if (m0 + r >= p.m) break;
      const uint xb = p.x_off / 4u + (m0 + r) * p.ldx + c * 32u;
      float s = 0.0;
      if (count == 32u) {
        for (uint l = 0u; l < 32u; ++l) s += v[l] * x[xb + l];
      } else {
        for (uint l = 0u; l < count; ++l) s += v[l] * x[xb + l];
      }
      acc[r] += s;
    }
  }
  for (uint r = 0u; r < ROWS; ++r) partial[r][tid] = acc[r];
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s)
      for (uint r = 0u; r < ROWS; ++r) partial[r][tid] += partial[r][tid + s];
    barrier();
  }
  if (tid == 0u)
    for (uint r = 0u; r < ROWS && m0 + r < p.m; ++r)
      y[p.y_off / 4u + (m0 + r) * p.ldy + row] = partial[r][0];
}
