// The C++ entries of the kernels: check what would make a shader read or write out of bounds,
// fill the shader's push constants and record one dispatch (shaders/*.comp hold the math).
#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "backend/vulkan/kernel_dispatch.h"
#include "backend/vulkan/vulkan_impl.h"
#include "core/error.h"

namespace eight::vulkan {
namespace {

using detail::Arg;
using detail::Context;
using detail::device_of;
using detail::grid;
using detail::need;
using detail::need_f32;
using detail::run;
using detail::u32;

// Weight types with a matvec/get_rows variant, and the variant suffix (shaders/dequant.glsl).
const char* weight_variant(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::Q4_0:
      return "q4_0";
    case DType::Q4_1:
      return "q4_1";
    case DType::Q5_0:
      return "q5_0";
    case DType::Q5_1:
      return "q5_1";
    case DType::Q8_0:
      return "q8_0";
    case DType::Q2_K:
      return "q2_k";
    case DType::Q3_K:
      return "q3_k";
    case DType::Q4_K:
      return "q4_k";
    case DType::Q5_K:
      return "q5_k";
    case DType::Q6_K:
      return "q6_k";
    case DType::IQ4_NL:
      return "iq4_nl";
    case DType::IQ4_XS:
      return "iq4_xs";
    default:
      return nullptr;
  }
}

// Up to this many rows of x, matmul runs matvec.comp (one workgroup per output row, the decode
// path); past it, matmul_tiled.comp. A first guess: to be set from benchmarks on real GPUs.
constexpr int64_t kMatvecMaxRows = 8;

// From this many keys on, attention without a causal mask over f32 K/V runs as matmul + softmax
// over chunks of queries (attention_chunked.cpp) instead of attention.comp. On lavapipe the
// chunked route took 205 ms against 822 ms at tq = tk = 1024, d = 64, and 359 against 771 ms for
// 10 heads over 77 keys (the UNet's cross-attention); to be checked on real GPUs.
constexpr int64_t kChunkedAttentionMinKeys = 64;

// Row lengths the shaders take: any for the float types (their last 32-value chunk may be
// partial), whole blocks for the quantized ones (32 values, 256 for the K-quants and IQ4_XS).
int64_t weight_granule(DType t) {
  return dtype_block_size(t);
}

}  // namespace

bool matmul_weight_type_supported(DType type) {
  return weight_variant(type) != nullptr;
}

