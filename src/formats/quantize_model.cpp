// Per-tensor type rules of the llama.cpp mixes and the streaming GGUF re-encoder.
#include "formats/quantize_model.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"

namespace eight {
namespace {

constexpr QuantMix kMixes[] = {
    {"F32", 0, DType::F32},      {"F16", 1, DType::F16},      {"BF16", 32, DType::BF16},
    {"Q4_0", 2, DType::Q4_0},    {"Q4_1", 3, DType::Q4_1},    {"Q5_0", 8, DType::Q5_0},
    {"Q5_1", 9, DType::Q5_1},    {"Q8_0", 7, DType::Q8_0},    {"Q2_K", 10, DType::Q2_K},
    {"Q3_K_S", 11, DType::Q3_K}, {"Q3_K_M", 12, DType::Q3_K}, {"Q3_K_L", 13, DType::Q3_K},
    {"Q4_K_S", 14, DType::Q4_K}, {"Q4_K_M", 15, DType::Q4_K}, {"Q5_K_S", 16, DType::Q5_K},
    {"Q5_K_M", 17, DType::Q5_K}, {"Q6_K", 18, DType::Q6_K},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// ggml_n_dims: trailing dimensions of size 1 do not count.
int n_dims(const std::vector<int64_t>& ne) {
  int n = static_cast<int>(ne.size());
  while (n > 1 && ne[n - 1] == 1) --n;
  return n;
}

// The layers that get more bits in the _M mixes: the first and last eighth, and every third
// layer in between.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// Layer index from a "blk.N." name, or -1.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000)
    v = v * 10 + (name[i++] - '0');
  return v;
}

}  // namespace

// models.md: Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16.
DType fit_row_type(DType t, int64_t ne0, bool* fell_back) {
  *fell_back = false;
  if (ne0 % dtype_block_size(t) == 0) return t;
  *fell_back = true;
  DType f = DType::F16;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
      f = DType::Q4_0;
      break;
    case DType::Q4_K:
      f = DType::Q5_0;
      break;
    case DType::Q5_K:
      f = DType::Q5_1;
      break;
    case DType::Q6_K:
      f = DType::Q8_0;
      break;
    default:
      break;
  }
  return ne0 % dtype_block_size(f) == 0 ? f : DType::F16;
}

