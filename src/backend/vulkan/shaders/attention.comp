#version 450
// Causal (optionally sliding-window, or full) attention with grouped-query heads over an f32, f16
// or q8_0 KV cache, as cpu::AttentionProblem describes it. One workgroup per (query t, head h)
// walks the visible keys in chunks of 64 with an online softmax (running max and sum, rescaled
// per chunk), so no score row is ever stored: each thread scores one key of the chunk, then each
// thread accumulates the chunk's weighted values for up to 4 of the head's dimensions.
// variants: f32=KV_F32 f16=KV_F16 q8_0=KV_Q8_0

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer QBuf { float q[]; };
layout(std430, binding = 1) readonly buffer KBuf { uint kw[]; };
layout(std430, binding = 2) readonly buffer VBuf { uint vw[]; };
layout(std430, binding = 3) writeonly buffer OBuf { float o[]; };

layout(push_constant) uniform Params {
  uint q_off, k_off, v_off, o_off;  // bytes from each binding's start (filled by the dispatcher)
  uint tq, tk, n_head, n_kv_head, d;
  uint ldq, ldo;  // elements
  uint ldk, ldv, head_bytes;  // bytes: K/V row strides, one head's row
  uint pos0, window, causal;
  float scale;
} p;

// Element e of the head row starting at byte rb of a K or V buffer (`words`).
#define KV_READER(NAME, words)                                                   \
  float NAME(uint rb, uint e) {                                                 \
    KV_BODY(words)                                                              \
  }

#if defined(KV_F32)
#define KV_BODY(words) return uintBitsToFloat(words[(rb >> 2) + e]);
#elif defined(KV_F16)
#define KV_BODY(words)                                                          \
  const uint at = rb + 2u * e;                                                  \
  return unpackHalf2x16((words[at >> 2] >> ((at & 2u) * 8u)) & 0xFFFFu).x;
#elif defined(KV_Q8_0)
#define KV_BODY(words)                                                          \
  const uint bb = rb + (e / 32u) * 34u, at = bb + 2u + e % 32u;                 \
  const float dq = unpackHalf2x16((words[bb >> 2] >> ((bb & 2u) * 8u)) & 0xFFFFu).x; \
  const int qv = int(((words[at >> 2] >> ((at & 3u) * 8u)) & 0xFFu) << 24) >> 24; \
  return dq * float(qv);
#else
#error "attention.comp needs KV_F32, KV_F16 or KV_Q8_0"
#endif

KV_READER(k_at, kw)
KV_READER(v_at, vw)

shared float qs[256];
shared float ps[64];
shared float red[64];

float reduce_max(float v) {
  const uint tid = gl_LocalInvocationID.x;
  red[tid] = v;
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s) red[tid] = max(red[tid], red[tid + s]);
    barrier();
  }
  const float r = red[0];
  barrier();
  return r;
}

float reduce_sum(float v) {
  const uint tid = gl_LocalInvocationID.x;
  red[tid] = v;
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s) red[tid] += red[tid + s];
    barrier();
  }
  const float r = red[0];
  barrier();
  return r;
}

void main() {
  const uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (g >= p.tq * p.n_head) return;
  const uint tid = gl_LocalInvocationID.x;
  const uint t = g / p.n_head, h = g % p.n_head;
  const uint kh = h / (p.n_head / p.n_kv_head);
  const uint head_bytes = p.head_bytes;
  const uint pos = p.pos0 + t;
  // Visible keys: j <= pos when causal, j > pos - window when windowed.
  const uint j_lo = p.window > 0u && pos + 1u > p.window ? pos + 1u - p.window : 0u;
  const uint j_hi = p.causal != 0u ? min(p.tk, pos + 1u) : p.tk;

  for (uint e = tid; e < p.d; e += 64u) qs[e] = q[p.q_off / 4u + t * p.ldq + h * p.d + e];
  barrier();

  const float neg_inf = uintBitsToFloat(0xFF800000u);
  float m = neg_inf, l = 0.0;
  float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
  for (uint c0 = j_lo; c0 < j_hi; c0 += 64u) {
    const uint j = c0 + tid;
    float s = neg_inf;
    if (j < j_hi) {
      const uint rb = p.k_off + j * p.ldk + kh * head_bytes;
      float dot = 0.0;
      for (uint e = 0u; e < p.d; ++e) dot += qs[e] * k_at(rb, e);
      s = dot * p.scale;
    }
    const float m_new = max(m, reduce_max(s));  // finite: the chunk has at least one key
    const float alpha = exp(m - m_new);         // 0 on the first chunk (m = -inf)
    const float pj = j < j_hi ? exp(s - m_new) : 0.0;
    ps[tid] = pj;
    l = l * alpha + reduce_sum(pj);  // its barriers also publish ps
    const uint n_keys = min(64u, j_hi - c0);
    for (uint r = 0u; r < 4u; ++r) {
      const uint e = tid + 64u * r;
      if (e >= p.d) break;
      float sum = 0.0;
      for (uint jj = 0u; jj < n_keys; ++jj)
        sum += ps[jj] * v_at(p.v_off + (c0 + jj) * p.ldv + kh * head_bytes, e);
      acc[r] = acc[r] * alpha + sum;
    }
    m = m_new;
    barrier();  // ps is rewritten by the next chunk
  }
  for (uint r = 0u; r < 4u; ++r) {
    const uint e = tid + 64u * r;
    if (e >= p.d) break;
    o[p.o_off / 4u + t * p.ldo + h * p.d + e] = l > 0.0 ? acc[r] / l : 0.0;
  }
}
