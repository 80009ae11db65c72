#version 450
// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w: one workgroup per row, a shared-memory
// tree reduction of the sum of squares (any subgroup size).

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float wt[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, w_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, n, has_w;
  float eps;
} p;

shared float partial[128];

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint xb = p.x_off / 4u + row * p.n, yb = p.y_off / 4u + row * p.n, wb = p.w_off / 4u;
  float ss = 0.0;
  for (uint i = tid; i < p.n; i += 128u) ss += x[xb + i] * x[xb + i];
  partial[tid] = ss;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (tid < s) partial[tid] += partial[tid + s];
    barrier();
  }
  const float r = inversesqrt(partial[0] / float(p.n) + p.eps);
  for (uint i = tid; i < p.n; i += 128u)
    y[yb + i] = x[xb + i] * r * (p.has_w != 0u ? wt[wb + i] : 1.0);
}