void matmul(const MatmulArgs& a) {
  const char* op = "matmul";
  const char* variant = weight_variant(a.w_type);
  check(variant != nullptr, "[vulkan] matmul: no kernel for weight type ", dtype_name(a.w_type));
  check(a.m >= 0 && a.n >= 0 && a.k >= 0, "[vulkan] matmul: negative size m=", a.m, " n=", a.n,
        " k=", a.k);
  check(a.k % weight_granule(a.w_type) == 0, "[vulkan] matmul: k=", a.k, " is not a multiple of ",
        weight_granule(a.w_type), " (", dtype_name(a.w_type), ")");
  if (a.m == 0 || a.n == 0) return;
  check(a.ldx >= a.k && a.ldy >= a.n && a.ldw >= dtype_row_bytes(a.w_type, a.k),
        "[vulkan] matmul: strides ldx=", a.ldx, " ldy=", a.ldy, " ldw=", a.ldw,
        " below the row sizes");
  check(a.w.offset % 2 == 0 && a.ldw % 2 == 0 &&
            (a.w_type != DType::F32 || (a.w.offset % 4 == 0 && a.ldw % 4 == 0)),
        "[vulkan] matmul: weight offset ", a.w.offset, " / row stride ", a.ldw, " misaligned for ",
        dtype_name(a.w_type));
  need_f32(op, "x", a.x, static_cast<uint64_t>((a.m - 1) * a.ldx + a.k));
  need(op, "w", a.w, (a.n - 1) * a.ldw + dtype_row_bytes(a.w_type, a.k));
  need_f32(op, "y", a.y, static_cast<uint64_t>((a.m - 1) * a.ldy + a.n));
  struct {
    uint32_t x_off, w_off, y_off, m, n, k, ldx, ldw, ldy;
  } push{0,
         0,
         0,
         u32(op, a.m),
         u32(op, a.n),
         u32(op, a.k),
         u32(op, a.ldx),
         u32(op, static_cast<int64_t>(a.ldw)),
         u32(op, a.ldy)};
  const std::initializer_list<Arg> args = {
      {a.x.buffer, a.x.offset}, {a.w.buffer, a.w.offset}, {a.y.buffer, a.y.offset}};
  const auto& limits = Context::get(device_of(op, a.w)).properties().limits;
  // The tiled shader needs 256 invocations and 16.5 KiB of shared memory, above Vulkan's
  // guaranteed minimums (128, 16 KiB) though far below what desktop GPUs have.
  const bool tiled_fits = limits.maxComputeWorkGroupInvocations >= 256 &&
                          limits.maxComputeWorkGroupSize[0] >= 256 &&
                          limits.maxComputeSharedMemorySize >= 2 * 64 * 33 * sizeof(float);
  if (a.m > kMatvecMaxRows && tiled_fits) {
    // Prompts: 64 x 64 output tiles, each weight decoded once per 64 rows of x.
    constexpr int64_t kTile = 64;  // TILE in matmul_tiled.comp
    run(device_of(op, a.w), std::string("matmul_tiled_") + variant, args, push,
        u32(op, (a.n + kTile - 1) / kTile), u32(op, (a.m + kTile - 1) / kTile));
    return;
  }
  const auto g = grid(static_cast<uint64_t>(a.n));
  constexpr int64_t kRowsPerGroup = 4;  // ROWS in matvec.comp
  run(device_of(op, a.w), std::string("matvec_") + variant, args, push, g[0], g[1],
      u32(op, (a.m + kRowsPerGroup - 1) / kRowsPerGroup));
}

void rms_norm(BufferRef x, BufferRef w, BufferRef y, int64_t rows, int64_t n, float eps) {
  const char* op = "rms_norm";
  if (rows == 0 || n == 0) return;
  const uint64_t total = static_cast<uint64_t>(rows) * static_cast<uint64_t>(n);
  need_f32(op, "x", x, total);
  need_f32(op, "y", y, total);
  if (w.buffer) need_f32(op, "w", w, static_cast<uint64_t>(n));
  struct {
    uint32_t x_off, w_off, y_off, rows, n, has_w;
    float eps;
  } push{0, 0, 0, u32(op, rows), u32(op, n), w.buffer ? 1u : 0u, eps};
  const BufferRef wb = w.buffer ? w : x;  // unused binding when there is no weight
  const auto g = grid(static_cast<uint64_t>(rows));
  run(device_of(op, x), "rms_norm",
      {{x.buffer, x.offset}, {wb.buffer, wb.offset}, {y.buffer, y.offset}}, push, g[0], g[1]);
}

void softmax(BufferRef x, BufferRef mask, int64_t mask_rows, BufferRef y, int64_t rows, int64_t n,
             float scale) {
  const char* op = "softmax";
  if (rows == 0 || n == 0) return;
  const uint64_t total = static_cast<uint64_t>(rows) * static_cast<uint64_t>(n);
  need_f32(op, "x", x, total);
  need_f32(op, "y", y, total);
  if (mask.buffer) {
    check(mask_rows > 0, "[vulkan] softmax: mask with ", mask_rows, " rows");
    need_f32(op, "mask", mask, static_cast<uint64_t>(mask_rows) * static_cast<uint64_t>(n));
  }
  struct {
    uint32_t x_off, m_off, y_off, rows, n, mask_rows, has_mask;
    float scale;
  } push{0,
         0,
         0,
         u32(op, rows),
         u32(op, n),
         mask.buffer ? u32(op, mask_rows) : 1u,
         mask.buffer ? 1u : 0u,
         scale};
  const BufferRef mb = mask.buffer ? mask : x;
  const auto g = grid(static_cast<uint64_t>(rows));
  run(device_of(op, x), "softmax",
      {{x.buffer, x.offset}, {mb.buffer, mb.offset}, {y.buffer, y.offset}}, push, g[0], g[1]);
}

