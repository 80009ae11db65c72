// SDXL GGUF files (see sdxl_gguf.h for the layouts read).
#include "models/sdxl/sdxl_gguf.h"

#include <map>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/half.h"
#include "core/log.h"

namespace eight::sdxl {
namespace {

const std::string kUNet = "model.diffusion_model.";
const std::string kCLIPL = "conditioner.embedders.0.transformer.";
const std::string kOpenCLIP = "conditioner.embedders.1.model.";

bool is_quantized(DType t) {
  return t != DType::F32 && t != DType::F16 && t != DType::BF16;
}

// sd.cpp's --convert-name text-encoder names back to the single file's; other names unchanged.
std::string canonical_name(const std::string& name) {
  std::string_view s = name;
  for (std::string_view p : {"cond_stage_model.transformer.", "text_encoders.clip_l.transformer."})
    if (s.starts_with(p)) return kCLIPL + std::string(s.substr(p.size()));
  for (std::string_view p :
       {"cond_stage_model.1.transformer.", "text_encoders.clip_g.transformer."}) {
    if (!s.starts_with(p)) continue;
    s.remove_prefix(p.size());
    static const std::map<std::string_view, std::string_view> fixed = {
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
        {"text_model.text_projection", "text_projection"}};
    if (auto it = fixed.find(s); it != fixed.end()) return kOpenCLIP + std::string(it->second);
    static const std::map<std::string_view, std::string_view> layer = {
        {"self_attn.in_proj.weight", "attn.in_proj_weight"},
        {"self_attn.in_proj.bias", "attn.in_proj_bias"},
        {"self_attn.out_proj.weight", "attn.out_proj.weight"},
        {"self_attn.out_proj.bias", "attn.out_proj.bias"},
        {"layer_norm1.weight", "ln_1.weight"},
        {"layer_norm1.bias", "ln_1.bias"},
        {"layer_norm2.weight", "ln_2.weight"},
        {"layer_norm2.bias", "ln_2.bias"},
        {"mlp.fc1.weight", "mlp.c_fc.weight"},
        {"mlp.fc1.bias", "mlp.c_fc.bias"},
        {"mlp.fc2.weight", "mlp.c_proj.weight"},
        {"mlp.fc2.bias", "mlp.c_proj.bias"}};
    const std::string_view layers = "text_model.encoder.layers.";
    if (s.starts_with(layers)) {
      std::string_view rest = s.substr(layers.size());
      const size_t dot = rest.find('.');
      if (dot != std::string_view::npos)
        if (auto it = layer.find(rest.substr(dot + 1)); it != layer.end())
          return cat(kOpenCLIP, "transformer.resblocks.", rest.substr(0, dot), ".", it->second);
    }
    return name;  // left for the unknown-name check
  }
  return name;
}

// Whether a kernel takes this tensor quantized: the linear weights of the UNet and the text
// encoders. Not the VAE (f32/f16/bf16 only), embedding tables (gathered by row),
// text_projection (transposed at load) or anything but a matrix.
bool keeps_quantized(const std::string& name, const Tensor& t) {
  return t.dim() == 2 && !name.starts_with("first_stage_model.") &&
         name.find("embedding") == std::string::npos && !name.ends_with("text_projection");
}

// A quantized (or float) tensor decoded into a new contiguous f32 or f16 tensor.
Tensor decode(const Tensor& t, DType to, const std::string& where, const std::string& name) {
  check(can_dequantize(t.dtype()), "[sdxl] ", where, ": tensor '", name, "' has type ",
        dtype_name(t.dtype()), ", which eight cannot decode");
  check(t.is_contiguous(), "[sdxl] ", where, ": tensor '", name, "' is not contiguous");
  const int64_t n = t.dim() == 0 ? 1 : t.size(-1);
  const int64_t rows = t.numel() / n;
  Tensor f32 = Tensor::empty(t.dim() == 0 ? Dims{1} : t.shape(), DType::F32);
  dequantize_rows(t.dtype(), t.raw(), f32.data<float>(), rows, n);
  if (to == DType::F32) return f32;
  Tensor f16 = Tensor::empty(f32.shape(), DType::F16);
  const float* src = f32.data<float>();
  uint16_t* dst = f16.data<uint16_t>();
  for (int64_t i = 0; i < f32.numel(); ++i) dst[i] = fp32_to_fp16(src[i]);
  return f16;
}

// Reads tensors by file name, decoding what must be decoded, and counts what it decoded.
class Reader {
 public:
  explicit Reader(const gguf::File& file) : file_(file) {}

