// KV cache: sizes, layout (one allocation, per-sequence per-layer views), positions bookkeeping,
// prefix copies between slots and clear errors.
#include <gtest/gtest.h>

#include <cstring>

#include "core/memory.h"
#include "runtime/llm/kv_cache.h"

namespace eight {
namespace {

TEST(KVCache, SizesAndViews) {
  const KVCacheConfig c{
      .n_layer = 3, .n_ctx = 10, .n_head_kv = 2, .head_dim = 32, .type = DType::F16, .n_seq = 2};
  EXPECT_EQ(kv_cache_bytes(c), 2 * 3 * 10 * 2 * (2 * 32 * 2));
  const int64_t before = memory_tracker().stats().heap_current;
  KVCache kv(c);
  EXPECT_EQ(memory_tracker().stats().heap_current - before, kv.bytes());
  for (int64_t s = 0; s < 2; ++s) {
    const auto layers = kv.layers(s);
    ASSERT_EQ(layers.size(), 3u);
    for (const auto& l : layers) {
      EXPECT_EQ(l.k.shape(), (Dims{10, 64}));
      EXPECT_EQ(l.v.dtype(), DType::F16);
    }
  }
  // Q8_0: 34 bytes per 32 values.
  KVCacheConfig q = c;
  q.type = DType::Q8_0;
  EXPECT_EQ(kv_cache_bytes(q), 2 * 3 * 10 * 2 * (2 * 34));
}

TEST(KVCache, PositionsTruncateAndCopyPrefix) {
  KVCache kv(
      {.n_layer = 1, .n_ctx = 8, .n_head_kv = 1, .head_dim = 4, .type = DType::F32, .n_seq = 2});
  kv.set_n_past(0, 5);
  EXPECT_EQ(kv.free_positions(0), 3);
  float* k0 = kv.layers(0)[0].k.data<float>();
  for (int i = 0; i < 20; ++i) k0[i] = static_cast<float>(i);
  kv.copy_prefix(0, 1, 4);
  EXPECT_EQ(kv.n_past(1), 4);
  EXPECT_EQ(std::memcmp(kv.layers(1)[0].k.raw(), k0, 16 * sizeof(float)), 0);
  kv.truncate(0, 2);
  EXPECT_EQ(kv.n_past(0), 2);
  EXPECT_THROW(kv.truncate(0, 3), Error);  // cannot grow
  EXPECT_THROW(kv.set_n_past(0, 9), Error);
  EXPECT_THROW(kv.layers(2), Error);
  kv.clear_all();
  EXPECT_EQ(kv.n_past(1), 0);
}

TEST(KVCache, RejectsBadConfigs) {
  EXPECT_THROW(kv_cache_bytes(
                   {.n_layer = 1, .n_ctx = 8, .n_head_kv = 1, .head_dim = 24, .type = DType::Q8_0}),
               Error);  // 24 is not a multiple of 32
  EXPECT_THROW(kv_cache_bytes({.n_layer = 1, .n_ctx = 0, .n_head_kv = 1, .head_dim = 8}), Error);
  EXPECT_THROW(kv_cache_bytes(
                   {.n_layer = 1, .n_ctx = 8, .n_head_kv = 1, .head_dim = 8, .type = DType::Q4_K}),
               Error);
  EXPECT_EQ(parse_kv_type("q8_0"), DType::Q8_0);
  EXPECT_EQ(parse_kv_type("F16"), DType::F16);
  EXPECT_THROW(parse_kv_type("q4_k"), Error);
}

}  // namespace
}  // namespace eight