namespace {

struct EltwisePush {
  uint32_t a_off, b_off, y_off, n, nb, op;
  float s;
};

void eltwise(const char* op, uint32_t code, BufferRef a, BufferRef b, BufferRef y, int64_t n,
             int64_t nb, float s) {
  if (n == 0) return;
  need_f32(op, "a", a, static_cast<uint64_t>(n));
  need_f32(op, "y", y, static_cast<uint64_t>(n));
  // b: nb values (ops 0, 1, 3), one per run of nb (9, 10: checked by the caller), or unread.
  const bool b_rows = code == 0 || code == 1 || code == 3, b_runs = code == 9 || code == 10;
  if (b_rows) need_f32(op, "b", b, static_cast<uint64_t>(nb));
  const BufferRef bb = b_rows || b_runs ? b : a;
  const auto g = grid((static_cast<uint64_t>(n) + 127) / 128);  // 128: eltwise.comp
  run(device_of(op, a), "eltwise",
      {{a.buffer, a.offset}, {bb.buffer, bb.offset}, {y.buffer, y.offset}},
      EltwisePush{0, 0, 0, u32(op, n), u32(op, std::max<int64_t>(nb, 1)), code, s}, g[0], g[1]);
}

}  // namespace

void swiglu(BufferRef gate, BufferRef up, BufferRef y, int64_t n) {
  eltwise("swiglu", 3, gate, up, y, n, n, 0.f);
}

void binary(BinaryOp op, BufferRef a, BufferRef b, BufferRef y, int64_t n, int64_t nb) {
  const char* name = op == BinaryOp::Add ? "add" : "mul";
  check(nb > 0 || n == 0, "[vulkan] ", name, ": broadcast length ", nb);
  eltwise(name, op == BinaryOp::Add ? 0 : 1, a, b, y, n, nb, 0.f);
}

void binary_per_row(BinaryOp op, BufferRef a, BufferRef b, BufferRef y, int64_t n, int64_t inner) {
  const char* name = op == BinaryOp::Add ? "add" : "mul";
  check(inner > 0 && n % inner == 0, "[vulkan] ", name, ": ", n, " values are not whole runs of ",
        inner);
  need_f32(name, "b", b, static_cast<uint64_t>(n / inner));
  eltwise(name, op == BinaryOp::Add ? 9 : 10, a, b, y, n, inner, 0.f);
}

void geglu(BufferRef x, BufferRef y, int64_t rows, int64_t n) {
  check(rows >= 0 && n >= 0, "[vulkan] geglu: ", rows, " rows of ", n);
  if (rows == 0 || n == 0) return;
  // x holds 2n values per row: eltwise checks the first half (n of its `a`), this the whole.
  need_f32("geglu", "x", x, static_cast<uint64_t>(rows) * static_cast<uint64_t>(2 * n));
  eltwise("geglu", 11, x, x, y, rows * n, n, 0.f);
}

void scale(BufferRef x, float s, BufferRef y, int64_t n) {
  eltwise("scale", 2, x, x, y, n, 1, s);
}

void unary(UnaryOp op, BufferRef x, BufferRef y, int64_t n) {
  const char* names[] = {"silu", "gelu", "gelu_tanh", "quick_gelu", "relu"};
  const auto i = static_cast<uint32_t>(op);
  eltwise(names[i], 4 + i, x, x, y, n, 1, 0.f);
}

void layer_norm(BufferRef x, BufferRef w, BufferRef b, BufferRef y, int64_t rows, int64_t n,
                float eps) {
  const char* op = "layer_norm";
  if (rows == 0 || n == 0) return;
  const uint64_t total = static_cast<uint64_t>(rows) * static_cast<uint64_t>(n);
  need_f32(op, "x", x, total);
  need_f32(op, "y", y, total);
  if (w.buffer) need_f32(op, "w", w, static_cast<uint64_t>(n));
  if (b.buffer) need_f32(op, "b", b, static_cast<uint64_t>(n));
  struct {
    uint32_t x_off, w_off, b_off, y_off, rows, n, has_w, has_b;
    float eps;
  } push{0, 0, 0, 0, u32(op, rows), u32(op, n), w.buffer ? 1u : 0u, b.buffer ? 1u : 0u, eps};
  const BufferRef wb = w.buffer ? w : x, bb = b.buffer ? b : x;
  const auto g = grid(static_cast<uint64_t>(rows));
  run(device_of(op, x), "layer_norm",
      {{x.buffer, x.offset}, {wb.buffer, wb.offset}, {bb.buffer, bb.offset}, {y.buffer, y.offset}},
      push, g[0], g[1]);
}

