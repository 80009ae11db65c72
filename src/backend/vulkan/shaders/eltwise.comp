#version 450
// Element-wise ops on f32, one thread per output element:
//   op 0: y = a + b[i % nb]   op 1: y = a * b[i % nb]   op 2: y = a * s   op 3: y = silu(a) * b

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer ABuf { float a[]; };
layout(std430, binding = 1) readonly buffer BBuf { float b[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Params {
  uint a_off, b_off, y_off;  // bytes from each binding's start (filled by the dispatcher)
  uint n, nb, op;
  float s;
} p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u +
                 gl_LocalInvocationID.x;
  if (i >= p.n) return;
  const float av = a[p.a_off / 4u + i];
  float r;
  if (p.op == 0u) {
    r = av + b[p.b_off / 4u + i % p.nb];
  } else if (p.op == 1u) {
    r = av * b[p.b_off / 4u + i % p.nb];
  } else if (p.op == 2u) {
    r = av * p.s;
  } else {
    r = av / (1.0 + exp(-av)) * b[p.b_off / 4u + i];
  }
  y[p.y_off / 4u + i] = r;
}
