#version 450
// y[r, :] = softmax(x[r, :] * scale + mask[r % mask_rows, :]): one workgroup per row; max, then
// sum of exponentials, each a shared-memory reduction. A row whose values are all -inf gives zeros.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer MBuf { float mask[]; };
layout(std430, binding = 2) buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, m_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, n, mask_rows, has_mask;
  float scale;
} p;

shared float partial[128];

float value(uint xb, uint mb, uint i) {
  return x[xb + i] * p.scale + (p.has_mask != 0u ? mask[mb + i] : 0.0);
}

void main() {
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint xb = p.x_off / 4u + row * p.n, yb = p.y_off / 4u + row * p.n;
  const uint mb = p.has_mask != 0u ? p.m_off / 4u + (row % p.mask_rows) * p.n : 0u;
  const float neg_inf = uintBitsToFloat(0xFF800000u);
  float mx = neg_inf;
  for (uint i = tid; i < p.n; i += 128u) mx = max(mx, value(xb, mb, i));
  partial[tid] = mx;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (tid < s) partial[tid] = max(partial[tid], partial[tid + s]);
    barrier();
  }
  mx = partial[0];
  barrier();
  const bool all_masked = isinf(mx) && mx < 0.0;
  float sum = 0.0;
  for (uint i = tid; i < p.n; i += 128u) {
    const float e = all_masked ? 0.0 : exp(value(xb, mb, i) - mx);
    y[yb + i] = e;
    sum += e;
  }
  partial[tid] = sum;
  barrier();
  for (uint s = 64u; s > 0u; s >>= 1) {
    if (tid < s) partial[tid] += partial[tid + s];
    barrier();
  }
  const float total = partial[0];
  // Each thread rescales the entries it wrote itself, so no barrier is needed on y.
  for (uint i = tid; i < p.n; i += 128u) y[yb + i] = total > 0.0 ? y[yb + i] / total : 0.0;
}
