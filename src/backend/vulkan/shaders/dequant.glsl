// Weight decoding shared by matvec.comp and get_rows.comp: decode32(rb, c, v) writes the 32
// values of chunk c (elements 32c .. 32c+31) of the weight row starting at byte rb of w[].
// The type comes from one W_* define. Blocks are read from the raw GGUF bytes (see
// core/quant_blocks.h for the layouts); most block sizes are not multiples of 4, so every field is
// read through byte addressing into the uint array. Each value is computed with the CPU reference
// decoder's operations in the same order (backend/cpu/quant.cpp, quant_k.cpp).

uint byte_at(uint o) {
  return (w[o >> 2] >> ((o & 3u) * 8u)) & 0xFFu;
}
int i8_at(uint o) {
  return int(byte_at(o) << 24) >> 24;
}
// o is even: fp16 fields and the Q5 high-bit words sit at even offsets in every block type.
uint u16_at(uint o) {
  return (w[o >> 2] >> ((o & 2u) * 8u)) & 0xFFFFu;
}
uint u32_at(uint o) {
  return u16_at(o) | (u16_at(o + 2u) << 16);
}
float f16_at(uint o) {
  return unpackHalf2x16(u16_at(o)).x;
}

#if defined(W_IQ4_NL) || defined(W_IQ4_XS)
const float kvalues_iq4nl[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0,
                                          -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#endif

#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
const uint BLOCK_ELEMS = 32u;
#elif defined(W_Q4_0) || defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1) || \
    defined(W_Q8_0) || defined(W_IQ4_NL)
const uint BLOCK_ELEMS = 32u;
#else
const uint BLOCK_ELEMS = 256u;
#endif

// Six-bit scale and min of sub-block j of a Q4_K/Q5_K block whose 12 scale bytes start at sb.
void k_scale_min(uint sb, uint j, out float sc, out float mn) {
  if (j < 4u) {
    sc = float(byte_at(sb + j) & 63u);
    mn = float(byte_at(sb + j + 4u) & 63u);
  } else {
    sc = float((byte_at(sb + j + 4u) & 15u) | ((byte_at(sb + j - 4u) >> 6) << 4));
    mn = float((byte_at(sb + j + 4u) >> 4) | ((byte_at(sb + j) >> 6) << 4));
  }
}

// Signed six-bit scale idx (0..15) of a Q3_K block whose 12 scale bytes start at sb.
int q3_scale(uint sb, uint idx) {
  uint lo = idx < 8u ? (byte_at(sb + idx) & 15u) : (byte_at(sb + idx - 8u) >> 4);
  uint hi = (byte_at(sb + 8u + idx % 4u) >> (2u * (idx / 4u))) & 3u;
  return int(lo | (hi << 4)) - 32;
}

#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
// Float rows may end mid-chunk (a convolution's k = channels x kernel area, say): values l < count
// of chunk c, zeros after, without reading past the row.
#define FLOAT_WEIGHTS 1
void decode_tail(uint rb, uint c, uint count, out float v[32]) {
  for (uint l = 0u; l < 32u; ++l) {
    const uint e = c * 32u + l;
    if (l >= count) {
      v[l] = 0.0;
      continue;
    }
#if defined(W_F32)
    v[l] = uintBitsToFloat(w[(rb >> 2) + e]);
#elif defined(W_F16)
    v[l] = f16_at(rb + 2u * e);
#else
    v[l] = uintBitsToFloat(u16_at(rb + 2u * e) << 16);
#endif
  }
}
#endif

void decode32(uint rb, uint c, out float v[32]) {
#if defined(W_F32)
  uint base = (rb >> 2) + c * 32u;
  for (uint l = 0u; l < 32u; ++l) v[l] = uintBitsToFloat(w[base + l]);
#elif defined(W_F16)
  uint base = rb + c * 64u;
  for (uint l = 0u; l < 16u; ++l) {
    vec2 h = unpackHalf2x16(u32_at(base + 4u * l));
    v[2u * l] = h.x;
    v[2u * l + 1u] = h.y;
  }
#elif defined(W_BF16)
  uint base = rb + c * 64u;
  for (uint l = 0u; l < 16u; ++l) {
    uint pr = u32_at(base + 4u * l);
    v[2u * l] = uintBitsToFloat(pr << 16);
    v[2u * l + 1u] = uintBitsToFloat(pr & 0xFFFF0000u);
  }
#elif defined(W_Q4_0)
  uint bb = rb + c * 18u;
  float d = f16_at(bb);
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(bb + 2u + l);
    v[l] = d * float(int(q & 15u) - 8);
    v[l + 16u] = d * float(int(q >> 4) - 8);
  }
#elif defined(W_Q4_1)
  uint bb = rb + c * 20u;
  float d = f16_at(bb), m = f16_at(bb + 2u);
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(bb + 4u + l);
    v[l] = d * float(q & 15u) + m;
    v[l + 16u] = d * float(q >> 4) + m;
  }
#elif defined(W_Q5_0)
  uint bb = rb + c * 22u;
  float d = f16_at(bb);
  uint qh = u32_at(bb + 2u);
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(bb + 6u + l);
    v[l] = d * float(int((q & 15u) | (((qh >> l) & 1u) << 4)) - 16);
    v[l + 16u] = d * float(int((q >> 4) | (((qh >> (l + 16u)) & 1u) << 4)) - 16);
  }
