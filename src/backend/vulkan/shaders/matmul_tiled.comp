#version 450
// y[m, n] = x[m, k] · w[n, k]ᵀ for prompts (many rows of x): each workgroup computes a 64 x 64
// tile of y. Per 32-value step along k, 64 threads decode one weight row chunk each into shared
// memory (so a weight is decoded once per 64 rows of x, not once per row as in matvec.comp), all
// 256 threads stage the matching x values, and each thread accumulates a 4 x 4 block of outputs.
// variants: f32=W_F32 f16=W_F16 bf16=W_BF16 q4_0=W_Q4_0 q4_1=W_Q4_1 q5_0=W_Q5_0 q5_1=W_Q5_1 q8_0=W_Q8_0 q2_k=W_Q2_K q3_k=W_Q3_K q4_k=W_Q4_K q5_k=W_Q5_K q6_k=W_Q6_K iq4_nl=W_IQ4_NL iq4_xs=W_IQ4_XS
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { uint w[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, w_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint m, n, k;
  uint ldx, ldw, ldy;  // x, y: elements; w: bytes
} p;

#include "dequant.glsl"

const uint TILE = 64u, STEP = 32u;
// One float of padding per row keeps the column reads of the inner loop off a single bank.
shared float ws[TILE][STEP + 1u];
shared float xs[TILE][STEP + 1u];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % 16u, ty = tid / 16u;  // this thread's outputs: rows ty*4+i, cols tx*4+j
  const uint n0 = gl_WorkGroupID.x * TILE, m0 = gl_WorkGroupID.y * TILE;
  float acc[4][4];
  for (uint i = 0u; i < 4u; ++i)
    for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;
  float v[32];
  for (uint c = 0u; c < (p.k + STEP - 1u) / STEP; ++c) {  // float rows may end mid-chunk
    const uint count = min(STEP, p.k - c * STEP);
    if (tid < TILE) {
      if (n0 + tid < p.n) {
        decode_chunk(p.w_off + (n0 + tid) * p.ldw, c, p.k, v);
      } else {
        for (uint l = 0u; l < STEP; ++l) v[l] = 0.0;
      }
      for (uint l = 0u; l < STEP; ++l) ws[tid][l] = v[l];
    }
    for (uint e = tid; e < TILE * STEP; e += 256u) {
      const uint r = e / STEP, l = e % STEP;
      xs[r][l] = m0 + r < p.m && l < count ? x[p.x_off / 4u + (m0 + r) * p.ldx + c * STEP + l]
                                           : 0.0;
    }
    barrier();
    for (uint l = 0u; l < STEP; ++l) {
      float a[4], b[4];
      for (uint i = 0u; i < 4u; ++i) a[i] = xs[ty * 4u + i][l];
      for (uint j = 0u; j < 4u; ++j) b[j] = ws[tx * 4u + j][l];
      for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }
  for (uint i = 0u; i < 4u; ++i) {
    const uint row = m0 + ty * 4u + i;
    if (row >= p.m) break;
    for (uint j = 0u; j < 4u; ++j) {
      const uint col = n0 + tx * 4u + j;
      if (col < p.n) y[p.y_off / 4u + row * p.ldy + col] = acc[i][j];
    }
  }
}
