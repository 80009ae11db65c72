// ISA names, EIGHT_ISA parsing and the cpuid feature bits the kernel tables depend on, checked
// against the kernel's own view of the CPU (/proc/cpuinfo flags) where Linux provides it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"

namespace eight {
namespace {

TEST(CpuFeatures, IsaNamesRoundTrip) {
  for (int i = 0; i < kIsaCount; ++i) {
    const ISA isa = static_cast<ISA>(i);
    EXPECT_EQ(parse_isa(isa_name(isa)), isa) << isa_name(isa);
  }
  EXPECT_STREQ(isa_name(ISA::AVX2VNNI), "avx2vnni");
  EXPECT_THROW(parse_isa("avx3"), Error);
  EXPECT_THROW(parse_isa(""), Error);
}

TEST(CpuFeatures, BestIsaIsSupportedAndNoSupportedIsaIsBetter) {
  const ISA best = best_isa();
  EXPECT_TRUE(isa_supported(best));
  EXPECT_TRUE(isa_supported(ISA::Generic));
  for (int i = static_cast<int>(best) + 1; i < kIsaCount; ++i)
    EXPECT_FALSE(isa_supported(static_cast<ISA>(i))) << isa_name(static_cast<ISA>(i));
  // Every SIMD table needs AVX2 + FMA + F16C.
  const CPUFeatures& f = cpu_features();
  for (ISA isa : {ISA::AVX2, ISA::AVX2VNNI, ISA::AVX512})
    if (isa_supported(isa)) {
      EXPECT_TRUE(f.avx2 && f.fma && f.f16c) << isa_name(isa);
    }
  EXPECT_EQ(isa_supported(ISA::AVX2VNNI), isa_supported(ISA::AVX2) && f.avx_vnni);
}

// cpuid leaf 7 subleaf 1 EAX bit 4 (AVX-VNNI) and leaf 7 ECX bit 11 (AVX-512 VNNI) agree with
// the kernel's flags (which also require the OS to save the registers, as cpu_features does).
TEST(CpuFeatures, VnniBitsMatchProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string w; words >> w;) flags.insert(w);
      break;
    }
  if (flags.empty()) GTEST_SKIP() << "no flags line";
  const CPUFeatures& f = cpu_features();
  EXPECT_EQ(f.avx2, flags.count("avx2") == 1);
  EXPECT_EQ(f.avx_vnni, flags.count("avx_vnni") == 1);
  EXPECT_EQ(f.avx512vnni, flags.count("avx512_vnni") == 1);
}

}  // namespace
}  // namespace eight