#elif defined(W_Q5_1)
  uint bb = rb + c * 24u;
  float d = f16_at(bb), m = f16_at(bb + 2u);
  uint qh = u32_at(bb + 4u);
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(bb + 8u + l);
    v[l] = d * float((q & 15u) | (((qh >> l) & 1u) << 4)) + m;
    v[l + 16u] = d * float((q >> 4) | (((qh >> (l + 16u)) & 1u) << 4)) + m;
  }
#elif defined(W_Q8_0)
  uint bb = rb + c * 34u;
  float d = f16_at(bb);
  for (uint l = 0u; l < 32u; ++l) v[l] = d * float(i8_at(bb + 2u + l));
#elif defined(W_IQ4_NL)
  uint bb = rb + c * 18u;
  float d = f16_at(bb);
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(bb + 2u + l);
    v[l] = d * kvalues_iq4nl[q & 15u];
    v[l + 16u] = d * kvalues_iq4nl[q >> 4];
  }
#elif defined(W_Q2_K)
  // 84-byte block: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
  uint bb = rb + (c / 8u) * 84u, j = c % 8u;
  float d = f16_at(bb + 80u), dmin = f16_at(bb + 82u);
  for (uint l = 0u; l < 32u; ++l) {
    uint q = (byte_at(bb + 16u + 32u * (j / 4u) + l) >> (2u * (j % 4u))) & 3u;
    uint sc = byte_at(bb + 2u * j + l / 16u);
    v[l] = (d * float(sc & 15u)) * float(q) - dmin * float(sc >> 4);
  }
#elif defined(W_Q3_K)
  // 110-byte block: hmask[32], qs[64], scales[12], d.
  uint bb = rb + (c / 8u) * 110u, j = c % 8u;
  float d = f16_at(bb + 108u);
  for (uint l = 0u; l < 32u; ++l) {
    int lo = int((byte_at(bb + 32u + 32u * (j / 4u) + l) >> (2u * (j % 4u))) & 3u);
    uint hi = (byte_at(bb + l) >> j) & 1u;
    float dl = d * float(q3_scale(bb + 96u, 2u * j + l / 16u));
    v[l] = dl * float(lo - (hi != 0u ? 0 : 4));
  }
#elif defined(W_Q4_K)
  // 144-byte block: d, dmin, scales[12], qs[128].
  uint bb = rb + (c / 8u) * 144u, j = c % 8u;
  float d = f16_at(bb), dmin = f16_at(bb + 2u), sc, mn;
  k_scale_min(bb + 4u, j, sc, mn);
  float dl = d * sc, ml = dmin * mn;
  uint qs = bb + 16u + 32u * (j / 2u), shift = 4u * (j % 2u);
  for (uint l = 0u; l < 32u; ++l) v[l] = dl * float((byte_at(qs + l) >> shift) & 15u) - ml;
#elif defined(W_Q5_K)
  // 176-byte block: d, dmin, scales[12], qh[32], qs[128].
  uint bb = rb + (c / 8u) * 176u, j = c % 8u;
  float d = f16_at(bb), dmin = f16_at(bb + 2u), sc, mn;
  k_scale_min(bb + 4u, j, sc, mn);
  float dl = d * sc, ml = dmin * mn;
  uint qs = bb + 48u + 32u * (j / 2u), shift = 4u * (j % 2u);
  for (uint l = 0u; l < 32u; ++l) {
    uint q = ((byte_at(qs + l) >> shift) & 15u) | (((byte_at(bb + 16u + l) >> j) & 1u) << 4);
    v[l] = dl * float(q) - ml;
  }
#elif defined(W_Q6_K)
  // 210-byte block: ql[128], qh[64], scales[16] (int8), d.
  uint bb = rb + (c / 8u) * 210u, j = c % 8u;
  float d = f16_at(bb + 208u);
  uint h = j / 4u, s = j % 4u;
  for (uint l = 0u; l < 32u; ++l) {
    uint lo = (byte_at(bb + 64u * h + 32u * (s % 2u) + l) >> (4u * (s / 2u))) & 15u;
    uint hi = (byte_at(bb + 128u + 32u * h + l) >> (2u * s)) & 3u;
    float dl = d * float(i8_at(bb + 192u + 2u * j + l / 16u));
    v[l] = dl * float(int(lo | (hi << 4)) - 32);
  }
#elif defined(W_IQ4_XS)
  // 136-byte block: d, scales_h, scales_l[4], qs[128].
  uint bb = rb + (c / 8u) * 136u, j = c % 8u;
  float d = f16_at(bb);
  uint ls = ((byte_at(bb + 4u + j / 2u) >> (4u * (j % 2u))) & 15u) |
            (((u16_at(bb + 2u) >> (2u * j)) & 3u) << 4);
  float dl = d * float(int(ls) - 32);
  uint qs = bb + 8u + 16u * j;
  for (uint l = 0u; l < 16u; ++l) {
    uint q = byte_at(qs + l);
    v[l] = dl * kvalues_iq4nl[q & 15u];
    v[l + 16u] = dl * kvalues_iq4nl[q >> 4];
  }
#else
#error "dequant.glsl needs one W_* define"
#endif
}

// Chunk c of a row of `len` values: decode32, or decode_tail for a float row's partial last chunk.
void decode_chunk(uint rb, uint c, uint len, out float v[32]) {
#if defined(FLOAT_WEIGHTS)
  const uint count = min(32u, len - c * 32u);
  if (count < 32u) {
    decode_tail(rb, c, count, v);
    return;
  }
#endif
  decode32(rb, c, v);
}
