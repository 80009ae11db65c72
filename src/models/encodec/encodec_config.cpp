// EnCodec decoder configs: transformers' config.json and audiocraft's exported xp.cfg YAML.
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "formats/yaml.h"
#include "models/encodec/encodec.h"

namespace eight::encodec {
namespace {

using Json = nlohmann::json;

// Limits that keep a hostile config from asking for absurd networks; the real 32 kHz model
// uses 4 ratios, 64 filters, 128 dims, 4 x 2048 codes.
constexpr int64_t kMaxDim = 1 << 14, kMaxRatios = 16, kMaxKernel = 1024;

void check_config(const Config& c, const std::string& where) {
  const auto in = [&](int64_t v, int64_t lo, int64_t hi, const char* name) {
    check(v >= lo && v <= hi, "[encodec] ", where, ": ", name, " = ", v, " (must be ", lo, "..", hi,
          ")");
  };
  in(c.channels, 1, 8, "channels");
  in(c.dimension, 1, kMaxDim, "dimension");
  in(c.n_filters, 1, kMaxDim, "n_filters");
  in(c.n_residual_layers, 0, 16, "n_residual_layers");
  in(static_cast<int64_t>(c.ratios.size()), 1, kMaxRatios, "the number of ratios");
  int64_t hop = 1;
  for (int64_t r : c.ratios) {
    in(r, 1, 64, "a ratio");
    hop *= r;
  }
  in(hop, 1, 1 << 16, "the hop (product of the ratios)");
  in(c.n_filters << c.ratios.size(), 1, int64_t{1} << 20, "n_filters * 2^len(ratios)");
  in(c.kernel_size, 1, kMaxKernel, "kernel_size");
  in(c.last_kernel_size, 1, kMaxKernel, "last_kernel_size");
  in(c.residual_kernel_size, 1, kMaxKernel, "residual_kernel_size");
  in(c.dilation_base, 1, 16, "dilation_base");
  in(c.compress, 1, 1024, "compress");
  in(c.lstm, 0, 16, "lstm layers");
  in(c.n_q, 1, 64, "n_q");
  in(c.bins, 1, 1 << 20, "bins");
  in(c.sample_rate, 1000, 768000, "sample_rate");
  check(std::isfinite(c.trim_right_ratio) && c.trim_right_ratio >= 0 && c.trim_right_ratio <= 1,
        "[encodec] ", where, ": trim_right_ratio ", c.trim_right_ratio, " (must be 0..1)");
  check(c.causal || c.trim_right_ratio == 1.0, "[encodec] ", where,
        ": trim_right_ratio must be 1 for a non-causal model");
  check(std::isfinite(c.elu_alpha), "[encodec] ", where, ": ELU alpha is not finite");
}

PadMode pad_mode(const std::string& s, const std::string& where) {
  if (s == "constant") return PadMode::Constant;
  if (s == "reflect") return PadMode::Reflect;
  if (s == "replicate") return PadMode::Replicate;
  fail("[encodec] ", where, ": pad_mode '", s, "' is not supported (constant, reflect, replicate)");
}

// ---- transformers -------------------------------------------------------------------------

int64_t json_int(const Json& j, const char* key, int64_t fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_number_integer(), "[encodec] ", where, ": ", key, " must be an integer, not ",
        j[key].dump());
  return j[key].get<int64_t>();
}

bool json_bool(const Json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_boolean(), "[encodec] ", where, ": ", key, " must be true or false");
  return j[key].get<bool>();
}

std::string json_str(const Json& j, const char* key, const std::string& fallback,
                     const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_string(), "[encodec] ", where, ": ", key, " must be a string, not ",
        j[key].dump());
  return j[key].get<std::string>();
}

double json_real(const Json& j, const char* key, double fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_number(), "[encodec] ", where, ": ", key, " must be a number, not ",
        j[key].dump());
  return j[key].get<double>();
}

// ---- audiocraft's YAML --------------------------------------------------------------------

// The YAML (src/formats/yaml.h reads it) flattened to dotted keys: "seanet.ratios" -> {"8", "5",
// "4", "4"}, "seanet.norm" -> {"weight_norm"}. Scalars are one-element lists; null is empty.
using Flat = std::map<std::string, std::vector<std::string>>;

