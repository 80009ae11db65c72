#version 450
// One tile of a convolution's unfolded input: cols[p, j] for output pixels p0 + p (p < np) of one
// channels-first sample x [C, H, W], with j = (c * kh + ky) * kw + kx, the order in which a
// weight [C_out, C, kh, kw] flattens, so the tile multiplies the weight rows as they are. Taps in
// the padding read zero. One thread per value.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) writeonly buffer CBuf { float cols[]; };

layout(push_constant) uniform Params {
  uint x_off, c_off;  // bytes from each binding's start (filled by the dispatcher)
  uint h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, w_out, p0, np, kk;
} p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 128u +
                 gl_LocalInvocationID.x;
  if (i >= p.np * p.kk) return;
  const uint pix = p.p0 + i / p.kk, j = i % p.kk;
  const uint taps = p.kh * p.kw;
  const uint c = j / taps, t = j % taps;
  // Signed: a tap left of or above the image (in the padding) goes negative.
  const int iy = int((pix / p.w_out) * p.stride_h + (t / p.kw) * p.dil_h) - int(p.pad_h);
  const int ix = int((pix % p.w_out) * p.stride_w + (t % p.kw) * p.dil_w) - int(p.pad_w);
  float v = 0.0;
  if (iy >= 0 && ix >= 0 && iy < int(p.h) && ix < int(p.w))
    v = x[p.x_off / 4u + (c * p.h + uint(iy)) * p.w + uint(ix)];
  cols[p.c_off / 4u + i] = v;
}
