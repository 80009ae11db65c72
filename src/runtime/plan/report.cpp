#include "runtime/plan/report.h"

#include <cstdio>

#include "core/error.h"

namespace eight {
namespace {

using json = nlohmann::json;

json device_json(const DevicePlan& d) {
  json items = json::array();
  for (const auto& i : d.items)
    items.push_back({{"what", i.what},
                     {"bytes", i.bytes},
                     {"why", i.why},
                     {"counted", i.counted},
                     {"mapped", i.mapped}});
  return {{"device", d.device},
          {"budget", d.budget},
          {"total", d.total()},
          {"fits", d.fits()},
          {"items", items}};
}

std::string kv_name(DType t) {
  return t == DType::F16 ? "f16" : std::string(dtype_name(t));
}

void render_device(std::string& out, const DevicePlan& d) {
  char line[256];
  std::snprintf(line, sizeof line, "  %-8s budget %-10s used %-10s %s\n", d.device.c_str(),
                format_size(d.budget).c_str(), format_size(d.total()).c_str(),
                d.fits() ? "" : "OVER BUDGET");
  out += line;
  for (const auto& i : d.items) {
    std::snprintf(line, sizeof line, "    %-44s %11s%s  %s\n", i.what.c_str(),
                  format_size(i.bytes).c_str(), i.counted ? " " : "*", i.why.c_str());
    out += line;
  }
}

void render_tail(std::string& out, const std::string& summary,
                 const std::vector<std::string>& suggestions,
                 const std::vector<std::string>& notes) {
  for (const auto& n : notes) out += "  note: " + n + "\n";
  out += "\nverdict: " + summary + "\n";
  for (const auto& s : suggestions) out += "  - " + s + "\n";
}

}  // namespace

std::string format_size(int64_t bytes) {
  char buf[32];
  if (bytes >= kGiB || bytes <= -kGiB)
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  else if (bytes >= kMiB || bytes <= -kMiB)
    std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / kMiB);
  else
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

json plan_to_json(const Plan& p) {
  json layers = json::array();
  for (const auto& l : p.layers)
    layers.push_back({{"index", l.index},
                      {"device", l.gpu ? "vulkan:0" : "cpu"},
                      {"weight_bytes", l.weight_bytes},
                      {"kv_bytes", l.kv_bytes}});
  return {
      {"kind", "llm"},
      {"model", p.model},
      {"quant", p.quant},
      {"origin", p.origin},
      {"request",
       {{"ctx", p.request.ctx},
        {"kv_type", kv_name(p.request.kv_type)},
        {"parallel", p.request.parallel},
        {"batch", p.request.batch},
        {"ubatch", p.request.ubatch},
        {"flash_attention", p.request.flash_attention}}},
      {"budget",
       {{"vram", p.budget.vram}, {"ram", p.budget.ram}, {"gpu_reserve", p.budget.gpu_reserve}}},
      {"hparams",
       {{"n_layer", p.hp.n_layer},
        {"n_embd", p.hp.n_embd},
        {"n_head", p.hp.n_head},
        {"n_head_kv", p.hp.n_head_kv},
        {"head_dim", p.hp.head_dim},
        {"n_ff", p.hp.n_ff},
        {"n_vocab", p.hp.n_vocab},
        {"n_ctx_train", p.hp.n_ctx_train}}},
      {"n_layer", p.n_layer},
      {"n_gpu_layers", p.n_gpu_layers},
      {"output_on_gpu", p.output_on_gpu},
      {"embeddings_on_gpu", false},
      {"file_bytes", p.file_bytes},
      {"weight_bytes", p.weight_bytes},
      {"kv_bytes", p.kv_bytes},
      {"kv_bytes_per_1k", p.kv_bytes_per_1k},
      {"compute_bytes", p.compute_bytes},
      {"logits_bytes", p.logits_bytes},
      {"host_peak", p.host_peak()},
      {"gpu_peak", p.gpu.total()},
      {"max_ctx_gpu", p.max_ctx_gpu},
      {"max_ctx", p.max_ctx},
      {"verdict", verdict_name(p.verdict)},
      {"summary", p.summary},
      {"suggestions", p.suggestions},
      {"notes", p.notes},
      {"devices", json::array({device_json(p.gpu), device_json(p.cpu)})},
      {"layers", layers},
  };
}

json plan_to_json(const PipelinePlan& p) {
  json comps = json::array(), stages = json::array();
  for (const auto& c : p.components)
    comps.push_back({{"id", c.id},
                     {"role", c.role},
                     {"precision", c.precision},
                     {"bytes", c.bytes},
                     {"work_bytes", c.work_bytes},
                     {"device", c.device},
                     {"residency", c.residency},
                     {"why", c.why}});
  for (const auto& s : p.stages)
    stages.push_back({{"name", s.name},
                      {"components", s.components},
                      {"gpu_bytes", s.gpu_bytes},
                      {"cpu_bytes", s.cpu_bytes}});
  return {{"kind", "pipeline"},
          {"model", p.model},
          {"variant", p.variant},
          {"quant", p.quant},
          {"budget",
           {{"vram", p.budget.vram}, {"ram", p.budget.ram}, {"gpu_reserve", p.budget.gpu_reserve}}},
          {"strategy", p.strategy},
          {"gpu_peak", p.gpu_peak},
          {"host_peak", p.cpu_peak},
          {"verdict", verdict_name(p.verdict)},
          {"summary", p.summary},
          {"suggestions", p.suggestions},
          {"notes", p.notes},
          {"components", comps},
          {"stages", stages}};
}

std::string render_plan(const Plan& p) {
  std::string out;
  const auto& h = p.hp;
  out += cat(p.model, " (", p.quant, ", ", p.origin, ")\n");
  out += cat("  ", h.n_layer, " layers, n_embd ", h.n_embd, ", ", h.n_head, " heads / ",
             h.n_head_kv, " KV heads × ", h.head_dim, ", n_ff ", h.n_ff, ", vocab ", h.n_vocab,
             ", trained ctx ", h.n_ctx_train, "\n");
  out += cat("  weights ", format_size(p.weight_bytes), ", KV cache ",
             format_size(p.kv_bytes_per_1k), " per 1k tokens (", kv_name(p.request.kv_type),
             "), request: ctx ", p.request.ctx, " × ", p.request.parallel, " slot(s), ubatch ",
             p.request.ubatch, p.request.flash_attention ? ", flash attention" : "", "\n\n");
  if (p.budget.vram > 0) render_device(out, p.gpu);
  render_device(out, p.cpu);
  out += "    (* not counted: reclaimable page cache)\n";
  out += cat("\n  layers on the GPU: ", p.n_gpu_layers, "/", p.n_layer, "; output layer on ",
             p.output_on_gpu ? "the GPU" : "the CPU",
             "; embeddings on the CPU (row lookups gain nothing on a GPU)\n");
  out += cat("  largest context: ",
             p.budget.vram > 0 ? cat(p.max_ctx_gpu > 0 ? format_ctx(p.max_ctx_gpu) : "none",
                                     " entirely on the GPU, ")
                               : std::string(),
             p.max_ctx > 0 ? format_ctx(p.max_ctx) : "none", " with the RAM budget",
             " (trained: ", format_ctx(h.n_ctx_train), ")\n");
  out += cat("  planned host peak ", format_size(p.host_peak()), " (mapped weights + KV + compute",
             " + logits)\n");
  render_tail(out, p.summary, p.suggestions, p.notes);
  return out;
}

std::string render_plan(const PipelinePlan& p) {
  std::string out;
  out += cat(p.model, " (", p.variant, " at ", p.quant, ")\n");
  out += cat("  strategy: ", p.strategy, "\n\n");
  char line[320];
  std::snprintf(line, sizeof line, "  %-10s %-8s %10s %10s  %-7s %-9s %s\n", "component",
                "precision", "weights", "work", "device", "residency", "why");
  out += line;
  for (const auto& c : p.components) {
    std::snprintf(line, sizeof line, "  %-10s %-8s %10s %10s  %-7s %-9s %s\n", c.id.c_str(),
                  c.precision.c_str(), format_size(c.bytes).c_str(),
                  format_size(c.work_bytes).c_str(), c.device.c_str(), c.residency.c_str(),
                  c.why.c_str());
    out += line;
  }
  out += "\n";
  std::snprintf(line, sizeof line, "  %-18s %12s %12s  %s\n", "stage", "GPU peak", "RAM peak",
                "components");
  out += line;
  for (const auto& s : p.stages) {
    std::string names;
    for (const auto& c : s.components) names += (names.empty() ? "" : ", ") + c;
    std::snprintf(line, sizeof line, "  %-18s %12s %12s  %s\n", s.name.c_str(),
                  format_size(s.gpu_bytes).c_str(), format_size(s.cpu_bytes).c_str(),
                  names.c_str());
    out += line;
  }
  out += cat("\n  GPU peak ", format_size(p.gpu_peak), " (incl. ",
             format_size(std::min(p.budget.gpu_reserve, p.budget.vram)), " runtime reserve) of ",
             format_size(p.budget.vram), "; RAM peak ", format_size(p.cpu_peak), " of ",
             format_size(p.budget.ram), "\n");
  render_tail(out, p.summary, p.suggestions, p.notes);
  return out;
}

nlohmann::json plan_to_json(const ImagePlan& p) {
  nlohmann::json components = nlohmann::json::array(), stages = nlohmann::json::array();
  for (const auto& c : p.components)
    components.push_back({{"name", c.what}, {"bytes", c.bytes}, {"why", c.why}});
  for (const auto& s : p.stages)
    stages.push_back({{"name", s.name}, {"bytes", s.bytes}, {"why", s.why}});
  nlohmann::json cpu = nlohmann::json::array();
  for (const auto& b : p.cpu.items)
    cpu.push_back({{"what", b.what}, {"bytes", b.bytes}, {"why", b.why}, {"mapped", b.mapped}});
  nlohmann::json device = nullptr;
  if (p.on_gpu()) {
    nlohmann::json items = nlohmann::json::array(), dstages = nlohmann::json::array();
    for (const auto& b : p.device.items)
      items.push_back({{"what", b.what}, {"bytes", b.bytes}, {"why", b.why}});
    for (const auto& s : p.device_stages)
      dstages.push_back({{"name", s.name}, {"bytes", s.bytes}, {"why", s.why}});
    device = {{"device", p.device.device},
              {"budget", p.device.budget},
              {"weights", p.device_weight_bytes},
              {"stages", dstages},
              {"bill", items},
              {"peak", p.device.total()},
              {"fits", p.device.fits()}};
  }
  return {{"model", p.model},
          {"kind", "image"},
          {"width", p.request.width},
          {"height", p.request.height},
          {"guided", p.request.guided},
          {"prompt_windows", p.request.windows},
          {"threads", p.request.n_threads},
          {"vae_tile", p.request.vae_tile},
          {"vae_overlap", p.vae_overlap},
          {"components", components},
          {"weights_mapped", p.mapped_bytes},
          {"weight_copies", p.copied_bytes},
          {"kernel_scratch", p.scratch_bytes},
          {"unet_activations", p.unet_bytes},
          {"vae_decode", p.decode_bytes},
          {"stages", stages},
          {"cpu", cpu},
          {"host_peak", p.host_peak()},
          {"ram_budget", p.cpu.budget},
          {"fits", p.fits()},
          {"gpu", p.gpu},
          {"device", device},
          {"suggestions", p.suggestions}};
}

std::string render_plan(const ImagePlan& p) {
  std::string out = cat(p.model, " at ", p.request.width, "x", p.request.height,
                        p.request.guided ? " (guided: 2 UNet samples per step)" : " (unguided)",
                        ", ", p.request.n_threads, " threads\n\n");
  char line[320];
  std::snprintf(line, sizeof line, "  %-16s %10s  %s\n", "component", "weights", "");
  out += line;
  for (const auto& c : p.components) {
    std::snprintf(line, sizeof line, "  %-16s %10s  %s\n", c.what.c_str(),
                  format_size(c.bytes).c_str(), c.why.c_str());
    out += line;
  }
  out += "\n";
  std::snprintf(line, sizeof line, "  %-16s %10s  %s\n", "stage", "RAM", "what runs");
  out += line;
  for (const auto& s : p.stages) {
    std::snprintf(line, sizeof line, "  %-16s %10s  %s\n", s.name.c_str(),
                  format_size(s.bytes).c_str(), s.why.c_str());
    out += line;
  }
  out += "\n  CPU bill (all components resident; stages run one at a time)\n";
  for (const auto& b : p.cpu.items) {
    std::snprintf(line, sizeof line, "  %-28s %10s  %s\n", b.what.c_str(),
                  format_size(b.bytes).c_str(), b.why.c_str());
    out += line;
  }
  if (p.on_gpu()) {
    out += cat("\n  ", p.device.device, " bill (every component resident; stages one at a time)\n");
    for (const auto& s : p.device_stages) {
      std::snprintf(line, sizeof line, "  %-28s %10s  %s\n", ("stage " + s.name).c_str(),
                    format_size(s.bytes).c_str(), s.why.c_str());
      out += line;
    }
    for (const auto& b : p.device.items) {
      std::snprintf(line, sizeof line, "  %-28s %10s  %s\n", b.what.c_str(),
                    format_size(b.bytes).c_str(), b.why.c_str());
      out += line;
    }
  }
  out += cat("\n  RAM peak ", format_size(p.host_peak()), " of ", format_size(p.cpu.budget), ": ",
             p.cpu.fits() ? "fits" : "does NOT fit", "\n  GPU: ", p.gpu, "\n");
  for (const auto& s : p.suggestions) out += cat("  - ", s, "\n");
  return out;
}

}  // namespace eight