void argmax(BufferRef x, BufferRef out, int64_t rows, int64_t n) {
  const char* op = "argmax";
  check(n > 0 || rows == 0, "[vulkan] argmax: rows of ", n, " values");
  if (rows == 0) return;
  need_f32(op, "x", x, static_cast<uint64_t>(rows) * static_cast<uint64_t>(n));
  need_f32(op, "out", out, static_cast<uint64_t>(rows));
  struct {
    uint32_t x_off, out_off, rows, n;
  } push{0, 0, u32(op, rows), u32(op, n)};
  const auto g = grid(static_cast<uint64_t>(rows));
  run(device_of(op, x), "argmax", {{x.buffer, x.offset}, {out.buffer, out.offset}}, push, g[0],
      g[1]);
}

void get_rows(DType type, BufferRef table, size_t row_bytes, int64_t n_rows, BufferRef ids,
              BufferRef out, int64_t n_ids, int64_t n_cols) {
  const char* op = "get_rows";
  const char* variant = weight_variant(type);
  check(variant != nullptr, "[vulkan] get_rows: no kernel for type ", dtype_name(type));
  check(n_cols % weight_granule(type) == 0, "[vulkan] get_rows: ", n_cols,
        " columns is not a multiple of ", weight_granule(type), " (", dtype_name(type), ")");
  check(row_bytes >= dtype_row_bytes(type, n_cols) && row_bytes % 2 == 0 && table.offset % 2 == 0 &&
            (type != DType::F32 || (row_bytes % 4 == 0 && table.offset % 4 == 0)),
        "[vulkan] get_rows: row stride ", row_bytes, " / offset ", table.offset, " does not fit ",
        n_cols, " values of ", dtype_name(type));
  if (n_ids == 0 || n_cols == 0) return;
  if (n_rows > 0)
    need(op, "table", table, (n_rows - 1) * row_bytes + dtype_row_bytes(type, n_cols));
  need_f32(op, "ids", ids, static_cast<uint64_t>(n_ids));
  need_f32(op, "out", out, static_cast<uint64_t>(n_ids) * static_cast<uint64_t>(n_cols));
  struct {
    uint32_t w_off, ids_off, out_off, n_ids, n_cols, row_bytes, n_rows;
  } push{0,
         0,
         0,
         u32(op, n_ids),
         u32(op, n_cols),
         u32(op, static_cast<int64_t>(row_bytes)),
         u32(op, n_rows)};
  const auto g = grid(static_cast<uint64_t>(n_ids));
  run(device_of(op, table), std::string("get_rows_") + variant,
      {{table.buffer, table.offset}, {ids.buffer, ids.offset}, {out.buffer, out.offset}}, push,
      g[0], g[1]);
}

void copy(BufferRef src, BufferRef dst, size_t bytes) {
  need("copy", "src", src, bytes);
  need("copy", "dst", dst, bytes);
  check(src.buffer->device_index() == dst.buffer->device_index(),
        "[vulkan] copy: from vulkan:", src.buffer->device_index(),
        " to vulkan:", dst.buffer->device_index(), " (copies between devices go through the host)");
  if (bytes == 0) return;
  Context::get(src.buffer->device_index())
      .copy(*src.buffer, src.offset, *dst.buffer, dst.offset, bytes);
}

