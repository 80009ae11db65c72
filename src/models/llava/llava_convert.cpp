#include "models/llava/llava_convert.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/half.h"
#include "core/log.h"
#include "core/storage.h"
#include "formats/gguf.h"
#include "formats/image.h"
#include "formats/safetensors.h"
#include "models/clip/clip_convert.h"
#include "models/clip/clip_internal.h"
#include "models/llm/llm_hf.h"

namespace eight::llava {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int64_t need_int(const json& j, const char* key, const char* where) {
  check(j.contains(key) && j.at(key).is_number_integer() && j.at(key).get<int64_t>() > 0,
        "[convert] ", where, " needs a positive integer \"", key, "\"");
  return j.at(key).get<int64_t>();
}

// A tensor as f32 (any stored type), optionally with rows permuted from Hugging Face's
// rotate-half q/k layout to GGUF's interleaved pairs: within each head, row i of the first half
// and row i of the second half become rows 2i and 2i + 1.
Tensor as_f32(const Tensor& t, int64_t permute_heads = 0) {
  Tensor f = clip::to_f32(t);
  if (permute_heads == 0) return f;
  const int64_t rows = f.size(0), cols = f.numel() / rows, per = rows / permute_heads;
  check(rows % (2 * permute_heads) == 0, "[convert] cannot permute ", rows, " rows into ",
        permute_heads, " heads");
  Tensor out = Tensor::empty(f.shape(), DType::F32);
  for (int64_t h = 0; h < permute_heads; ++h)
    for (int64_t i = 0; i < per / 2; ++i)
      for (int64_t half = 0; half < 2; ++half)
        std::memcpy(out.data<float>() + (h * per + 2 * i + half) * cols,
                    f.data<float>() + (h * per + half * per / 2 + i) * cols,
                    static_cast<size_t>(cols) * sizeof(float));
  return out;
}

// Declares checkpoint tensor `hf` as `name`, converted while the file is written (a 7B model
// is never held in memory): F16 when asked and it is a matrix (or `force_f16`), else F32; q/k
// rows permuted when permute_heads > 0.
void add(gguf::Writer& w, const std::string& name, const safetensors::Checkpoint& ckpt,
         const std::string& hf, DType type, int64_t permute_heads = 0, bool force_f16 = false) {
  const Dims shape = ckpt.tensor(hf).shape();  // a view of the mapping: nothing is read
  const bool half = force_f16 || (type == DType::F16 && shape.size() >= 2);
  w.add_tensor(name, half ? DType::F16 : DType::F32, shape,
               [&ckpt, hf, half, permute_heads](uint8_t* dst) {
                 const Tensor t = as_f32(ckpt.tensor(hf), permute_heads);
                 if (!half) {
                   std::memcpy(dst, t.data<float>(), t.nbytes());
                   return;
                 }
                 auto* o = reinterpret_cast<uint16_t*>(dst);
                 for (int64_t i = 0; i < t.numel(); ++i) o[i] = fp32_to_fp16(t.data<float>()[i]);
               });
}

}  // namespace