namespace {

// Rule state that advances in file order, as llama.cpp's counters do.
struct RuleState {
  int i_attn_v = 0, n_attn_v = 0;
  int i_ffn_down = 0, n_ffn_down = 0;
};

// llama_tensor_get_type for the non-IQ mixes.
DType mix_rule(const QuantMix& mix, const QuantModelInfo& m, const QuantTensorDesc& t,
               RuleState& st) {
  const std::string& name = t.name;
  const std::string_view mx = mix.name;
  const bool falcon = m.arch == "falcon";
  const int n_gqa = m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
  DType type = mix.base;

  if (name == "output.weight" || (!m.has_output && name == "token_embd.weight")) {
    if (falcon || t.ne[0] % dtype_block_size(mix.base) != 0) return DType::Q8_0;
    return mix.base == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  }
  if (name == "token_embd.weight") return type;  // only the IQ mixes change it

  // llama.cpp files a fused attn_qkv under attn_v (the separate qkv branch is unreachable there).
  if (contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight")) {
    const int i = st.i_attn_v++, n = st.n_attn_v;
    if (mx == "Q2_K")
      type = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (mx == "Q3_K_M")
      type = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (mx == "Q3_K_L")
      type = DType::Q5_K;
    else if ((mx == "Q4_K_M" || mx == "Q5_K_M") && use_more_bits(i, n))
      type = DType::Q6_K;
    else if (mx == "Q4_K_S" && i < 4)
      type = DType::Q5_K;
    // 70B llamas share each attn_v among 8 heads: more bits there cost little.
    const bool is_70b = m.arch == "llama" && m.n_layer == 80;
    if (is_70b && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
    if (m.n_expert == 8) type = DType::Q8_0;
    return type;
  }
  if (contains(name, "attn_k.weight")) return m.n_expert == 8 ? DType::Q8_0 : type;
  if (contains(name, "ffn_down")) {
    int i = st.i_ffn_down++;
    const int n = st.n_ffn_down;
    if (m.n_expert > 1 && layer_of(name) >= 0) i = layer_of(name);  // experts: one per layer
    if (mx == "Q2_K")
      type = DType::Q3_K;
    else if (mx == "Q3_K_M")
      type = i < n / 16                         ? DType::Q5_K
             : (!falcon || use_more_bits(i, n)) ? DType::Q4_K
                                                : DType::Q3_K;
    else if (mx == "Q3_K_L")
      type = falcon ? DType::Q4_K : DType::Q5_K;
    else if (mx == "Q4_K_M") {
      if (falcon)
        type = i < n / 16 ? DType::Q6_K : use_more_bits(i, n) ? DType::Q5_K : DType::Q4_K;
      else if (use_more_bits(i, n))
        type = DType::Q6_K;
    } else if (mx == "Q5_K_M" && use_more_bits(i, n))
      type = DType::Q6_K;
    else if (mx == "Q4_K_S" && !falcon && i < n / 8)
      type = DType::Q5_K;
    return type;
  }
  if (contains(name, "attn_output.weight")) {
    if (falcon) return mx == "Q3_K_L" ? DType::Q4_K : type;
    if (m.n_expert == 8) {
      const bool bump =
          mx == "Q2_K" || mx == "Q3_K_S" || mx == "Q3_K_M" || mx == "Q4_K_S" || mx == "Q4_K_M";
      return bump ? DType::Q5_K : type;
    }
    if (mx == "Q2_K") return DType::Q3_K;
    if (mx == "Q3_K_M") return DType::Q4_K;
    if (mx == "Q3_K_L") return DType::Q5_K;
  }
  return type;
}

// A NaN or infinity would spread through a whole block's scale; refuse it and say where.
void check_finite(const std::string& name, int64_t row0, int64_t rows, int64_t n_per_row,
                  const float* y) {
  for (int64_t i = 0; i < rows * n_per_row; ++i)
    if (!std::isfinite(y[i]))
      fail("[quantize] tensor '", name, "' row ", row0 + i / n_per_row, " column ", i % n_per_row,
           " holds ", y[i], "; only finite weights can be quantized");
}

}  // namespace

const QuantMix* find_quant_mix(std::string_view name) {
  std::string n = upper(name);
  if (n == "Q4_K" || n == "Q5_K" || n == "Q3_K") n += "_M";
  for (const auto& m : kMixes)
    if (m.name == n) return &m;
  return nullptr;
}

std::string quant_mix_names() {
  std::string out;
  for (const auto& m : kMixes) out += (out.empty() ? "" : ", ") + std::string(m.name);
  return out;
}

QuantModelInfo quant_model_info(const gguf::File& file) {
  QuantModelInfo info;
  info.arch = file.architecture();
  const std::string p = info.arch + ".";
  // head_count_kv may be a per-layer array in some files; the first layer is what matters here.
  auto get_int = [&](const std::string& key, int fallback) {
    const gguf::Value* v = file.find(key);
    if (!v) return fallback;
    if (v->is_array()) return v->size() ? v->at(0).as_i32() : fallback;
    return v->as_i32();
  };
  info.n_layer = get_int(p + "block_count", 0);
  info.n_head = get_int(p + "attention.head_count", 0);
  info.n_head_kv = get_int(p + "attention.head_count_kv", info.n_head);
  info.n_expert = get_int(p + "expert_count", 0);
  info.has_output = file.find_tensor("output.weight") != nullptr;
  return info;
}

bool tensor_is_quantizable(const std::string& name, const std::vector<int64_t>& ne) {
  if (!ends_with(name, "weight") || n_dims(ne) < 2) return false;
  static constexpr std::string_view kKeep[] = {
      "_norm.weight",
      "ffn_gate_inp.weight",
      "altup",
      "laurel",
      "per_layer_model_proj",
      "ssm_conv1d.weight",
      "shortconv.conv.weight",
      "time_mix_first.weight",
      "attn_rel_b.weight",
  };
  for (auto k : kKeep)
    if (contains(name, k)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

std::vector<QuantPlanEntry> plan_quantization(const QuantMix& mix, const QuantModelInfo& info,
                                              const std::vector<QuantTensorDesc>& tensors,
                                              bool pure) {
  RuleState st;
  for (const auto& t : tensors)
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++st.n_attn_v;
  st.n_ffn_down = info.n_layer;
  const bool rules = !pure && dtype_is_quantized(mix.base);

  std::vector<QuantPlanEntry> plan;
  plan.reserve(tensors.size());
  for (const auto& t : tensors) {
    check(!t.ne.empty(), "[quantize] tensor '", t.name, "' has no dimensions");
    QuantPlanEntry e{t.name, t.ne, t.type, t.type, false};
    if (tensor_is_quantizable(t.name, t.ne)) {
      const DType want = rules ? mix_rule(mix, info, t, st) : mix.base;
      e.to = fit_row_type(want, t.ne[0], &e.fallback);
    }
    plan.push_back(std::move(e));
  }
  return plan;
}

void quantize_streaming(DType to, int64_t n_rows, int64_t n_per_row, const RowSource& source,
                        uint8_t* dst, ThreadPool* pool) {
  // Bounded float scratch: 4M floats (16 MiB) or one row, whichever is larger.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, n_per_row));
  const int64_t rows_here = std::min(chunk, n_rows);
  HostBuffer scratch(static_cast<size_t>(rows_here * n_per_row) * sizeof(float));
  const size_t row_bytes = dtype_row_bytes(to, n_per_row);
  for (int64_t r = 0; r < n_rows; r += chunk) {
    const int64_t n = std::min(chunk, n_rows - r);
    source(r, n, scratch.as<float>());
    quantize_rows(to, scratch.as<float>(), dst + static_cast<size_t>(r) * row_bytes, n, n_per_row,
                  pool);
  }
}

QuantizeReport quantize_model(const std::string& in, const std::string& out,
                              const QuantizeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const QuantMix* mix = find_quant_mix(options.mix);
  check(mix != nullptr, "[quantize] unknown type '", options.mix, "'; expected one of ",
        quant_mix_names());
  const gguf::File file = gguf::File::open(in);

  std::vector<QuantTensorDesc> descs;
  for (const auto& t : file.tensors()) descs.push_back({t.name, t.ne, t.type});
  const QuantModelInfo info = quant_model_info(file);
  const std::vector<QuantPlanEntry> plan = plan_quantization(*mix, info, descs, options.pure);
  for (const auto& e : plan)
    check(e.from == e.to || can_dequantize(e.from), "[quantize] tensor '", e.name, "' has type ",
          dtype_name(e.from), ", which eight cannot decode, so it cannot become ",
          dtype_name(e.to));

  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
  gguf::Writer writer;
  writer.copy_metadata(file);
  writer.set("general.quantization_version", gguf::Value::u32(2));
  writer.set("general.file_type", gguf::Value::u32(mix->file_type));

  QuantizeReport report;
  report.tensors = plan.size();
  for (size_t i = 0; i < plan.size(); ++i) {
    const QuantPlanEntry& e = plan[i];
    const gguf::TensorInfo& ti = file.tensors()[i];
    const Tensor src = file.tensor(ti);
    report.bytes_in += static_cast<int64_t>(ti.nbytes);
    report.bytes_out += static_cast<int64_t>(dtype_row_bytes(e.to, ti.numel()));
    report.type_counts[std::string(dtype_name(e.to))]++;
    report.fallbacks += e.fallback;
    if (e.fallback)
      log_warn("[quantize] '", e.name, "' rows of ", e.ne[0], " do not fit ", dtype_name(mix->base),
               " blocks; using ", dtype_name(e.to));
    if (e.from == e.to) {
      writer.add_tensor(e.name, src);
      continue;
    }
    ++report.converted;
    const int64_t n_per_row = e.ne[0];
    const int64_t n_rows = ti.numel() / n_per_row;
    const size_t in_row_bytes = dtype_row_bytes(e.from, n_per_row);
    writer.add_tensor(
        e.name, e.to, ti.shape, [&e, src, n_rows, n_per_row, in_row_bytes, &pool](uint8_t* dst) {
          const auto* base = static_cast<const uint8_t*>(src.raw());
          quantize_streaming(
              e.to, n_rows, n_per_row,
              [&](int64_t row0, int64_t rows, float* buf) {
                dequantize_rows(e.from, base + static_cast<size_t>(row0) * in_row_bytes, buf, rows,
                                n_per_row, &pool);
                check_finite(e.name, row0, rows, n_per_row, buf);
              },
              dst, &pool);
        });
  }
  writer.write(out, [&](size_t done, size_t total) {
    if (options.progress) options.progress({done, total, &plan[done - 1]});
  });
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace eight