std::string scalar_text(const Json& v, const std::string& key, const std::string& where) {
  check(!v.is_object() && !v.is_array(), "[encodec] ", where, ": ", key,
        " holds a nested collection where a scalar was expected");
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void flatten(const Json& j, const std::string& key, Flat& flat, const std::string& where) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, key.empty() ? k : key + "." + k, flat, where);
    return;
  }
  auto& slot = flat[key];
  slot.clear();
  if (j.is_array()) {
    for (const Json& v : j) slot.push_back(scalar_text(v, key, where));
  } else if (!j.is_null()) {
    slot.push_back(scalar_text(j, key, where));
  }
}

Flat parse_yaml(const std::string& text, const std::string& where) {
  const Json root = yaml::parse(text, where);
  check(root.is_object(), "[encodec] ", where, " is not a YAML mapping of settings");
  Flat flat;
  flatten(root, "", flat, where);
  return flat;
}

// A typed view of the flattened YAML: seanet.decoder.X overrides seanet.X, which overrides
// SEANetDecoder's own defaults (`fallback`).
struct YamlConfig {
  const Flat& flat;
  const std::string& where;

  const std::vector<std::string>* find(const std::string& name) const {
    for (const std::string& k : {"seanet.decoder." + name, "seanet." + name, name}) {
      const auto it = flat.find(k);
      if (it != flat.end()) return &it->second;
    }
    return nullptr;
  }
  std::string str(const std::string& name, const std::string& fallback) const {
    const auto* v = find(name);
    if (!v) return fallback;
    return v->empty() ? std::string() : v->front();
  }
  int64_t integer(const std::string& name, int64_t fallback) const {
    const auto* v = find(name);
    if (!v || v->empty()) return fallback;
    check(v->size() == 1, "[encodec] ", where, ": ", name, " must be a number");
    return to_int(v->front(), name);
  }
  double real(const std::string& name, double fallback) const {
    const auto* v = find(name);
    if (!v || v->empty()) return fallback;
    try {
      size_t used = 0;
      const double d = std::stod(v->front(), &used);
      if (used == v->front().size()) return d;
    } catch (const std::exception&) {
    }
    fail("[encodec] ", where, ": ", name, " = '", v->front(), "' is not a number");
  }
  bool boolean(const std::string& name, bool fallback) const {
    const std::string s = str(name, fallback ? "true" : "false");
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
    fail("[encodec] ", where, ": ", name, " = '", s, "' is not true or false");
  }
  std::vector<int64_t> ints(const std::string& name, std::vector<int64_t> fallback) const {
    const auto* v = find(name);
    if (!v) return fallback;
    std::vector<int64_t> out;
    for (const std::string& s : *v) out.push_back(to_int(s, name));
    return out;
  }
  int64_t to_int(const std::string& s, const std::string& name) const {
    try {
      size_t used = 0;
      const long long n = std::stoll(s, &used);
      if (used == s.size()) return n;
    } catch (const std::exception&) {
    }
    fail("[encodec] ", where, ": ", name, " = '", s, "' is not an integer");
  }
};

}  // namespace

int64_t Config::hop() const {
  int64_t h = 1;
  for (int64_t r : ratios) h *= r;
  return h;
}

const char* pad_mode_name(PadMode m) {
  switch (m) {
    case PadMode::Constant:
      return "constant";
    case PadMode::Reflect:
      return "reflect";
    case PadMode::Replicate:
      return "replicate";
  }
  return "?";
}

