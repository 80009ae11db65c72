// What every plan shares, whatever the model family: verdict names, the RAM budget, and the sums
// and checks over a plan's items.
#include "runtime/plan/planner.h"

#include <unistd.h>

#include <algorithm>

#include "core/error.h"
#include "core/memory.h"

namespace eight {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::FitsOnGPU:
      return "fits-on-gpu";
    case Verdict::PartialOffload:
      return "partial-offload";
    case Verdict::CPUOnly:
      return "cpu-only";
    case Verdict::DoesNotFit:
      return "does-not-fit";
  }
  return "?";
}

int64_t system_ram_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  const int64_t total = pages > 0 && page > 0 ? int64_t{pages} * page : 8 * kGiB;
  return std::max<int64_t>(total - kGiB, kGiB);
}

int64_t DevicePlan::total() const {
  int64_t n = 0;
  for (const auto& i : items)
    if (i.counted) n += i.bytes;
  return n;
}

int64_t Plan::host_heap_bytes() const {
  int64_t n = 0;
  for (const auto& i : cpu.items)
    if (i.counted && !i.mapped) n += i.bytes;
  return n;
}

void Plan::check_host_budget() const {
  if (cpu.fits()) return;
  std::string bill;
  for (const auto& i : cpu.items)
    if (i.counted) bill += cat(bill.empty() ? "" : ", ", i.what, " ", format_bytes(i.bytes));
  fail("[planner] ", model, " (", quant, ") at ctx ", request.ctx, " needs ",
       format_bytes(cpu.total()), " of RAM (", bill, ") but the budget is ",
       format_bytes(budget.ram), max_ctx > 0 ? cat("; ctx ", max_ctx, " would fit") : "",
       request.kv_type == DType::F16 ? "; --kv-type q8_0 halves the KV cache" : "");
}

}  // namespace eight