void convert_rows(BufferRef src, int64_t ld_src, DType dst_type, BufferRef dst, size_t ld_dst,
                  int64_t rows, int64_t n) {
  const char* op = "convert_rows";
  const char* variant = dst_type == DType::F32    ? "f32"
                        : dst_type == DType::F16  ? "f16"
                        : dst_type == DType::Q8_0 ? "q8_0"
                                                  : nullptr;
  check(variant != nullptr, "[vulkan] convert_rows: to ", dtype_name(dst_type),
        " (supported: f32, f16, q8_0)");
  check(n >= 0 && rows >= 0 && n % dtype_block_size(dst_type) == 0, "[vulkan] convert_rows: ", rows,
        " rows of ", n, " values (", dtype_name(dst_type), " needs a multiple of ",
        dtype_block_size(dst_type), ")");
  if (rows == 0 || n == 0) return;
  const size_t row_bytes = dtype_row_bytes(dst_type, n);
  const size_t align = dst_type == DType::F32 ? 4 : 2;
  check(ld_src >= n && ld_dst >= row_bytes && ld_dst % align == 0 && dst.offset % align == 0,
        "[vulkan] convert_rows: strides ", ld_src, " / ", ld_dst, " bytes or offset ", dst.offset,
        " do not fit rows of ", n, " ", dtype_name(dst_type));
  need_f32(op, "src", src, static_cast<uint64_t>((rows - 1) * ld_src + n));
  need(op, "dst", dst, static_cast<uint64_t>(rows - 1) * ld_dst + row_bytes);
  struct {
    uint32_t src_off, dst_off, rows, n, ld_src, ld_dst;
  } push{0, 0, u32(op, rows), u32(op, n), u32(op, ld_src), u32(op, static_cast<int64_t>(ld_dst))};
  const uint64_t threads = static_cast<uint64_t>(rows) * static_cast<uint64_t>((n + 31) / 32);
  const auto g = grid((threads + 63) / 64);
  run(device_of(op, src), std::string("convert_") + variant,
      {{src.buffer, src.offset}, {dst.buffer, dst.offset}}, push, g[0], g[1]);
}

void attention(const AttentionArgs& a) {
  const char* op = "attention";
  const char* variant = a.kv_type == DType::F32    ? "f32"
                        : a.kv_type == DType::F16  ? "f16"
                        : a.kv_type == DType::Q8_0 ? "q8_0"
                                                   : nullptr;
  check(variant != nullptr, "[vulkan] attention: KV cache type ", dtype_name(a.kv_type),
        " (supported: f32, f16, q8_0)");
  // Long sequences without a causal mask (diffusion models) and heads past the shader's 256.
  if (attention_chunked_supported(a) && (a.d > 256 || a.tk >= kChunkedAttentionMinKeys)) {
    attention_chunked(a);
    return;
  }
  check(a.d > 0 && a.d <= 256 && a.d % dtype_block_size(a.kv_type) == 0,
        "[vulkan] attention: head size ", a.d, " must be in 1..256 and a multiple of ",
        dtype_block_size(a.kv_type), " for ", dtype_name(a.kv_type),
        " (larger heads: f32 K/V without a causal mask or window)");
  check(a.n_head > 0 && a.n_kv_head > 0 && a.n_head % a.n_kv_head == 0,
        "[vulkan] attention: ", a.n_head, " query heads are not a multiple of ", a.n_kv_head,
        " KV heads");
  check(a.tq >= 0 && a.tk >= 0 && a.pos0 >= 0 && a.window >= 0, "[vulkan] attention: tq=", a.tq,
        " tk=", a.tk, " pos0=", a.pos0, " window=", a.window);
  if (a.tq == 0) return;
  u32(op, a.pos0 + a.tq);  // the last query's position fits the shader's 32 bits too
  const size_t head_bytes = dtype_row_bytes(a.kv_type, a.d);
  check(a.ldq >= a.n_head * a.d && a.ldo >= a.n_head * a.d &&
            a.ldk >= head_bytes * static_cast<size_t>(a.n_kv_head) &&
            a.ldv >= head_bytes * static_cast<size_t>(a.n_kv_head),
        "[vulkan] attention: strides ldq=", a.ldq, " ldo=", a.ldo, " ldk=", a.ldk, " ldv=", a.ldv,
        " below the row sizes");
  const size_t align = a.kv_type == DType::F32 ? 4 : 2;
  check(a.k.offset % align == 0 && a.v.offset % align == 0 && a.ldk % align == 0 &&
            a.ldv % align == 0,
        "[vulkan] attention: K/V offsets ", a.k.offset, "/", a.v.offset, " or strides ", a.ldk, "/",
        a.ldv, " misaligned for ", dtype_name(a.kv_type));
  need_f32(op, "q", a.q, static_cast<uint64_t>((a.tq - 1) * a.ldq + a.n_head * a.d));
  need_f32(op, "out", a.out, static_cast<uint64_t>((a.tq - 1) * a.ldo + a.n_head * a.d));
  if (a.tk > 0) {
    const uint64_t kv_bytes =
        static_cast<uint64_t>(a.tk - 1) * a.ldk + head_bytes * static_cast<uint64_t>(a.n_kv_head);
    need(op, "k", a.k, kv_bytes);
    need(op, "v", a.v,
         static_cast<uint64_t>(a.tk - 1) * a.ldv + head_bytes * static_cast<uint64_t>(a.n_kv_head));
  }
  struct {
    uint32_t q_off, k_off, v_off, o_off, tq, tk, n_head, n_kv_head, d, ldq, ldo, ldk, ldv,
        head_bytes, pos0, window, causal;
    float scale;
  } push{0,
         0,
         0,
         0,
         u32(op, a.tq),
         u32(op, a.tk),
         u32(op, a.n_head),
         u32(op, a.n_kv_head),
         u32(op, a.d),
         u32(op, a.ldq),
         u32(op, a.ldo),
         u32(op, static_cast<int64_t>(a.ldk)),
         u32(op, static_cast<int64_t>(a.ldv)),
         u32(op, static_cast<int64_t>(head_bytes)),
         u32(op, a.pos0),
         u32(op, a.window),
         a.causal ? 1u : 0u,
         a.scale};
  // With tk = 0 the buffers are not read; bind q in their place.
  const BufferRef k = a.tk > 0 ? a.k : a.q, v = a.tk > 0 ? a.v : a.q;
  const auto g = grid(static_cast<uint64_t>(a.tq * a.n_head));
  run(device_of(op, a.q), std::string("attention_") + variant,
      {{a.q.buffer, a.q.offset},
       {k.buffer, k.offset},
       {v.buffer, v.offset},
       {a.out.buffer, a.out.offset}},
      push, g[0], g[1]);
}