  // `name`: the tensor's name in the file; `canonical`: its single-file name (decides the type).
  Tensor get(const std::string& name, const std::string& canonical) {
    const gguf::TensorInfo* info = file_.find_tensor(name);
    check(info != nullptr, "[sdxl] ", file_.path(), ": tensor '", name, "' is missing");
    Tensor t = file_.tensor(*info);
    if (const gguf::Value* v = file_.find("comfy.gguf.orig_shape." + name)) {
      // ComfyUI-GGUF regrouped the rows by 256 to quantize them; the original shape is kept here.
      check(v->is_array() && v->size() > 0 && v->size() <= 8, "[sdxl] ", file_.path(),
            ": comfy.gguf.orig_shape.", name, " is not a shape");
      Dims shape;
      int64_t numel = 1;
      for (int64_t d : v->as_i64s()) {
        check(d > 0 && d < (int64_t{1} << 32), "[sdxl] ", file_.path(), ": comfy.gguf.orig_shape.",
              name, " holds the dimension ", d);
        shape.push_back(d);
        numel *= d;
      }
      check(numel == t.numel(), "[sdxl] ", file_.path(), ": tensor '", name, "' has ", t.numel(),
            " elements but comfy.gguf.orig_shape says ", shape.str());
      if (!is_quantized(t.dtype())) {
        t = t.reshape(shape);
      } else if (shape.size() == 2 && shape[1] % dtype_block_size(t.dtype()) == 0 &&
                 t.is_contiguous()) {
        // The same blocks in the same order: a matrix whose rows hold whole blocks (Q8_0 of a
        // 640-wide linear) is read in place with its own shape.
        t = Tensor::from_storage(t.storage(), t.offset(), shape, t.dtype());
      } else {
        t = decode(t, DType::F16, file_.path(), name).reshape(shape);
        ++regrouped_;
      }
    }
    if (!is_quantized(t.dtype()) || keeps_quantized(canonical, t)) return t;
    if (t.dim() == 4)
      ++convolutions_;
    else
      ++others_;
    return decode(t, t.dim() <= 1 ? DType::F32 : DType::F16, file_.path(), name);
  }

  void log_decoded() const {
    if (convolutions_ + others_ + regrouped_ == 0) return;
    log_info("[sdxl] ", file_.path(), ": dequantized at load ", convolutions_,
             " convolution weight(s) to f16 (convolutions take f16), ", regrouped_,
             " regrouped tensor(s) to f16 and ", others_,
             " other tensor(s) no kernel takes quantized (norms, VAE, embeddings)");
  }

 private:
  const gguf::File& file_;
  int convolutions_ = 0, regrouped_ = 0, others_ = 0;
};

std::set<std::string> tensor_names(const gguf::File& file) {
  std::set<std::string> names;
  for (const auto& t : file.tensors()) names.insert(t.name);
  return names;
}

bool any_prefix(const std::set<std::string>& names, std::initializer_list<std::string_view> ps) {
  for (std::string_view p : ps) {
    const auto it = names.lower_bound(std::string(p));
    if (it != names.end() && it->starts_with(p)) return true;
  }
  return false;
}

}  // namespace

GGUFContents gguf_contents(const gguf::File& file) {
  const auto names = tensor_names(file);
  const bool unet = any_prefix(names, {kUNet});
  const bool text = any_prefix(names, {"conditioner.embedders.", "cond_stage_model.",
                                       "text_encoders.clip_l.", "text_encoders.clip_g."});
  if (unet && text) return GGUFContents::checkpoint;
  if (unet || names.count("input_blocks.0.0.weight") ||
      (names.count("conv_in.weight") && any_prefix(names, {"down_blocks."})))
    return GGUFContents::unet_only;
  return GGUFContents::unknown;
}

Components split_gguf(const gguf::File& file) {
  Reader reader(file);
  Components out;
  switch (gguf_contents(file)) {
    case GGUFContents::checkpoint: {
      std::map<std::string, std::string> file_name;  // single-file name -> name in the file
      for (const auto& t : file.tensors()) {
        const auto [it, fresh] = file_name.emplace(canonical_name(t.name), t.name);
        check(fresh, "[sdxl] ", file.path(), ": tensors '", it->second, "' and '", t.name,
              "' are the same weight");
      }
      std::vector<std::string> names;
      for (const auto& [n, unused] : file_name) names.push_back(n);
      out = split_single_file(
          names, [&](const std::string& n) { return reader.get(file_name.at(n), n); }, file.path());
      break;
    }
    case GGUFContents::unet_only: {
      const auto names = tensor_names(file);
      if (names.count("conv_in.weight")) {  // diffusers' unet/ names
        for (const auto& n : names) out.unet[n] = reader.get(n, kUNet + n);
      } else {
        out.unet = unet_from_original(
            std::vector<std::string>(names.begin(), names.end()),
            [&](const std::string& n) {
              return reader.get(n, n.starts_with(kUNet) ? n : kUNet + n);
            },
            file.path());
      }
      break;
    }
    case GGUFContents::unknown:
      fail("[sdxl] ", file.path(), " (general.architecture '", file.architecture(),
           "') holds no SDXL UNet: no model.diffusion_model.*, input_blocks.* or diffusers "
           "unet names");
  }
  reader.log_decoded();
  return out;
}

}  // namespace eight::sdxl
