#version 450
// torch.nn.GroupNorm on channels-first samples [batch, C, spatial] (optionally followed by SiLU):
// one workgroup per (sample, group), whose cg * spatial values are contiguous. The mean, then the
// variance about it (two passes, as the CPU kernel), by shared-memory reductions; then
// y = (x - mean) * (r * w[c]) + b[c], the CPU's order of operations.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer WBuf { float wt[]; };
layout(std430, binding = 2) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 3) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, w_off, b_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint tasks, groups, cg, spatial, has_w, has_b, silu;
  float eps;
} p;

shared float partial[128];

float group_sum(float v) {
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
  const uint task = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (task >= p.tasks) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint n = p.cg * p.spatial;
  const uint xb = p.x_off / 4u + task * n, yb = p.y_off / 4u + task * n;
  float s = 0.0;
  for (uint i = tid; i < n; i += 128u) s += x[xb + i];
  const float mean = group_sum(s) / float(n);
  float v = 0.0;
  for (uint i = tid; i < n; i += 128u) v += (x[xb + i] - mean) * (x[xb + i] - mean);
  const float r = 1.0 / sqrt(group_sum(v) / float(n) + p.eps);
  const uint c0 = (task % p.groups) * p.cg;
  for (uint i = tid; i < n; i += 128u) {
    const uint c = c0 + i / p.spatial;
    const float scale = r * (p.has_w != 0u ? wt[p.w_off / 4u + c] : 1.0);
    const float shift = p.has_b != 0u ? bias[p.b_off / 4u + c] : 0.0;
    const float t = (x[xb + i] - mean) * scale + shift;
    y[yb + i] = p.silu != 0u ? t / (1.0 + exp(-t)) : t;
  }
}