void rope(BufferRef x, int64_t ldx, BufferRef y, int64_t ldy, BufferRef cos_sin, int64_t T,
          int64_t n_head, int64_t head_dim, int64_t n_dims, RopeStyle style) {
  const char* op = "rope";
  check(n_dims > 0 && n_dims % 2 == 0 && n_dims <= head_dim, "[vulkan] rope: n_dims=", n_dims,
        " must be even and at most head_dim=", head_dim);
  check(ldx >= n_head * head_dim && ldy >= n_head * head_dim, "[vulkan] rope: row strides ", ldx,
        " / ", ldy, " are shorter than a row of ", n_head * head_dim);
  if (T == 0 || n_head == 0) return;
  need_f32(op, "x", x, static_cast<uint64_t>((T - 1) * ldx + n_head * head_dim));
  need_f32(op, "y", y, static_cast<uint64_t>((T - 1) * ldy + n_head * head_dim));
  need_f32(op, "cos_sin", cos_sin, static_cast<uint64_t>(T * n_dims));
  struct {
    uint32_t x_off, cs_off, y_off, T, n_head, head_dim, n_dims, neox, ldx, ldy;
  } push{0,
         0,
         0,
         u32(op, T),
         u32(op, n_head),
         u32(op, head_dim),
         u32(op, n_dims),
         style == RopeStyle::Neox ? 1u : 0u,
         u32(op, ldx),
         u32(op, ldy)};
  const uint64_t threads =
      static_cast<uint64_t>(T * n_head) * static_cast<uint64_t>(n_dims / 2 + head_dim - n_dims);
  const auto g = grid((threads + 63) / 64);
  run(device_of(op, x), "rope",
      {{x.buffer, x.offset}, {cos_sin.buffer, cos_sin.offset}, {y.buffer, y.offset}}, push, g[0],
      g[1]);
}

}  // namespace eight::vulkan
