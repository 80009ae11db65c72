#pragma once
// The planner's name for the kernels' scratch over a pass (backend/cpu/scratch_peak.h, where the
// models' own estimates can use it too).
#include "backend/cpu/scratch_peak.h"

namespace eight::plan_detail {
using cpu::ScratchPeak;
}  // namespace eight::plan_detail