Config parse_hf_config(const std::string& text, const std::string& where) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail("[encodec] ", where, " is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[encodec] ", where, " is not a JSON object");
  const std::string type = json_str(j, "model_type", "", where);
  check(type == "encodec", "[encodec] ", where, ": model_type is '", type, "', not 'encodec'");
  // transformers' EncodecConfig defaults (the 24 kHz model's) where a key is absent.
  Config c;
  c.channels = json_int(j, "audio_channels", 1, where);
  c.dimension = json_int(j, "hidden_size", 128, where);
  c.n_filters = json_int(j, "num_filters", 32, where);
  c.n_residual_layers = json_int(j, "num_residual_layers", 1, where);
  c.ratios = {8, 5, 4, 2};
  if (j.contains("upsampling_ratios")) {
    check(j["upsampling_ratios"].is_array() && j["upsampling_ratios"].size() <= kMaxRatios,
          "[encodec] ", where, ": upsampling_ratios must be a list of up to ", kMaxRatios,
          " integers");
    c.ratios.clear();
    for (const Json& r : j["upsampling_ratios"]) {
      check(r.is_number_integer(), "[encodec] ", where, ": upsampling_ratios must be integers");
      c.ratios.push_back(r.get<int64_t>());
    }
  }
  c.kernel_size = json_int(j, "kernel_size", 7, where);
  c.last_kernel_size = json_int(j, "last_kernel_size", 7, where);
  c.residual_kernel_size = json_int(j, "residual_kernel_size", 3, where);
  c.dilation_base = json_int(j, "dilation_growth_rate", 2, where);
  c.compress = json_int(j, "compress", 2, where);
  c.lstm = json_int(j, "num_lstm_layers", 2, where);
  c.causal = json_bool(j, "use_causal_conv", true, where);
  c.true_skip = !json_bool(j, "use_conv_shortcut", true, where);
  c.pad_mode = pad_mode(json_str(j, "pad_mode", "reflect", where), where);
  c.trim_right_ratio = json_real(j, "trim_right_ratio", 1.0, where);
  c.bins = json_int(j, "codebook_size", 1024, where);
  c.sample_rate = json_int(j, "sampling_rate", 24000, where);
  const std::string norm = json_str(j, "norm_type", "weight_norm", where);
  check(norm == "weight_norm", "[encodec] ", where, ": norm_type '", norm,
        "' is not supported (weight_norm is; time_group_norm is the 48 kHz model's)");
  // The 48 kHz model's chunked, renormalized decoding needs per-chunk scales codes do not carry.
  check(!json_bool(j, "normalize", false, where), "[encodec] ", where,
        ": normalize = true (renormalized chunks) is not supported");
  check(!j.contains("chunk_length_s") || j["chunk_length_s"].is_null(), "[encodec] ", where,
        ": chunked decoding (chunk_length_s) is not supported");
  const int64_t cb_dim = json_int(j, "codebook_dim", c.dimension, where);
  check(cb_dim == c.dimension, "[encodec] ", where, ": codebook_dim ", cb_dim,
        " differs from hidden_size ", c.dimension, " (transformers has no projection)");
  // n_q: the largest target bandwidth's, as transformers decodes every codebook it is given.
  c.n_q = 1;  // the checkpoint's quantizer layers say how many (see encodec_load.cpp)
  check_config(c, where);
  return c;
}

Config parse_audiocraft_config(const std::string& text, const std::string& where) {
  const Flat flat = parse_yaml(text, where);
  const YamlConfig y{flat, where};
  const std::string model = y.str("compression_model", "encodec");
  check(model == "encodec", "[encodec] ", where, ": compression_model is '", model,
        "', not 'encodec'");
  check(flat.count("seanet.ratios") || flat.count("seanet.decoder.ratios"), "[encodec] ", where,
        " has no seanet section (is it audiocraft's exported xp.cfg?)");
  // SEANetDecoder's keyword defaults where a key is absent.
  Config c;
  c.channels = y.integer("channels", 1);
  c.dimension = y.integer("dimension", 128);
  c.n_filters = y.integer("n_filters", 32);
  c.n_residual_layers = y.integer("n_residual_layers", 3);
  c.ratios = y.ints("ratios", {8, 5, 4, 2});
  c.kernel_size = y.integer("kernel_size", 7);
  c.last_kernel_size = y.integer("last_kernel_size", 7);
  c.residual_kernel_size = y.integer("residual_kernel_size", 3);
  c.dilation_base = y.integer("dilation_base", 2);
  c.compress = y.integer("compress", 2);
  c.lstm = y.integer("lstm", 0);
  c.causal = y.boolean("causal", false);
  c.true_skip = y.boolean("true_skip", true);
  c.pad_mode = pad_mode(y.str("pad_mode", "reflect"), where);
  c.trim_right_ratio = y.real("trim_right_ratio", 1.0);
  const std::string act = y.str("activation", "ELU");
  check(act == "ELU", "[encodec] ", where, ": activation '", act, "' is not supported (ELU is)");
  c.elu_alpha = y.real("activation_params.alpha", 1.0);
  const std::string final_act = y.str("final_activation", "");
  check(final_act.empty() || final_act == "Tanh", "[encodec] ", where, ": final_activation '",
        final_act, "' is not supported (none or Tanh)");
  c.final_tanh = final_act == "Tanh";
  const std::string norm = y.str("norm", "none");
  check(norm == "weight_norm" || norm == "none", "[encodec] ", where, ": norm '", norm,
        "' is not supported (weight_norm, none)");
  c.n_q = y.integer("rvq.n_q", 8);
  c.bins = y.integer("rvq.bins", 1024);
  c.sample_rate = y.integer("sample_rate", 32000);
  check(!y.boolean("encodec.renormalize", false), "[encodec] ", where,
        ": renormalize models need per-chunk scales, which codes alone do not carry");
  check_config(c, where);
  return c;
}

}  // namespace eight::encodec
