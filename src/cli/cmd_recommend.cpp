// `eight recommend`: what to run on this hardware, per task, best first: the quant, the context
// that fits and why. With several --vram budgets it shows what changes between them.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "runtime/plan/recommend.h"
#include "runtime/plan/report.h"

namespace eight::cli {
namespace {

using json = nlohmann::json;

std::vector<int64_t> parse_budgets(const std::vector<std::string>& args) {
  std::vector<int64_t> out;
  for (const auto& a : args) {
    std::stringstream s(a);
    std::string item;
    while (std::getline(s, item, ',')) {
      check(!item.empty(), "--vram '", a, "' has an empty entry");
      out.push_back(parse_bytes(item));
    }
  }
  if (out.empty()) out.push_back(8 * kGiB);
  check(out.size() <= 16, "at most 16 --vram budgets (got ", out.size(), ")");
  return out;
}

std::string cell(const Pick& p) {
  if (p.verdict == Verdict::DoesNotFit) return "-";
  return p.quant + " " + short_verdict(p);
}

json pick_json(const Pick& p, int64_t vram) {
  return {{"model", p.entry->id},
          {"name", p.entry->name},
          {"vram", vram},
          {"seed_quant", p.seed_quant},
          {"quant", p.quant},
          {"bytes", p.bytes},
          {"verdict", verdict_name(p.verdict)},
          {"ctx", p.ctx},
          {"gpu_peak", p.gpu_peak},
          {"must_have", p.entry->must_have()},
          {"support", support_name(p.entry->support)},
          {"why", p.why}};
}

int run(int argc, char** argv) {
  ArgParser p("recommend", "",
              "Rank what fits the given hardware for each task: the best quant, the context that "
              "fits and why. Several budgets (--vram 6GiB,8GiB,12GiB,16GiB) show what changes.");
  std::vector<std::string> vram_args;
  std::string ram, task;
  int64_t ctx = 0;
  bool json_out = false;
  p.option("--vram", &vram_args, "SIZE[,SIZE...]", "GPU budget(s) (default 8GiB; repeatable)");
  p.option("--ram", &ram, "SIZE", "RAM budget (default: this machine's RAM minus 1 GiB)");
  p.option("--task", &task, "TASK", "only chat, code, vision, image, video, audio or speech");
  p.option("--ctx", &ctx, "N", "context an LLM must reach on the GPU (default min(trained, 4k))");
  p.flag("--json", &json_out, "print JSON");
  p.positional_count(0, 0);
  if (auto rc = p.parse(argc, argv)) return *rc;
  const std::vector<int64_t> budgets = parse_budgets(vram_args);
  check(!p.given("--ctx") || ctx > 0, "--ctx must be at least 1 (got ", ctx, ")");
  DeviceBudget base;
  if (!ram.empty()) base.ram = parse_bytes(ram);
  const std::vector<std::string> tasks =
      task.empty() ? task_names() : std::vector<std::string>{task};

  // picks[t][b]: the ranked picks of task t at budget b.
  std::vector<std::vector<std::vector<Pick>>> picks(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t)
    for (int64_t v : budgets) {
      DeviceBudget b = base;
      b.vram = v;
      picks[t].push_back(recommend(tasks[t], b, ctx));
    }

  if (json_out) {
    json out = {{"budgets", budgets}, {"tasks", json::array()}};
    for (size_t t = 0; t < tasks.size(); ++t) {
      json per_budget = json::array();
      for (size_t b = 0; b < budgets.size(); ++b) {
        json ranked = json::array();
        for (const auto& pk : picks[t][b]) ranked.push_back(pick_json(pk, budgets[b]));
        per_budget.push_back({{"vram", budgets[b]}, {"ranked", ranked}});
      }
      out["tasks"].push_back({{"task", tasks[t]}, {"budgets", per_budget}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  if (budgets.size() == 1) {
    std::printf("What to run with %s of VRAM (best first per task):\n",
                format_size(budgets[0]).c_str());
    for (size_t t = 0; t < tasks.size(); ++t) {
      std::printf("\n%s\n", tasks[t].c_str());
      int rank = 1;
      for (const auto& pk : picks[t][0]) {
        std::printf("  %d. %s %-28s %-7s %-18s %s\n", rank++, pk.entry->must_have() ? "⭐" : "✨",
                    pk.entry->name.substr(0, 28).c_str(), pk.quant.c_str(),
                    short_verdict(pk).c_str(), pk.why.c_str());
      }
    }
    std::printf("\nPlan one in detail: eight plan NAME:QUANT --vram %s\n",
                format_size(budgets[0]).c_str());
    return 0;
  }

  // Several budgets: one matrix per task, then what changes.
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::printf("\n%s\n  %-28s", tasks[t].c_str(), "model");
    for (int64_t v : budgets) std::printf(" %-22s", ("VRAM " + format_size(v)).c_str());
    std::printf("\n");
    // Rows in the order of the largest budget's ranking.
    for (const auto& top : picks[t].back()) {
      std::printf("  %-28s", top.entry->name.substr(0, 28).c_str());
      std::vector<const Pick*> row;
      for (size_t b = 0; b < budgets.size(); ++b)
        for (const auto& pk : picks[t][b])
          if (pk.entry == top.entry) row.push_back(&pk);
      for (const Pick* pk : row) std::printf(" %-22s", cell(*pk).c_str());
      std::printf("\n");
      for (size_t b = 1; b < row.size(); ++b)
        if (row[b]->quant != row[b - 1]->quant || row[b]->verdict != row[b - 1]->verdict)
          std::printf("  %-28s   %s → %s: %s → %s\n", "", format_size(budgets[b - 1]).c_str(),
                      format_size(budgets[b]).c_str(), cell(*row[b - 1]).c_str(),
                      cell(*row[b]).c_str());
    }
  }
  return 0;
}

const Registration reg({.name = "recommend",
                        .summary = "rank what fits your GPU for each task, and why",
                        .run = run,
                        .order = 15});

}  // namespace
}  // namespace eight::cli
