#version 450
// F.interpolate(scale_factor=2, mode="nearest") of planes [planes, h, w] into [planes, 2h, 2w]:
// one thread per output value.

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint x_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint total, h, w;   // total = planes * 4 * h * w
} p;

void main() {
  const uint o = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 128u +
                 gl_LocalInvocationID.x;
  if (o >= p.total) return;
  const uint w2 = 2u * p.w, plane_out = 4u * p.h * p.w;
  const uint plane = o / plane_out, rem = o % plane_out;
  const uint oy = rem / w2, ox = rem % w2;
  y[p.y_off / 4u + o] = x[p.x_off / 4u + plane * p.h * p.w + (oy / 2u) * p.w + ox / 2u];
}
