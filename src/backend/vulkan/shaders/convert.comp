#version 450
// dst rows = src rows (f32) written as f32, f16 or q8_0: the KV cache write. One thread per 32
// values (one q8_0 block). Rows of f16/q8_0 need not start on a 4-byte boundary, so 8- and 16-bit
// fields are written with atomic and/or on their word: neighbouring threads share boundary words.
// Encoding repeats the CPU's (core/half.h: round to nearest even; backend/cpu/quant.cpp: q8_0
// with d = amax / 127 and rounding half away from zero).
// variants: f32=TO_F32 f16=TO_F16 q8_0=TO_Q8_0

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer SrcBuf { float src[]; };
layout(std430, binding = 1) buffer DstBuf { uint dw[]; };

layout(push_constant) uniform Params {
  uint src_off, dst_off;  // bytes from each binding's start (filled by the dispatcher)
  uint rows, n;
  uint ld_src;  // elements
  uint ld_dst;  // bytes
} p;

void store8(uint o, uint v) {
  const uint sh = (o & 3u) * 8u;
  atomicAnd(dw[o >> 2], ~(0xFFu << sh));
  atomicOr(dw[o >> 2], (v & 0xFFu) << sh);
}

void store16(uint o, uint v) {  // o is even
  const uint sh = (o & 2u) * 8u;
  atomicAnd(dw[o >> 2], ~(0xFFFFu << sh));
  atomicOr(dw[o >> 2], (v & 0xFFFFu) << sh);
}

// IEEE binary16 bits of f, rounded to nearest even (NaN stays NaN, overflow gives infinity).
uint f16_bits(float f) {
  const uint x = floatBitsToUint(f);
  const uint sign = (x >> 16) & 0x8000u;
  const uint a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | ((a >> 13) & 0x3FFu);
  if (a >= 0x477FF000u) return sign | 0x7C00u;
  if (a < 0x38800000u) {  // subnormal or zero
    if (a < 0x33000001u) return sign;
    const uint e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
    uint r = m >> shift;
    const uint rem = m & ((1u << shift) - 1u), half_ulp = 1u << (shift - 1u);
    if (rem > half_ulp || (rem == half_ulp && (r & 1u) != 0u)) ++r;
    return sign | r;
  }
  uint r = (a - 0x38000000u) >> 13;
  const uint rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) ++r;
  return sign | r;
}

int round_half_away(float v) {
  v = -128.0 < v ? v : 0.0;  // NaN becomes 0
  v = v < 128.0 ? v : 127.0;
  int i = int(v);
  const float frac = v - float(i);
  if (frac >= 0.5) ++i;
  if (frac <= -0.5) --i;
  return i;
}

void main() {
  const uint chunks = (p.n + 31u) / 32u;
  const uint g = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u +
                 gl_LocalInvocationID.x;
  if (g >= p.rows * chunks) return;
  const uint row = g / chunks, c = g % chunks;
  const uint sb = p.src_off / 4u + row * p.ld_src + c * 32u;
  const uint count = min(32u, p.n - c * 32u);
  const uint rb = p.dst_off + row * p.ld_dst;
#if defined(TO_F32)
  for (uint l = 0u; l < count; ++l) dw[(rb >> 2) + c * 32u + l] = floatBitsToUint(src[sb + l]);
#elif defined(TO_F16)
  for (uint l = 0u; l < count; ++l) store16(rb + 2u * (c * 32u + l), f16_bits(src[sb + l]));
#elif defined(TO_Q8_0)
  float amax = 0.0;
  for (uint l = 0u; l < 32u; ++l) amax = max(amax, abs(src[sb + l]));
  const float d = amax / 127.0;
  const float id = d != 0.0 ? 1.0 / d : 0.0;
  const uint bb = rb + c * 34u;
  store16(bb, f16_bits(d));
  for (uint l = 0u; l < 32u; ++l) store8(bb + 2u + l, uint(round_half_away(src[sb + l] * id)));
#else
#error "convert.comp needs TO_F32, TO_F16 or TO_Q8_0"
#endif
}
