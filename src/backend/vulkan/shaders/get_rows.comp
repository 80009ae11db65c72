#version 450
// out[i, :] = row ids[i] of a table of weight rows, decoded to f32: one workgroup per id, its
// threads striding over the row's 32-value chunks. Ids outside [0, n_rows) give zeros.
// variants: f32=W_F32 f16=W_F16 bf16=W_BF16 q4_0=W_Q4_0 q4_1=W_Q4_1 q5_0=W_Q5_0 q5_1=W_Q5_1 q8_0=W_Q8_0 q2_k=W_Q2_K q3_k=W_Q3_K q4_k=W_Q4_K q5_k=W_Q5_K q6_k=W_Q6_K iq4_nl=W_IQ4_NL iq4_xs=W_IQ4_XS
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer WBuf { uint w[]; };
layout(std430, binding = 1) readonly buffer IdBuf { int ids[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { float outv[]; };

layout(push_constant) uniform Params {
  uint w_off, ids_off, out_off;  // bytes from each binding's start (filled by the dispatcher)
  uint n_ids, n_cols, row_bytes, n_rows;
} p;

#include "dequant.glsl"

void main() {
  const uint i = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (i >= p.n_ids) return;
  const int id = ids[p.ids_off / 4u + i];
  const bool valid = id >= 0 && uint(id) < p.n_rows;
  const uint rb = p.w_off + (valid ? uint(id) : 0u) * p.row_bytes;
  const uint ob = p.out_off / 4u + i * p.n_cols;
  float v[32];
  for (uint c = gl_LocalInvocationID.x; c < (p.n_cols + 31u) / 32u; c += 64u) {
    if (valid) {
      decode_chunk(rb, c, p.n_cols, v);
    } else {
      for (uint l = 0u; l < 32u; ++l) v[l] = 0.0;
    }
    const uint count = min(32u, p.n_cols - c * 32u);  // float rows may end mid-chunk
    for (uint l = 0u; l < count; ++l) outv[ob + c * 32u + l] = v[l];
  }
}
