#include "runtime/llm/kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "ops/device.h"

namespace eight {

namespace {

size_t row_bytes(const KVCacheConfig& c) {
  check(c.type == DType::F16 || c.type == DType::Q8_0 || c.type == DType::F32,
        "[kv_cache] cache type ", dtype_name(c.type), " is not supported (f16, q8_0, f32)");
  check(c.head_dim > 0 && c.n_head_kv > 0, "[kv_cache] head_dim ", c.head_dim, " and n_head_kv ",
        c.n_head_kv, " must be positive");
  check(c.head_dim % dtype_block_size(c.type) == 0, "[kv_cache] head_dim ", c.head_dim,
        " is not a multiple of the ", dtype_name(c.type), " block size ", dtype_block_size(c.type),
        "; use --kv-type f16");
  return dtype_row_bytes(c.type, c.kv_dim());
}

}  // namespace

int64_t kv_cache_bytes(const KVCacheConfig& c) {
  check(c.n_layer > 0 && c.n_ctx > 0 && c.n_seq > 0, "[kv_cache] n_layer ", c.n_layer, ", n_ctx ",
        c.n_ctx, " and n_seq ", c.n_seq, " must be positive");
  const double total =
      2.0 * static_cast<double>(row_bytes(c)) * c.n_ctx * c.n_layer * static_cast<double>(c.n_seq);
  check(total < 9.0e18, "[kv_cache] size overflows (n_ctx ", c.n_ctx, ")");
  return 2 * static_cast<int64_t>(row_bytes(c)) * c.n_ctx * c.n_layer * c.n_seq;
}

KVCacheConfig kv_cache_config(const llm::LLM& model, int64_t n_ctx, DType type, int64_t n_seq) {
  const llm::LLMConfig& c = model.config();
  KVCacheConfig kc{.n_layer = c.n_layer,
                   .n_ctx = n_ctx,
                   .n_head_kv = c.n_head_kv,
                   .head_dim = c.head_dim,
                   .type = type,
                   .n_seq = n_seq};
  if (model.placement().any_gpu()) {
    kc.device = model.placement().device;
    kc.first_device_layer = model.first_gpu_layer();
  }
  return kc;
}

DType parse_kv_type(const std::string& name) {
  const auto t = dtype_from_name(name);
  check(t && (*t == DType::F16 || *t == DType::Q8_0 || *t == DType::F32),
        "[kv_cache] unknown KV cache type '", name, "' (use f16, q8_0 or f32)");
  return *t;
}

KVCache::KVCache(const KVCacheConfig& c) : config_(c) {
  const int64_t total = kv_cache_bytes(c);
  const size_t rb = row_bytes(c);
  const size_t plane = rb * static_cast<size_t>(c.n_ctx);
  const int64_t on_device = c.device_layers(), first_device = c.n_layer - on_device;
  const size_t device_bytes = 2 * plane * static_cast<size_t>(on_device * c.n_seq);
  storage_ = std::make_shared<HostStorage>(static_cast<size_t>(total) - device_bytes);
  if (on_device > 0)
    device_storage_ =
        ops::empty({static_cast<int64_t>(device_bytes)}, DType::I8, c.device).storage();
  views_.reserve(static_cast<size_t>(c.n_seq * c.n_layer));
  size_t off = 0, device_off = 0;
  for (int64_t s = 0; s < c.n_seq; ++s)
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const bool dev = l >= first_device;
      const auto& storage = dev ? device_storage_ : storage_;
      size_t& at = dev ? device_off : off;
      nn::KVLayerView v;
      v.k = Tensor::from_storage(storage, at, {c.n_ctx, c.kv_dim()}, c.type);
      v.v = Tensor::from_storage(storage, at + plane, {c.n_ctx, c.kv_dim()}, c.type);
      at += 2 * plane;
      views_.push_back(v);
    }
  n_past_.assign(static_cast<size_t>(c.n_seq), 0);
}

int64_t KVCache::check_seq(int64_t seq) const {
  check(seq >= 0 && seq < config_.n_seq, "[kv_cache] sequence ", seq, " is outside [0, ",
        config_.n_seq, ")");
  return seq;
}

std::span<const nn::KVLayerView> KVCache::layers(int64_t seq) const {
  return {views_.data() + check_seq(seq) * config_.n_layer, static_cast<size_t>(config_.n_layer)};
}

void KVCache::set_n_past(int64_t seq, int64_t n) {
  check(n >= 0 && n <= config_.n_ctx, "[kv_cache] position ", n, " is outside the context of ",
        config_.n_ctx);
  n_past_[check_seq(seq)] = n;
}

void KVCache::truncate(int64_t seq, int64_t n) {
  check(n >= 0 && n <= n_past(seq), "[kv_cache] cannot keep ", n, " positions of ", n_past(seq));
  n_past_[seq] = n;
}

void KVCache::clear_all() {
  for (auto& n : n_past_) n = 0;
}

void KVCache::copy_prefix(int64_t src, int64_t dst, int64_t n) {
  check(n >= 0 && n <= n_past(src), "[kv_cache] cannot copy ", n, " positions of ", n_past(src));
  check_seq(dst);
  if (src == dst) return;
  const size_t bytes = row_bytes(config_) * static_cast<size_t>(n);
  const auto a = layers(src), b = layers(dst);
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    if (a[l].k.device().kind != DeviceKind::CPU) {
      // Device layers: the first n rows as one recorded copy each (no host round trip).
      if (n > 0)
        for (const auto& [from, to] : {std::pair{&a[l].k, &b[l].k}, std::pair{&a[l].v, &b[l].v}})
          ops::copy(from->slice(0, 0, n), to->slice(0, 0, n));
      continue;
    }
    std::memcpy(b[l].k.raw(), a[l].k.raw(), bytes);
    std::memcpy(b[l].v.raw(), a[l].v.raw(), bytes);
  }
  n_past_[dst] = n;
}

}  // namespace eight
