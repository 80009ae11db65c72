#version 450
// Rotary embedding of x [T, n_head, head_dim] into y (which may be x), one thread per rotated
// pair or copied dimension of each head. Token t's row starts at t * ldx (x) and t * ldy (y)
// floats, so q and k may be column ranges of one fused buffer. cs holds [T, n_dims / 2, 2]:
// (cos, sin) of each pair per position, as nn::rope_table writes it on the host (every scaling
// rule lands there). Pairs are (2i, 2i+1) (neox = 0) or (i, i + n_dims / 2) (neox = 1).

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer CsBuf { float cs[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, cs_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint T, n_head, head_dim, n_dims, neox, ldx, ldy;
} p;

void main() {
  const uint half_dims = p.n_dims / 2u, slots = half_dims + (p.head_dim - p.n_dims);
  const uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u +
                 gl_LocalInvocationID.x;
  if (g >= p.T * p.n_head * slots) return;
  const uint q = g % slots, head = g / slots, t = head / p.n_head, h = head % p.n_head;
  const uint xb = p.x_off / 4u + t * p.ldx + h * p.head_dim;
  const uint yb = p.y_off / 4u + t * p.ldy + h * p.head_dim;
  if (q >= half_dims) {
    const uint d = p.n_dims + (q - half_dims);
    y[yb + d] = x[xb + d];
    return;
  }
  const uint ia = p.neox != 0u ? q : 2u * q, ib = p.neox != 0u ? q + half_dims : 2u * q + 1u;
  const uint cb = p.cs_off / 4u + t * 2u * half_dims;
  const float c = cs[cb + 2u * q], s = cs[cb + 2u * q + 1u];
  const float xa = x[xb + ia], xv = x[xb + ib];
  y[yb + ia] = xa * c - xv * s;
  y[yb + ib] = xa * s + xv * c;
}
