#pragma once
// Plans as text tables (for `eight plan`) and as JSON (for --json and the server).
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/plan/diffusion.h"
#include "runtime/plan/planner.h"

namespace eight {

nlohmann::json plan_to_json(const Plan& p);
nlohmann::json plan_to_json(const PipelinePlan& p);
nlohmann::json plan_to_json(const ImagePlan& p);
// The table of what goes where and why, then the verdict line and suggestions.
std::string render_plan(const Plan& p);
std::string render_plan(const PipelinePlan& p);
std::string render_plan(const ImagePlan& p);
// "4.37 GiB" with two decimals, "512 MiB" below 1 GiB.
std::string format_size(int64_t bytes);

}  // namespace eight
