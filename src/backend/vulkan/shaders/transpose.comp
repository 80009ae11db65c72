#version 450
// y[c, r] = x[r, c] + bias[c] for r < rows, c < cols (x rows at ldx floats, y rows at ldy): a
// convolution's [pixels, C_out] product into channels-first [C_out, pixels] with its bias, or an
// attention head's V [T, d] into the [d, T] rows matmul reads. 32 x 32 tiles through shared
// memory, so both the reads and the writes run along rows.

layout(local_size_x = 32, local_size_y = 4) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer BBuf { float bias[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, b_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, cols, ldx, ldy, has_bias;
} p;

shared float tile[32][33];  // 33: no bank conflicts on the transposed read

void main() {
  const uint r0 = gl_WorkGroupID.y * 32u, c0 = gl_WorkGroupID.x * 32u;
  const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  for (uint k = ty; k < 32u; k += 4u) {
    const uint r = r0 + k, c = c0 + tx;
    tile[k][tx] = r < p.rows && c < p.cols ? x[p.x_off / 4u + r * p.ldx + c] : 0.0;
  }
  barrier();
  for (uint k = ty; k < 32u; k += 4u) {
    const uint c = c0 + k, r = r0 + tx;
    if (c < p.cols && r < p.rows) {
      const float b = p.has_bias != 0u ? bias[p.b_off / 4u + c] : 0.0;
      y[p.y_off / 4u + c * p.ldy + r] = tile[tx][k] + b;
    }
  }
}
