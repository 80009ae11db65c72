#include "models/sdxl/lora.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/half.h"

namespace eight::sdxl {
namespace {

using Weights = std::map<std::string, Tensor>;

enum class Role { down, up, alpha };

// Tensor-name endings of each layout, longest first where one ends another.
struct Suffix {
  std::string_view text;
  Role role;
};
constexpr Suffix kSuffixes[] = {
    {".lora_linear_layer.down.weight", Role::down},  // diffusers' old text-encoder layout
    {".lora_linear_layer.up.weight", Role::up},
    {"_lora.down.weight", Role::down},  // diffusers' old attention processors: to_q_lora.down
    {"_lora.up.weight", Role::up},
    {".lora.down.weight", Role::down},  // diffusers' LoRACompatibleLinear
    {".lora.up.weight", Role::up},
    {".lora_down.weight", Role::down},  // kohya
    {".lora_up.weight", Role::up},
    {".lora_A.weight", Role::down},  // PEFT
    {".lora_B.weight", Role::up},
    {".alpha", Role::alpha},
};

// Tensors of adapter kinds that are not a plain low-rank product: the kind, or "" when the name
// is not one of them.
std::string_view unsupported_kind(std::string_view name) {
  constexpr std::string_view kInside[][2] = {{".hada_", "LoHa"},
                                             {".lokr_", "LoKr"},
                                             {"dora_scale", "DoRA"},
                                             {".lora_magnitude_vector", "DoRA"},
                                             {".lora_mid.", "LoCon with a Tucker core"}};
  for (const auto& [marker, kind] : kInside)
    if (name.find(marker) != std::string_view::npos) return kind;
  if (name.ends_with(".diff") || name.ends_with(".diff_b")) return "a full-weight difference";
  if (name.ends_with(".bias")) return "a bias update";
  return {};
}

bool eat(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Reads "<digits>." (or "<digits>" at the end) from the front of s.
bool eat_index(std::string_view& s, int64_t& index) {
  size_t n = 0;
  int64_t v = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') v = v * 10 + (s[n++] - '0');
  if (n == 0 || (n < s.size() && s[n] != '.')) return false;
  index = v;
  s.remove_prefix(n < s.size() ? n + 1 : n);
  return true;
}

std::string underscored(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

// The elements of a contiguous F32/F16/BF16 tensor as doubles.
std::vector<double> to_doubles(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (c.dtype()) {
      case DType::F32:
        out[i] = c.data<float>()[i];
        break;
      case DType::F16:
        out[i] = fp16_to_fp32(c.data<uint16_t>()[i]);
        break;
      case DType::BF16:
        out[i] = bf16_to_fp32(c.data<uint16_t>()[i]);
        break;
      default:
        fail("[lora] cannot read a ", dtype_name(c.dtype()), " tensor as floats");
    }
  }
  return out;
}

// The target weights of one component, by module path ("down_blocks.1.attentions.0.proj_in")
// and by that path underscored (and, for the UNet, by its original-layout path underscored).
struct Index {
  std::set<std::string> modules;
  std::map<std::string, std::string> by_underscored;  // "" when two modules collide
};

Index index_of(const Weights& w, bool unet) {
  Index ix;
  int64_t resnets = 0;
  std::vector<bool> up_attention;
  if (unet) {
    for (const auto& [name, t] : w) {
      std::string_view s = name;
      int64_t level = 0, j = 0;
      if (eat(s, "down_blocks.0.resnets.") && eat_index(s, j)) resnets = std::max(resnets, j + 1);
      s = name;
      if (eat(s, "up_blocks.") && eat_index(s, level) && level < 64) {
        if (up_attention.size() <= static_cast<size_t>(level))
          up_attention.resize(static_cast<size_t>(level) + 1, false);
        if (s.starts_with("attentions.")) up_attention[static_cast<size_t>(level)] = true;
      }
    }
  }
  auto add = [&](const std::string& key, const std::string& module) {
    const auto [it, fresh] = ix.by_underscored.emplace(key, module);
    if (!fresh && it->second != module) it->second.clear();
  };
  for (const auto& [name, t] : w) {
    if (!name.ends_with(".weight") || (t.dim() != 2 && t.dim() != 4)) continue;
    const std::string module = name.substr(0, name.size() - 7);
    ix.modules.insert(module);
    add(underscored(module), module);
    if (unet) {
      const std::string original = original_unet_module(module, resnets, up_attention);
      if (!original.empty()) add(underscored(original), module);
    }
  }
  return ix;
}

// A dotted module path as diffusers' older layouts spell it, made a module path of the model:
// attention processors' "attn1.processor.to_out" is "attn1.to_out.0".
std::string normalize_dotted(std::string m) {
  for (size_t p; (p = m.find(".processor.")) != std::string::npos;) m.erase(p, 10);
  if (m.ends_with(".to_out")) m += ".0";
  return m;
}

// diffusers' "lora_adapter_metadata" header entry (LoraBaseMixin.write_lora_layers): a JSON object
// with "<component>.r", "<component>.lora_alpha" and optional "<component>.alpha_pattern" /
// "<component>.rank_pattern" ({module suffix: value}).
struct AdapterMetadata {
  nlohmann::json j;
  std::optional<double> alpha(const std::string& component, const std::string& module) const {
    if (!j.is_object()) return std::nullopt;
    if (const auto p = j.find(component + ".alpha_pattern"); p != j.end() && p->is_object())
      for (const auto& item : p->items())
        if (item.value().is_number() &&
            (module == item.key() || module.ends_with("." + item.key())))
          return item.value().get<double>();
    const auto a = j.find(component + ".lora_alpha");
    if (a != j.end() && a->is_number()) return a->get<double>();
    return std::nullopt;
  }
};

AdapterMetadata adapter_metadata(const safetensors::File& file) {
  const auto it = file.metadata().find("lora_adapter_metadata");
  if (it == file.metadata().end()) return {};
  try {
    return {nlohmann::json::parse(it->second)};
  } catch (const nlohmann::json::exception& e) {
    fail("[lora] ", file.path(),
         ": the lora_adapter_metadata header entry is not JSON: ", e.what());
  }
}

struct Pieces {
  std::string down, up, alpha;  // tensor names, "" when absent
};

struct Resolved {
  LoraComponent component;
  std::string module;  // "" when no weight matches
};

Resolved resolve(const std::string& key, const Index (&ix)[3]) {
  struct Prefix {
    std::string_view text;
    LoraComponent component;
    bool dotted;
  };
  constexpr Prefix kPrefixes[] = {
      {"lora_unet_", LoraComponent::unet, false},
      {"lora_te1_", LoraComponent::text_encoder, false},
      {"lora_te2_", LoraComponent::text_encoder_2, false},
      {"lora_te_", LoraComponent::text_encoder, false},
      {"unet.", LoraComponent::unet, true},
      {"text_encoder_2.", LoraComponent::text_encoder_2, true},
      {"text_encoder.", LoraComponent::text_encoder, true},
  };
  for (const auto& p : kPrefixes) {
    std::string_view rest = key;
    if (!eat(rest, p.text)) continue;
    const Index& index = ix[static_cast<int>(p.component)];
    if (p.dotted) {
      const std::string m = normalize_dotted(std::string(rest));
      return {p.component, index.modules.count(m) ? m : std::string()};
    }
    const auto it = index.by_underscored.find(std::string(rest));
    return {p.component, it == index.by_underscored.end() ? std::string() : it->second};
  }
  return {LoraComponent::unet, {}};
}

template <class C>
auto& component_weights(C& c, LoraComponent which) {
  switch (which) {
    case LoraComponent::unet:
      return c.unet;
    case LoraComponent::text_encoder:
      return c.text_encoder;
    case LoraComponent::text_encoder_2:
      return c.text_encoder_2;
  }
  return c.unet;
}

}  // namespace

const char* lora_component_name(LoraComponent c) {
  switch (c) {
    case LoraComponent::unet:
      return "unet";
    case LoraComponent::text_encoder:
      return "text_encoder";
    case LoraComponent::text_encoder_2:
      return "text_encoder_2";
  }
  return "?";
}

std::string original_unet_module(const std::string& module, int64_t resnets_per_down_level,
                                 const std::vector<bool>& up_attention) {
  static const std::pair<std::string_view, std::string_view> kFixed[] = {
      {"time_embedding.linear_1", "time_embed.0"},
      {"time_embedding.linear_2", "time_embed.2"},
      {"add_embedding.linear_1", "label_emb.0.0"},
      {"add_embedding.linear_2", "label_emb.0.2"},
      {"conv_in", "input_blocks.0.0"},
      {"conv_norm_out", "out.0"},
      {"conv_out", "out.2"}};
  static const std::pair<std::string_view, std::string_view> kResnet[] = {
      {"norm1", "in_layers.0"},  {"conv1", "in_layers.2"},  {"time_emb_proj", "emb_layers.1"},
      {"norm2", "out_layers.0"}, {"conv2", "out_layers.3"}, {"conv_shortcut", "skip_connection"}};
  for (const auto& [from, to] : kFixed)
    if (module == from) return std::string(to);
  auto resnet_part = [&](std::string_view rest) -> std::string {
    for (const auto& [from, to] : kResnet)
      if (rest == from) return std::string(to);
    return {};
  };
  // Down levels hold R resnets then a downsampler, each its own input block (block 0 is
  // conv_in); up levels hold R + 1 resnets, the upsampler sharing the last one's block.
  const int64_t R = resnets_per_down_level, stride = R + 1;
  std::string_view s = module;
  int64_t level = 0, j = 0;
  auto with = [](const std::string& head, const std::string& tail) {
    return tail.empty() ? std::string() : head + tail;
  };
  if (eat(s, "down_blocks.") && eat_index(s, level)) {
    if (eat(s, "resnets.") && eat_index(s, j))
      return with(cat("input_blocks.", 1 + level * stride + j, ".0."), resnet_part(s));
    if (eat(s, "attentions.") && eat_index(s, j))
      return cat("input_blocks.", 1 + level * stride + j, ".1.", s);
    if (s == "downsamplers.0.conv") return cat("input_blocks.", (level + 1) * stride, ".0.op");
    return {};
  }
  s = module;
  if (eat(s, "up_blocks.") && eat_index(s, level)) {
    if (eat(s, "resnets.") && eat_index(s, j))
      return with(cat("output_blocks.", level * stride + j, ".0."), resnet_part(s));
    if (eat(s, "attentions.") && eat_index(s, j))
      return cat("output_blocks.", level * stride + j, ".1.", s);
    if (s == "upsamplers.0.conv") {
      const bool attention =
          level < static_cast<int64_t>(up_attention.size()) && up_attention[level];
      return cat("output_blocks.", level * stride + R, attention ? ".2" : ".1", ".conv");
    }
    return {};
  }
  s = module;
  if (eat(s, "mid_block.")) {
    if (eat(s, "attentions.0.")) return cat("middle_block.1.", s);
    if (eat(s, "resnets.") && eat_index(s, j) && j < 2)
      return with(cat("middle_block.", 2 * j, "."), resnet_part(s));
  }
  return {};
}

std::vector<LoraModule> read_lora(const safetensors::File& file, const Components& targets) {
  const std::string& where = file.path();
  // 1. Group the tensors by module.
  std::map<std::string, Pieces> groups;
  for (const auto& info : file.tensors()) {
    const std::string& name = info.name;
    if (const std::string_view kind = unsupported_kind(name); !kind.empty())
      fail("[lora] ", where, ": tensor '", name, "' is ", kind,
           " data; eight applies plain LoRA (and LoCon) only");
    const Suffix* suffix = nullptr;
    for (const auto& s : kSuffixes)
      if (name.ends_with(s.text)) {
        suffix = &s;
        break;
      }
    if (!suffix)
      fail("[lora] ", where, ": tensor '", name,
           "' is not a LoRA tensor (lora_down/lora_up/alpha, lora_A/lora_B)");
    const std::string key = name.substr(0, name.size() - suffix->text.size());
    Pieces& p = groups[key];
    std::string& slot = suffix->role == Role::down ? p.down
                        : suffix->role == Role::up ? p.up
                                                   : p.alpha;
    if (!slot.empty())
      fail("[lora] ", where, ": tensors '", slot, "' and '", name, "' are the same module's");
    slot = name;
  }
  check(!groups.empty(), "[lora] ", where, " holds no tensors");

  // 2. Resolve each module to the weight it updates.
  const Index ix[3] = {index_of(targets.unet, true), index_of(targets.text_encoder, false),
                       index_of(targets.text_encoder_2, false)};
  const AdapterMetadata metadata = adapter_metadata(file);
  std::vector<std::string> unmatched;
  std::vector<LoraModule> out;
  for (const auto& [key, p] : groups) {
    const std::string& first = !p.down.empty() ? p.down : !p.up.empty() ? p.up : p.alpha;
    if (p.down.empty() || p.up.empty())
      fail("[lora] ", where, ": tensor '", first, "' has no ", p.down.empty() ? "down" : "up",
           " (lora_down/lora_A) partner");
    const Resolved r = resolve(key, ix);
    if (r.module.empty()) {
      unmatched.push_back(key);
      continue;
    }
    LoraModule m{.name = key,
                 .component = r.component,
                 .weight = r.module + ".weight",
                 .down = file.tensor(p.down),
                 .up = file.tensor(p.up),
                 .alpha = 0};
    const Tensor& w = component_weights(targets, r.component).at(m.weight);
    for (const auto* t : {&m.down, &m.up}) {
      const std::string& tname = t == &m.down ? p.down : p.up;
      check(is_float(t->dtype()), "[lora] ", where, ": tensor '", tname, "' is ",
            dtype_name(t->dtype()), "; LoRA factors must be F32, F16 or BF16");
      check(t->dim() == 2 || t->dim() == 4, "[lora] ", where, ": tensor '", tname, "' has shape ",
            t->shape().str(), "; LoRA factors are 2-D or 4-D");
    }
    const int64_t rank = m.down.size(0);
    const int64_t w_in = w.numel() / w.size(0);
    const int64_t down_in = m.down.numel() / std::max<int64_t>(rank, 1);
    check(rank > 0 && down_in == w_in &&
              (m.down.dim() == 2 || w.dim() != 4 ||
               (m.down.size(1) == w.size(1) && m.down.size(2) == w.size(2) &&
                m.down.size(3) == w.size(3))),
          "[lora] ", where, ": tensor '", p.down, "' has shape ", m.down.shape().str(), " but '",
          lora_component_name(r.component), "' weight '", m.weight, "' has shape ",
          w.shape().str());
    check(m.up.size(0) == w.size(0) && m.up.size(1) == rank &&
              (m.up.dim() == 2 || (m.up.size(2) == 1 && m.up.size(3) == 1)),
          "[lora] ", where, ": tensor '", p.up, "' has shape ", m.up.shape().str(), ", not [",
          w.size(0), ", ", rank, m.up.dim() == 4 ? ", 1, 1]" : "]");
    if (!p.alpha.empty()) {
      const Tensor a = file.tensor(p.alpha);
      check(a.numel() == 1 && is_float(a.dtype()), "[lora] ", where, ": tensor '", p.alpha, "' is ",
            dtype_name(a.dtype()), " ", a.shape().str(), ", not one float");
      m.alpha = to_doubles(a)[0];
    } else if (auto alpha = metadata.alpha(lora_component_name(r.component), r.module)) {
      m.alpha = *alpha;
    } else {
      m.alpha = static_cast<double>(rank);
    }
    check(std::isfinite(m.alpha), "[lora] ", where, ": the alpha of '", key, "' is not finite");
    out.push_back(std::move(m));
  }
  if (!unmatched.empty()) {
    std::string list;
    for (size_t i = 0; i < unmatched.size() && i < 5; ++i)
      list += cat(i ? ", " : "", "'", unmatched[i], "'");
    fail("[lora] ", where, ": ", unmatched.size(), " of ", groups.size(),
         " LoRA module(s) match no weight of this SDXL model (a LoRA for another model?): ", list,
         unmatched.size() > 5 ? ", ..." : "");
  }
  return out;
}

Tensor merge_lora(const Tensor& weight, const Tensor& down, const Tensor& up, double factor,
                  ThreadPool* pool) {
  check(is_float(weight.dtype()), "[lora] cannot merge into a ", dtype_name(weight.dtype()),
        " weight");
  const int64_t out = weight.size(0), in = weight.numel() / out, rank = down.size(0);
  check(down.numel() == rank * in && up.numel() == out * rank, "[lora] factors ",
        down.shape().str(), " and ", up.shape().str(), " do not fit the weight ",
        weight.shape().str());
  const std::vector<double> d = to_doubles(down), u = to_doubles(up), w = to_doubles(weight);
  Tensor result = Tensor::empty(weight.shape(), weight.dtype());
  auto merge_row = [&](int64_t o) {
    // row = W[o] + factor * sum_r up[o, r] down[r]
    std::vector<double> row(w.begin() + o * in, w.begin() + (o + 1) * in);
    for (int64_t r = 0; r < rank; ++r) {
      const double c = factor * u[static_cast<size_t>(o * rank + r)];
      const double* dr = d.data() + r * in;
      for (int64_t i = 0; i < in; ++i) row[static_cast<size_t>(i)] += c * dr[i];
    }
    for (int64_t i = 0; i < in; ++i) {
      const auto f = static_cast<float>(row[static_cast<size_t>(i)]);
      const int64_t at = o * in + i;
      if (weight.dtype() == DType::F32)
        result.data<float>()[at] = f;
      else if (weight.dtype() == DType::F16)
        result.data<uint16_t>()[at] = fp32_to_fp16(f);
      else
        result.data<uint16_t>()[at] = fp32_to_bf16(f);
    }
  };
  if (pool)
    pool->parallel_for(out, [&](int64_t o, int) { merge_row(o); });
  else
    for (int64_t o = 0; o < out; ++o) merge_row(o);
  return result;
}

namespace {

// Appends a runtime update of a quantized UNet linear weight: rows of down, columns of up.
void attach_runtime_lora(Weights& w, const LoraModule& m, double factor) {
  const std::string module = m.weight.substr(0, m.weight.size() - 7);
  const Tensor& weight = w.at(m.weight);
  check(weight.dim() == 2, "[lora] '", m.name, "' updates the quantized ", weight.shape().str(),
        " weight '", m.weight, "'; run-time LoRA takes linear weights only");
  const int64_t out = weight.size(0), in = weight.size(1), r = m.rank();
  const std::vector<double> d = to_doubles(m.down), u = to_doubles(m.up);
  const auto old_down = w.find(module + ".lora_down");
  const int64_t r0 = old_down == w.end() ? 0 : old_down->second.size(0);
  Tensor down = Tensor::empty({r0 + r, in}, DType::F32);
  Tensor up = Tensor::empty({out, r0 + r}, DType::F32);
  if (r0 > 0) {
    const Tensor& old_up = w.at(module + ".lora_up");
    std::copy_n(old_down->second.data<float>(), r0 * in, down.data<float>());
    for (int64_t o = 0; o < out; ++o)
      std::copy_n(old_up.data<float>() + o * r0, r0, up.data<float>() + o * (r0 + r));
  }
  for (int64_t i = 0; i < r * in; ++i)
    down.data<float>()[r0 * in + i] = static_cast<float>(d[static_cast<size_t>(i)]);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < r; ++k)
      up.data<float>()[o * (r0 + r) + r0 + k] =
          static_cast<float>(factor * u[static_cast<size_t>(o * r + k)]);
  w[module + ".lora_down"] = down;
  w[module + ".lora_up"] = up;
}

}  // namespace

void apply_lora(Components& targets, const std::vector<LoraModule>& modules, float scale,
                ThreadPool* pool) {
  for (const auto& m : modules) {
    Weights& w = component_weights(targets, m.component);
    const auto it = w.find(m.weight);
    check(it != w.end(), "[lora] '", m.name, "': the weight '", m.weight, "' is missing");
    const double factor = scale * m.alpha / static_cast<double>(m.rank());
    if (is_float(it->second.dtype())) {
      it->second = merge_lora(it->second, m.down, m.up, factor, pool);
    } else {
      check(m.component == LoraComponent::unet, "[lora] '", m.name, "' updates the ",
            dtype_name(it->second.dtype()), " weight '", m.weight, "' of ",
            lora_component_name(m.component), "; quantized weights take LoRA in the UNet only");
      attach_runtime_lora(w, m, factor);
    }
  }
}

}  // namespace eight::sdxl
