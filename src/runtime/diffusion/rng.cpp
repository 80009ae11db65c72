#include "runtime/diffusion/rng.h"

#include <cmath>

#include "core/error.h"

namespace eight::diffusion {

namespace {

// Philox constants (Random123, philox.h): the round multipliers and the Weyl key increments.
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

double unit(uint32_t x) {
  return (static_cast<double>(x) + 0.5) * 0x1p-32;
}

}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k[0] += kW0;
      k[1] += kW1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c[0], hi0, lo0);
    mulhilo(kM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  }
  return c;
}

void Rng::normal(float* out, int64_t n) {
  check(n >= 0, "[rng] cannot draw ", n, " numbers");
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const std::array<uint32_t, 2> key{static_cast<uint32_t>(seed_),
                                    static_cast<uint32_t>(seed_ >> 32)};
  const uint64_t blocks = static_cast<uint64_t>((n + 3) / 4);
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t ctr = offset_ + b;
    const auto x =
        philox4x32_10({static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32),
                       static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)},
                      key);
    float z[4];
    for (int pair = 0; pair < 2; ++pair) {
      const double r = std::sqrt(-2.0 * std::log(unit(x[2 * pair])));
      const double theta = kTwoPi * unit(x[2 * pair + 1]);
      z[2 * pair] = static_cast<float>(r * std::cos(theta));
      z[2 * pair + 1] = static_cast<float>(r * std::sin(theta));
    }
    const int64_t base = static_cast<int64_t>(4 * b);
    for (int64_t e = 0; e < 4 && base + e < n; ++e) out[base + e] = z[e];
  }
  offset_ += blocks;
}

Tensor Rng::normal(const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  normal(t.data<float>(), t.numel());
  return t;
}

}  // namespace eight::diffusion