ConvertPairReport convert_llava_next(const std::string& dir, const std::string& out, DType type) {
  check(type == DType::F32 || type == DType::F16, "[convert] LLaVA-NeXT converts to f32 or f16 (",
        "quantize the LLM GGUF afterwards with eight quantize)");
  const fs::path d(dir);
  const json cfg = json::parse(read_small_file((d / "config.json").string(), "[convert]"));
  check(cfg.value("model_type", "") == "llava_next" && cfg.contains("text_config") &&
            cfg.contains("vision_config"),
        "[convert] ", dir, " is not a LLaVA-NeXT checkpoint (model_type llava_next)");
  const json& vc = cfg.at("vision_config");
  const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(dir);

  ConvertPairReport r;
  r.llm_path = out;
  r.mmproj_path =
      (fs::path(out).parent_path() / ("mmproj-" + fs::path(out).filename().string())).string();
  {
    // The text model as llama.cpp's converter lays it out (llm_hf.h), q/k rows permuted.
    const llm::HFTextModel text = llm::describe_hf_text_model(dir, ckpt);
    gguf::Writer w;
    for (const auto& [k, v] : text.metadata) {
      w.set(k, v);
      if (k == "general.name") w.set("general.file_type", gguf::Value::u32(type == DType::F16));
    }
    r.tokenizer = text.tokenizer;
    for (const llm::HFTensor& t : text.tensors) add(w, t.gguf, ckpt, t.hf, type, t.permute_heads);
    r.llm_tensors = w.tensor_count();
    w.write(r.llm_path);
  }
  {
    const int64_t L = need_int(vc, "num_hidden_layers", "vision_config");
    int64_t layer = cfg.value("vision_feature_layer", -2);
    check(cfg.at("vision_feature_layer").is_number_integer(),
          "[convert] vision_feature_layer must be one integer");
    layer = layer < 0 ? L + 1 + layer : layer;
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string("clip"));
    w.set("general.name", gguf::Value::string(d.filename().string()));
    w.set("general.description", gguf::Value::string("image encoder for LLaVA"));
    w.set("general.file_type", gguf::Value::u32(type == DType::F16 ? 1 : 0));
    w.set("clip.has_text_encoder", gguf::Value::boolean(false));
    w.set("clip.has_vision_encoder", gguf::Value::boolean(true));
    w.set("clip.has_llava_projector", gguf::Value::boolean(true));
    w.set("clip.projector_type", gguf::Value::string("mlp"));
    const int64_t hidden = need_int(vc, "hidden_size", "vision_config");
    w.set("clip.vision.image_size",
          gguf::Value::u32(static_cast<uint32_t>(vc.value("image_size", 224))));
    w.set("clip.vision.patch_size",
          gguf::Value::u32(static_cast<uint32_t>(vc.value("patch_size", 32))));
    w.set("clip.vision.embedding_length", gguf::Value::u32(static_cast<uint32_t>(hidden)));
    w.set("clip.vision.feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(need_int(
                                                 vc, "intermediate_size", "vision_config"))));
    w.set("clip.vision.projection_dim",
          gguf::Value::u32(static_cast<uint32_t>(vc.value("projection_dim", hidden))));
    w.set("clip.vision.attention.head_count", gguf::Value::u32(static_cast<uint32_t>(need_int(
                                                  vc, "num_attention_heads", "vision_config"))));
    w.set("clip.vision.attention.layer_norm_epsilon",
          gguf::Value::f32(vc.value("layer_norm_eps", 1e-5f)));
    w.set("clip.vision.block_count", gguf::Value::u32(static_cast<uint32_t>(L)));
    std::vector<int32_t> pins;
    for (const auto& e : cfg.at("image_grid_pinpoints"))
      for (const auto& v : e) pins.push_back(v.get<int32_t>());
    w.set("clip.vision.image_grid_pinpoints", gguf::Value::i32_array(pins));
    w.set("clip.vision.image_aspect_ratio", gguf::Value::string("anyres"));
    w.set("clip.vision.mm_patch_merge_type", gguf::Value::string("spatial_unpad"));
    w.set("clip.vision.feature_layer", gguf::Value::i32_array({static_cast<int32_t>(layer)}));
    image::PreprocessConfig pp;
    if (fs::exists(d / "preprocessor_config.json"))
      pp = image::parse_preprocess_config(
          read_small_file((d / "preprocessor_config.json").string(), "[convert]"));
    w.set("clip.vision.image_mean", gguf::Value::f32_array({pp.mean[0], pp.mean[1], pp.mean[2]}));
    w.set("clip.vision.image_std", gguf::Value::f32_array({pp.std[0], pp.std[1], pp.std[2]}));
    w.set("clip.use_gelu", gguf::Value::boolean(vc.value("hidden_act", "") == "gelu"));
    const std::string pre = ckpt.has("model.image_newline") ? "model." : "";
    const std::string mm = pre + "multi_modal_projector.linear_";
    add(w, "mm.0.weight", ckpt, mm + "1.weight", type);
    add(w, "mm.0.bias", ckpt, mm + "1.bias", type);
    add(w, "mm.2.weight", ckpt, mm + "2.weight", type);
    add(w, "mm.2.bias", ckpt, mm + "2.bias", type);
    add(w, "model.image_newline", ckpt, pre + "image_newline", type);
    for (const auto& n : ckpt.names()) {
      std::string v = n;
      if (v.starts_with("model.")) v = v.substr(6);
      if (!v.starts_with("vision_tower.")) continue;
      v = v.substr(13);
      if (v.starts_with("vision_model.")) v = v.substr(13);
      if (v.starts_with("post_layernorm") || v.ends_with("position_ids")) continue;
      const std::string g = clip::gguf_tensor_name("vision_model." + v);
      check(!g.empty(), "[convert] no mmproj name for ", n);
      // llama.cpp stores the patch convolution in F16 unless F32 is asked.
      add(w, g, ckpt, n, type, 0, ckpt.tensor(n).dim() == 4 && type != DType::F32);
    }
    r.mmproj_tensors = w.tensor_count();
    w.write(r.mmproj_path);
  }
  return r;
}

}  // namespace eight::llava
