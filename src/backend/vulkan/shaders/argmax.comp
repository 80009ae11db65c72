#version 450
// out[r] = the index of the largest value of x[r, :] (the first one on ties; NaNs are skipped;
// 0 when the row has no number): one workgroup per row, a shared-memory reduction of
// (value, index) pairs. Greedy sampling then downloads 4 bytes instead of the logits.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) writeonly buffer OutBuf { int outv[]; };

layout(push_constant) uniform Params {
  uint x_off, out_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, n;
} p;

shared float best_v[128];
shared uint best_i[128];

const uint NONE = 0xFFFFFFFFu;

// Whether candidate (v, i) beats (bv, bi): larger, or equal with a smaller index; NONE loses.
bool beats(float v, uint i, float bv, uint bi) {
  if (i == NONE) return false;
  if (bi == NONE) return true;
  return v > bv || (v == bv && i < bi);
}

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint xb = p.x_off / 4u + row * p.n;
  float bv = 0.0;
  uint bi = NONE;
  for (uint i = tid; i < p.n; i += 128u) {
    const float v = x[xb + i];
    if (!isnan(v) && beats(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  best_v[tid] = bv;
  best_i[tid] = bi;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (tid < s && beats(best_v[tid + s], best_i[tid + s], best_v[tid], best_i[tid])) {
      best_v[tid] = best_v[tid + s];
      best_i[tid] = best_i[tid + s];
    }
    barrier();
  }
  if (tid == 0u) outv[p.out_off / 4u + row] = best_i[0] == NONE ? 0 : int(best_i[0]);
}
