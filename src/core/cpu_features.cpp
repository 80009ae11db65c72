#include "core/cpu_features.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace eight {

namespace {

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CPUFeatures detect() {
  CPUFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool has_fma = c & (1u << 12), has_f16c = c & (1u << 29), has_avx = c & (1u << 28);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;
  const bool zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
  const bool amx_ok = (xcr0 & 0x60000) == 0x60000;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = has_avx && ymm_ok && (b & (1u << 5));
  f.fma = f.avx2 && has_fma;
  f.f16c = f.avx2 && has_f16c;
  f.bmi2 = b & (1u << 8);
  f.avx512f = zmm_ok && (b & (1u << 16));
  f.avx512dq = f.avx512f && (b & (1u << 17));
  f.avx512bw = f.avx512f && (b & (1u << 30));
  f.avx512vl = f.avx512f && (b & (1u << 31));
  f.avx512vbmi = f.avx512f && (c & (1u << 1));
  f.avx512vnni = f.avx512f && (c & (1u << 11));
  f.amx_bf16 = amx_ok && (d & (1u << 22));
  f.amx_tile = amx_ok && (d & (1u << 24));
  f.amx_int8 = amx_ok && (d & (1u << 25));
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx512bf16 = f.avx512f && (a1 & (1u << 5));
  f.avx_vnni = f.avx2 && (a1 & (1u << 4));  // leaf 7 subleaf 1 EAX bit 4
  char brand[49] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) {
      __cpuid(0x80000002 + i, a, b, c, d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(f.brand.begin());
#endif
  return f;
}

}  // namespace

const CPUFeatures& cpu_features() {
  static const CPUFeatures f = detect();
  return f;
}

bool isa_supported(ISA isa) {
  const auto& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case ISA::Generic:
      return true;
    case ISA::AVX2:
      return avx2;
    case ISA::AVX2VNNI:
      return avx2 && f.avx_vnni;
    case ISA::AVX512:
      // F, BW, DQ, VL and VNNI (the VNNI-less Skylake-X falls back to AVX2).
      return avx2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vnni;
  }
  return false;
}

ISA best_isa() {
  for (int i = kIsaCount - 1; i > 0; --i)
    if (isa_supported(static_cast<ISA>(i))) return static_cast<ISA>(i);
  return ISA::Generic;
}

const char* isa_name(ISA isa) {
  switch (isa) {
    case ISA::Generic:
      return "generic";
    case ISA::AVX2:
      return "avx2";
    case ISA::AVX2VNNI:
      return "avx2vnni";
    case ISA::AVX512:
      return "avx512";
  }
  return "?";
}

ISA parse_isa(const std::string& name) {
  if (name == "generic") return ISA::Generic;
  if (name == "avx2") return ISA::AVX2;
  if (name == "avx2vnni") return ISA::AVX2VNNI;
  if (name == "avx512") return ISA::AVX512;
  fail("[cpu] unknown ISA '", name, "' (use generic, avx2, avx2vnni or avx512)");
}

ISA active_isa() {
  static const ISA isa = [] {
    const char* env = std::getenv("EIGHT_ISA");
    if (!env || !*env) return best_isa();
    const ISA want = parse_isa(env);
    check(isa_supported(want), "[cpu] EIGHT_ISA=", env,
          " but this CPU cannot run it (best: ", isa_name(best_isa()), ")");
    return want;
  }();
  return isa;
}

}  // namespace eight
