#pragma once
// The KV cache of an LLM session: for each sequence (slot) and layer, K and V as
// [n_ctx, n_head_kv·head_dim] with row p = position p, in F16 (default) or Q8_0. All of it is one
// tracked allocation made up front (sized by the planner), so decoding never allocates; pages are
// committed by the OS as positions are first written.
//
// Rows hold keys after rotary embedding, so they cannot simply be moved to new positions: a
// context shift keeps a prefix (truncate) and runs the kept tail again (see session.h).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <algorithm>

#include "core/dtype.h"
#include "core/storage.h"
#include "models/llm/llm.h"
#include "nn/attention.h"

namespace eight {

struct KVCacheConfig {
  int64_t n_layer = 0;
  int64_t n_ctx = 0;  // positions per sequence
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  DType type = DType::F16;  // F16, Q8_0 (head_dim a multiple of 32) or F32
  int64_t n_seq = 1;        // independent sequences (server slots)
  // Layers [first_device_layer, n_layer) keep their cache on `device` (the model's GPU layers);
  // -1 keeps every layer on the host.
  Device device = Device::cpu();
  int64_t first_device_layer = -1;

  int64_t kv_dim() const { return n_head_kv * head_dim; }
  int64_t device_layers() const {
    return device.kind == DeviceKind::CPU || first_device_layer < 0
               ? 0
               : n_layer - std::min(first_device_layer, n_layer);
  }
};

// Bytes a cache with this config occupies (K and V, every layer and sequence). Throws Error for an
// unsupported type or a head_dim the type cannot block.
int64_t kv_cache_bytes(const KVCacheConfig& c);
// The cache of `model` for n_seq sequences of n_ctx positions: its shape, with the layers the
// model runs on a GPU keeping their cache there.
KVCacheConfig kv_cache_config(const llm::LLM& model, int64_t n_ctx, DType type, int64_t n_seq = 1);

// Parses "f16", "q8_0", "f32" (Error otherwise).
DType parse_kv_type(const std::string& name);

class KVCache {
 public:
  explicit KVCache(const KVCacheConfig& c);

  const KVCacheConfig& config() const { return config_; }
  int64_t bytes() const { return kv_cache_bytes(config_); }
  int64_t n_ctx() const { return config_.n_ctx; }

  // Per-layer views of sequence `seq` (for llm::forward).
  std::span<const nn::KVLayerView> layers(int64_t seq = 0) const;
  // Positions [0, n_past) of `seq` hold valid keys and values.
  int64_t n_past(int64_t seq = 0) const { return n_past_[check_seq(seq)]; }
  // Records that the rows up to n are now valid (after a forward pass wrote them).
  void set_n_past(int64_t seq, int64_t n);
  // Forgets everything after the first n positions of `seq` (n ≤ n_past).
  void truncate(int64_t seq, int64_t n);
  void clear(int64_t seq = 0) { truncate(seq, 0); }
  void clear_all();
  // Copies the first n positions of `src` into `dst` (a shared prompt prefix for another slot).
  void copy_prefix(int64_t src, int64_t dst, int64_t n);
  int64_t free_positions(int64_t seq = 0) const { return config_.n_ctx - n_past(seq); }

 private:
  int64_t check_seq(int64_t seq) const;

  KVCacheConfig config_;
  std::shared_ptr<Storage> storage_;         // host layers
  std::shared_ptr<Storage> device_storage_;  // device layers
  std::vector<nn::KVLayerView> views_;       // [n_seq][n_layer]
  std::vector<int64_t> n_past_;
};

}  // namespace eight
