#version 450
// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b: one workgroup per row, the mean and then
// the variance about it (two passes, as the CPU reference) by shared-memory reductions.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float wt[]; };
layout(std430, binding = 2) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 3) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, w_off, b_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, n, has_w, has_b;
  float eps;
} p;

shared float partial[128];

float row_sum(float v) {
  const uint tid = gl_LocalInvocationID.x;
  partial[tid] = v;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (tid < s) partial[tid] += partial[tid + s];
    barrier();
  }
  const float total = partial[0];
  barrier();  // partial is reused by the next reduction
  return total;
}

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint xb = p.x_off / 4u + row * p.n, yb = p.y_off / 4u + row * p.n;
  float s = 0.0;
  for (uint i = tid; i < p.n; i += 128u) s += x[xb + i];
  const float mean = row_sum(s) / float(p.n);
  float v = 0.0;
  for (uint i = tid; i < p.n; i += 128u) v += (x[xb + i] - mean) * (x[xb + i] - mean);
  const float r = inversesqrt(row_sum(v) / float(p.n) + p.eps);
  for (uint i = tid; i < p.n; i += 128u) {
    const float wv = p.has_w != 0u ? wt[p.w_off / 4u + i] : 1.0;
    const float bv = p.has_b != 0u ? bias[p.b_off / 4u + i] : 0.0;
    y[yb + i] = (x[xb + i] - mean) * r * wv + bv;
  }
}
