#pragma once
// CPU feature detection (cpuid + OS support for the register state) and the ISA level kernels are
// compiled for. EIGHT_ISA=generic|avx2|avx2vnni|avx512 forces another level so tests can run every
// path (one this CPU supports: avx2vnni is not a subset of avx512, Ice Lake has only the latter).
#include <string>

namespace eight {

// AVX2VNNI: AVX2 plus AVX-VNNI (vpdpbusd on ymm, VEX-encoded; Alder Lake, Sapphire Rapids, Zen 5).
enum class ISA { Generic = 0, AVX2 = 1, AVX2VNNI = 2, AVX512 = 3 };
inline constexpr int kIsaCount = 4;

struct CPUFeatures {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false, avx512bf16 = false, avx512vbmi = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  std::string brand;
};

const CPUFeatures& cpu_features();
// The best ISA the machine supports.
ISA best_isa();
// Whether this CPU can run the kernels built for isa.
bool isa_supported(ISA isa);
// The ISA kernels use: best_isa(), or EIGHT_ISA when set (an unsupported request throws Error).
ISA active_isa();
const char* isa_name(ISA isa);
// Parses "generic", "avx2", "avx2vnni", "avx512" (throws Error otherwise).
ISA parse_isa(const std::string& name);

}  // namespace eight
