// `eight models`: the catalog of the seed list as a table, grouped by category, with what fits an
// 8 GiB GPU; `eight models NAME` shows one model in full (seed text, variants, quants, sources).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "runtime/plan/catalog.h"
#include "runtime/plan/recommend.h"
#include "runtime/plan/report.h"

namespace eight::cli {
namespace {

using json = nlohmann::json;

std::string clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

json source_json(const Source& s) {
  return {{"quant", s.quant}, {"component", s.component}, {"repo", s.repo}, {"file", s.file},
          {"url", s.url},     {"verified", s.verified},   {"note", s.note}};
}

json entry_json(const CatalogEntry& e, const Pick& pick, int64_t vram) {
  json rows = json::array(), variants = json::array();
  for (const auto& r : e.seed_rows)
    rows.push_back({{"category", r.category},
                    {"task", r.task},
                    {"rank", r.rank},
                    {"symbol", r.symbol()},
                    {"variant", r.variant},
                    {"quants", r.quants},
                    {"recommended", r.recommended_text},
                    {"usage", r.usage},
                    {"comments", r.comments}});
  for (const auto& v : e.variants) {
    json vj = {{"id", v.id}, {"params", v.params}, {"default", v.id == e.default_variant}};
    if (v.hparams) {
      const auto& h = *v.hparams;
      vj["hparams"] = {{"n_layer", h.n_layer},   {"n_embd", h.n_embd},
                       {"n_head", h.n_head},     {"n_head_kv", h.n_head_kv},
                       {"head_dim", h.head_dim}, {"n_ff", h.n_ff},
                       {"n_vocab", h.n_vocab},   {"n_ctx_train", h.n_ctx_train}};
      json qs = json::array();
      for (const auto& q : v.quants) {
        json qj = {{"quant", q.quant}, {"bytes", q.bytes}};
        if (q.source) qj["source"] = source_json(*q.source);
        qs.push_back(qj);
      }
      vj["quants"] = qs;
    }
    json cs = json::array();
    for (const auto& c : v.components) {
      json sizes = json::object();
      for (const auto& [prec, bytes] : c.sizes) sizes[prec] = bytes;
      cs.push_back({{"id", c.id},
                    {"role", c.role},
                    {"params", c.params},
                    {"sizes", sizes},
                    {"work_bytes", c.work_bytes},
                    {"main", c.main}});
    }
    if (!cs.empty()) vj["components"] = cs;
    json ss = json::array();
    for (const auto& s : v.sources) ss.push_back(source_json(s));
    if (!ss.empty()) vj["sources"] = ss;
    variants.push_back(vj);
  }
  return {{"id", e.id},
          {"name", e.name},
          {"aliases", e.aliases},
          {"kind", e.kind == ModelKind::LLM ? "llm" : "pipeline"},
          {"architecture", e.architecture},
          {"tasks", e.tasks},
          {"support", support_name(e.support)},
          {"must_have", e.must_have()},
          {"recommended_quant", e.recommended_quant()},
          {"notes", e.notes},
          {"seed_rows", rows},
          {"variants", variants},
          {"fit",
           {{"vram", vram},
            {"quant", pick.quant},
            {"verdict", verdict_name(pick.verdict)},
            {"ctx", pick.ctx},
            {"why", pick.why}}}};
}

void print_details(const CatalogEntry& e, const Pick& pick, int64_t vram) {
  std::printf("%s %s  (%s)\n", e.must_have() ? "⭐" : "✨", e.name.c_str(), e.id.c_str());
  std::string aliases;
  for (const auto& a : e.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
  std::printf("  architecture %s, %s, eight support: %s\n  also known as: %s\n",
              e.architecture.c_str(), e.kind == ModelKind::LLM ? "LLM" : "multi-component",
              support_name(e.support), aliases.c_str());
  for (const auto& r : e.seed_rows) {
    const Category* c = catalog().find_category(r.category);
    std::printf("\n  %s %s\n    recommended for 8 GB: %s\n    ideal usage: %s\n    %s\n",
                r.symbol(), c ? c->title.c_str() : r.category.c_str(), r.recommended_text.c_str(),
                r.usage.c_str(), r.comments.c_str());
  }
  if (!e.notes.empty()) std::printf("\n  eight's notes: %s\n", e.notes.c_str());
  std::printf("\n  on %s of VRAM: %s %s — %s\n", format_size(vram).c_str(), pick.quant.c_str(),
              short_verdict(pick).c_str(), pick.why.c_str());
  for (const auto& v : e.variants) {
    std::printf("\n  variant %s%s: %.2f B parameters\n", v.id.c_str(),
                v.id == e.default_variant ? " (default)" : "", static_cast<double>(v.params) / 1e9);
    if (v.hparams) {
      const auto& h = *v.hparams;
      std::printf(
          "    %lld layers, n_embd %lld, heads %lld/%lld KV × %lld, n_ff %lld, vocab %lld, "
          "trained ctx %lld\n",
          static_cast<long long>(h.n_layer), static_cast<long long>(h.n_embd),
          static_cast<long long>(h.n_head), static_cast<long long>(h.n_head_kv),
          static_cast<long long>(h.head_dim), static_cast<long long>(h.n_ff),
          static_cast<long long>(h.n_vocab), static_cast<long long>(h.n_ctx_train));
      for (const auto& q : v.quants)
        std::printf("    %-7s %9s  %s%s%s\n", q.quant.c_str(), format_size(q.bytes).c_str(),
                    q.source ? (q.source->repo + "/" + q.source->file).c_str() : "-",
                    q.source && !q.source->verified ? "  (unverified)" : "",
                    q.note.empty() ? "" : ("  " + q.note).c_str());
    }
    for (const auto& c : v.components) {
      std::string sizes;
      for (const auto& [prec, bytes] : c.sizes)
        sizes += cat(sizes.empty() ? "" : ", ", prec, " ", format_size(bytes));
      std::printf("    %-12s %s: %s%s\n", c.id.c_str(), c.role.c_str(), sizes.c_str(),
                  c.source ? cat("  [", c.source->repo, "/", c.source->file, "]").c_str() : "");
    }
    for (const auto& s : v.sources)
      std::printf("    source %-5s %-8s %s%s%s\n", s.quant.c_str(), s.component.c_str(),
                  s.repo.empty() ? s.url.c_str() : (s.repo + "/" + s.file).c_str(),
                  s.verified ? "" : "  (unverified)",
                  s.note.empty() ? "" : ("  " + s.note).c_str());
  }
}

int run(int argc, char** argv) {
  ArgParser p("models", "[NAME]",
              "List the catalog: the best open models for an 8 GB GPU (the seed list), with the "
              "recommended quant, its size, what fits your GPU and eight's support status. "
              "With NAME, show one model in full.");
  std::string task, vram = "8GiB", ram;
  bool json_out = false;
  p.option("--task", &task, "TASK", "only chat, code, vision, image, video, audio or speech");
  p.option("--vram", &vram, "SIZE", "GPU budget for the fit column (default 8GiB)");
  p.option("--ram", &ram, "SIZE", "RAM budget (default: this machine's RAM minus 1 GiB)");
  p.flag("--json", &json_out, "print JSON");
  p.positional_count(0, 1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(task.empty() ||
            std::find(task_names().begin(), task_names().end(), task) != task_names().end(),
        "unknown task '", task, "' (chat, code, vision, image, video, audio, speech)");
  DeviceBudget budget;
  budget.vram = parse_bytes(vram);
  if (!ram.empty()) budget.ram = parse_bytes(ram);
  const Catalog& cat_ = catalog();

  if (!p.positionals().empty()) {
    const ModelRef ref = resolve_model(p.positionals()[0]);
    const Pick pick = recommend_model(*ref.entry, budget);
    if (json_out)
      std::printf("%s\n", entry_json(*ref.entry, pick, budget.vram).dump(2).c_str());
    else
      print_details(*ref.entry, pick, budget.vram);
    return 0;
  }

  if (json_out) {
    json models = json::array();
    for (const auto& e : cat_.models())
      if (e.has_task(task))
        models.push_back(entry_json(e, recommend_model(e, budget), budget.vram));
    json cats = json::array();
    for (const auto& c : cat_.categories())
      cats.push_back({{"id", c.id}, {"task", c.task}, {"title", c.title}, {"note", c.note}});
    std::printf(
        "%s\n",
        json{{"title", cat_.title()}, {"categories", cats}, {"models", models}}.dump(2).c_str());
    return 0;
  }

  std::printf("%s — %zu models, fit column for %s of VRAM\n", cat_.title().c_str(),
              cat_.models().size(), format_size(budget.vram).c_str());
  const std::string fit_head = "ON " + format_size(budget.vram);
  for (const auto& c : cat_.categories()) {
    std::vector<std::pair<const CatalogEntry*, const SeedRow*>> rows;
    for (const auto& e : cat_.models())
      for (const auto* r : e.rows_for(task))
        if (r->category == c.id) rows.emplace_back(&e, r);
    if (rows.empty()) continue;
    std::printf("\n%s  [--task %s]\n", c.title.c_str(), c.task.c_str());
    if (!c.note.empty()) std::printf("  %s\n", clip(c.note, 110).c_str());
    std::printf("   %-28s %-30s %-8s %9s  %-16s %s\n", "MODEL", "NAME (eight plan NAME)", "QUANT",
                "SIZE", fit_head.c_str(), "STATUS");
    for (const auto& [e, r] : rows) {
      const std::string fit = short_verdict(assess(*e, e->recommended_quant(), budget));
      int64_t size = 0;
      const Variant& v = e->variant();
      if (const QuantFile* q = v.find_quant(e->recommended_quant())) size = q->bytes;
      if (const Component* m = v.main_component(); m && !v.hparams)
        size = m->size(e->recommended_quant()).value_or(0);
      std::printf("%s %-28s %-30s %-8s %9s  %-16s %s\n", r->symbol(), clip(e->name, 28).c_str(),
                  e->id.c_str(), e->recommended_quant().c_str(), format_size(size).c_str(),
                  clip(fit, 16).c_str(), support_name(e->support));
      std::printf("   %s\n", clip(r->usage, 100).c_str());
    }
  }
  // Models outside the seed list (the tiny default): after the seed's categories.
  bool header = false;
  for (const auto& e : cat_.models()) {
    if (!e.seed_rows.empty() || !e.has_task(task)) continue;
    if (!header)
      std::printf("\nBeyond the seed list\n   %-28s %-30s %-8s %9s  %-16s %s\n", "MODEL",
                  "NAME (eight plan NAME)", "QUANT", "SIZE", fit_head.c_str(), "STATUS");
    header = true;
    const QuantFile* q = e.variant().find_quant(e.recommended_quant());
    std::printf("•  %-28s %-30s %-8s %9s  %-16s %s\n   %s: %s\n", clip(e.name, 28).c_str(),
                e.id.c_str(), e.recommended_quant().c_str(), format_size(q ? q->bytes : 0).c_str(),
                clip(short_verdict(assess(e, e.recommended_quant(), budget)), 16).c_str(),
                support_name(e.support), e.role.c_str(), clip(e.notes, 90).c_str());
  }
  std::printf(
      "\n⭐ must-have  ✨ highly recommended / specialized.  SIZE: weights at the seed's quant "
      "(main component for pipelines).\n%s: how the seed's quant fits, with the largest context "
      "that stays on the GPU.\nDetails: eight models NAME · plan: eight plan NAME[:QUANT] · "
      "eight recommend --vram 6GiB,8GiB,12GiB\n",
      fit_head.c_str());
  return 0;
}

const Registration reg({.name = "models",
                        .summary = "the catalog: best models for an 8 GB GPU and what fits",
                        .run = run,
                        .order = 10});

}  // namespace
}  // namespace eight::cli
