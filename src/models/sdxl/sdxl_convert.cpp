// SDXL single file -> whole-checkpoint GGUF (see sdxl_convert.h for the per-tensor types).
#include "models/sdxl/sdxl_convert.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/quantize_model.h"
#include "formats/safetensors.h"
#include "models/sdxl/single_file.h"

namespace eight::sdxl {
namespace {

namespace fs = std::filesystem;
using gguf::Value;

const std::string kUNet = "model.diffusion_model.";

// The types a --type name stands for.
struct TypeChoice {
  DType base;  // UNet matrices
  DType more;  // the _M mixes' value and feed-forward down projections
  std::string mix_name;
};

std::optional<TypeChoice> parse_type(std::string type) {
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type == "q4_k_m") return TypeChoice{DType::Q4_K, DType::Q6_K, "Q4_K_M"};
  if (type == "q5_k_m") return TypeChoice{DType::Q5_K, DType::Q6_K, "Q5_K_M"};
  const auto t = dtype_from_name(type);
  if (!t || !can_quantize(*t)) return std::nullopt;
  std::string upper = type;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return TypeChoice{*t, *t, upper};
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

DType target_type(const std::string& name, const Dims& shape, const TypeChoice& c, bool* fallback) {
  *fallback = false;
  if (shape.size() <= 1) return DType::F32;
  const DType float_type = is_float(c.base) ? c.base : DType::F16;
  const bool unet_matrix = name.starts_with(kUNet) && shape.size() == 2 &&
                           name.find(".time_embed.") == std::string::npos &&
                           name.find(".label_emb.") == std::string::npos;
  const bool text_matrix = name.starts_with("conditioner.embedders.") && shape.size() == 2 &&
                           name.find("embedding") == std::string::npos &&
                           !name.ends_with("text_projection");
  DType want = float_type;
  if (unet_matrix) {
    const bool more = name.ends_with("attn1.to_v.weight") || name.ends_with("attn2.to_v.weight") ||
                      name.ends_with("ff.net.2.weight");
    want = more ? c.more : c.base;
  } else if (text_matrix) {
    want = is_float(c.base) ? c.base : DType::Q8_0;
  }
  if (is_float(want)) return want;
  return fit_row_type(want, shape[shape.size() - 1], fallback);
}

}  // namespace

bool is_convert_type(const std::string& type) {
  return parse_type(type).has_value();
}

ConvertReport convert_to_gguf(const std::string& input, const std::string& out,
                              const ConvertOptions& options) {
  const auto choice = parse_type(options.type);
  check(choice.has_value(), "[convert] unknown type '", options.type,
        "' (f32, f16, bf16, q8_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m, ...)");
  check(!fs::is_directory(input), "[convert] '", input,
        "' is a folder: eight converts SDXL single files (Stability's layout) today; save the "
        "diffusers pipeline as a single file first");
  const auto ckpt = std::make_shared<safetensors::Checkpoint>(safetensors::Checkpoint::open(input));
  check(is_sdxl_single_file(*ckpt), "[convert] '", input,
        "' is not an SDXL single file (no model.diffusion_model.* with conditioner.embedders.*)");
  // The renaming checks every part and tells which tensors inference uses (EMA copies, buffers
  // and training leftovers are dropped).
  std::set<std::string> used;
  split_single_file(
      ckpt->names(),
      [&](const std::string& n) {
        used.insert(n);
        return ckpt->tensor(n);
      },
      input);

  gguf::Writer w;
  w.set_max_name_bytes(159);  // sd.cpp's GGML_MAX_NAME=160; the original names run past 63
  w.set("general.architecture", Value::string("sdxl"));
  w.set("general.name", Value::string(fs::path(input).stem().string()));
  w.set("general.description",
        Value::string("SDXL checkpoint (UNet, VAE, both text encoders) converted by eight"));
  if (const QuantMix* mix = find_quant_mix(choice->mix_name); mix && mix->name == choice->mix_name)
    w.set("general.file_type", Value::u32(mix->file_type));
  w.set("general.quantization_version", Value::u32(2));

  auto pool =
      std::make_shared<ThreadPool>(options.threads > 0 ? options.threads : default_thread_count());
  ConvertReport report;
  for (const auto& name : ckpt->names()) {
    if (!used.count(name)) continue;
    const Tensor src = ckpt->tensor(name);
    const Dims shape = src.dim() == 0 ? Dims{1} : src.shape();
    bool fallback = false;
    const DType to = target_type(name, shape, *choice, &fallback);
    report.fallbacks += fallback;
    report.tensors++;
    report.type_counts[std::string(dtype_name(to))]++;
    report.bytes_in += static_cast<int64_t>(src.nbytes());
    report.bytes_out += static_cast<int64_t>(dtype_row_bytes(to, shape.product()));
    const int64_t n_per_row = shape[shape.size() - 1], n_rows = shape.product() / n_per_row;
    w.add_tensor(name, to, shape, [src, to, n_rows, n_per_row, pool, name](uint8_t* dst) {
      const DType from = src.dtype();
      check(can_dequantize(from), "[convert] tensor '", name, "' has type ", dtype_name(from),
            ", which eight cannot decode");
      const size_t in_row = dtype_row_bytes(from, n_per_row);
      const Tensor rows = src.contiguous();
      const auto* base = static_cast<const uint8_t*>(rows.raw());
      quantize_streaming(
          to, n_rows, n_per_row,
          [&](int64_t row0, int64_t count, float* buf) {
            dequantize_rows(from, base + static_cast<size_t>(row0) * in_row, buf, count, n_per_row,
                            pool.get());
          },
          dst, pool.get());
    });
  }
  w.write(out, options.progress);
  return report;
}

}  // namespace eight::sdxl
