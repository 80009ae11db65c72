// Hugging Face CLIP checkpoint -> one GGUF (see clip_convert.h for the layout).
#include "models/clip/clip_convert.h"

#include <filesystem>
#include <memory>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/quantize_model.h"
#include "formats/safetensors.h"
#include "models/clip/clip_internal.h"

namespace eight::clip {
namespace {

namespace fs = std::filesystem;
using gguf::Value;

void set_tower(gguf::Writer& w, const std::string& p, const TowerConfig& t, int projection_dim) {
  w.set(p + ".embedding_length", Value::u32(static_cast<uint32_t>(t.hidden)));
  w.set(p + ".feed_forward_length", Value::u32(static_cast<uint32_t>(t.intermediate)));
  w.set(p + ".projection_dim", Value::u32(static_cast<uint32_t>(projection_dim)));
  w.set(p + ".attention.head_count", Value::u32(static_cast<uint32_t>(t.heads)));
  w.set(p + ".attention.layer_norm_epsilon", Value::f32(static_cast<float>(t.eps)));
  w.set(p + ".block_count", Value::u32(static_cast<uint32_t>(t.layers)));
  w.set(p + ".hidden_act", Value::string(t.act));
}

// The type a tensor gets: see clip_convert.h.
DType target_type(const std::string& hf, const Dims& shape, DType asked, bool* fallback) {
  *fallback = false;
  const bool is_f32 = asked == DType::F32;
  if (shape.size() <= 1 || hf.find("position_embedding") != std::string::npos) return DType::F32;
  if (shape.size() != 2 || hf.find("token_embedding") != std::string::npos)
    return is_f32 ? DType::F32 : DType::F16;
  if (shape[1] % dtype_block_size(asked) != 0) {
    *fallback = true;
    return DType::F16;
  }
  return asked;
}

}  // namespace

ConvertReport convert_checkpoint(const std::string& dir, const std::string& out,
                                 const ConvertOptions& options) {
  const fs::path d(dir);
  check(fs::is_directory(d), "[convert] '", dir, "' is not a checkpoint directory");
  check(fs::exists(d / "config.json"), "[convert] '", dir, "' has no config.json");
  check(can_quantize(options.type), "[convert] eight cannot write ", dtype_name(options.type),
        " tensors");
  HfDirectory hf = read_hf_directory(dir);
  Config c = std::move(hf.config);
  std::optional<text::CLIPTokenizer> tok = std::move(hf.tokenizer);

  const auto ckpt = std::make_shared<safetensors::Checkpoint>(safetensors::Checkpoint::open(dir));
  const bool has_text = ckpt->has("text_model.embeddings.token_embedding.weight") && tok;
  const bool has_vision = ckpt->has("vision_model.embeddings.patch_embedding.weight");
  check(has_text || has_vision, "[convert] '", dir, "' holds neither CLIP tower");
  if (ckpt->has("text_model.embeddings.token_embedding.weight") && !tok)
    log_warn("[convert] ", dir, " has no vocab.json+merges.txt or tokenizer.json: text dropped");
  // Validates shapes and names before writing anything (the views are cheap).
  {
    NamedTensors probe;
    for (const auto& n : ckpt->names())
      if (!n.ends_with("position_ids")) probe.emplace(n, ckpt->tensor(n));
    Config cc = c;
    cc.has_text = has_text;
    std::optional<text::CLIPTokenizer> copy;
    if (tok) copy = text::CLIPTokenizer::from_vocab(tok->tokens(), tok->merges());
    build_model(cc, probe, std::move(copy), dir);
  }

  gguf::Writer w;
  w.set("general.architecture", Value::string("clip"));
  w.set("general.name", Value::string(d.filename().string()));
  w.set("general.description", Value::string("CLIP converted by eight"));
  w.set("clip.has_text_encoder", Value::boolean(has_text));
  w.set("clip.has_vision_encoder", Value::boolean(has_vision));
  w.set("clip.has_llava_projector", Value::boolean(false));
  w.set("clip.use_gelu", Value::boolean(c.vision.act == "gelu"));
  w.set("clip.projection_dim", Value::u32(static_cast<uint32_t>(c.projection_dim)));
  if (has_text) {
    set_tower(w, "clip.text", c.text, c.projection_dim);
    w.set("clip.text.context_length", Value::u32(static_cast<uint32_t>(c.max_positions)));
    w.set("clip.text.eos_token_id", Value::u32(static_cast<uint32_t>(c.eos_token_id)));
    w.set("clip.text.bos_token_id", Value::u32(static_cast<uint32_t>(c.bos_token_id)));
    w.set("tokenizer.ggml.model", Value::string("clip"));
    w.set("tokenizer.ggml.tokens", Value::string_array(tok->tokens()));
    w.set("tokenizer.ggml.merges", Value::string_array(tok->merges()));
    w.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(tok->bos())));
    w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(tok->eos())));
  }
  if (has_vision) {
    set_tower(w, "clip.vision", c.vision, c.projection_dim);
    const auto& pp = c.preprocess;
    w.set("clip.vision.image_size", Value::u32(static_cast<uint32_t>(c.image_size)));
    w.set("clip.vision.patch_size", Value::u32(static_cast<uint32_t>(c.patch_size)));
    w.set("clip.vision.image_mean", Value::f32_array({pp.mean[0], pp.mean[1], pp.mean[2]}));
    w.set("clip.vision.image_std", Value::f32_array({pp.std[0], pp.std[1], pp.std[2]}));
    w.set("clip.vision.shortest_edge", Value::u32(static_cast<uint32_t>(pp.shortest_edge)));
    w.set("clip.vision.crop_height", Value::u32(static_cast<uint32_t>(pp.crop_height)));
    w.set("clip.vision.crop_width", Value::u32(static_cast<uint32_t>(pp.crop_width)));
    w.set("clip.vision.do_resize", Value::boolean(pp.do_resize));
    w.set("clip.vision.do_center_crop", Value::boolean(pp.do_center_crop));
    w.set("clip.vision.do_normalize", Value::boolean(pp.do_normalize));
    w.set("clip.vision.do_rescale", Value::boolean(pp.do_rescale));
    w.set("clip.vision.rescale_factor", Value::f32(static_cast<float>(pp.rescale_factor)));
  }

  auto pool =
      std::make_shared<ThreadPool>(options.threads > 0 ? options.threads : default_thread_count());
  ConvertReport report;
  for (const auto& hf : ckpt->names()) {
    const std::string name = gguf_tensor_name(hf);
    if (name.empty()) {
      if (!hf.ends_with("position_ids")) log_warn("[convert] skipping unused tensor '", hf, "'");
      continue;
    }
    if ((!has_text && hf.starts_with("text")) || (!has_vision && hf.starts_with("vision")))
      continue;
    const Tensor src = ckpt->tensor(hf);
    Dims shape = src.dim() == 0 ? Dims{1} : src.shape();
    bool fallback = false;
    const DType to = target_type(hf, shape, options.type, &fallback);
    report.fallbacks += fallback;
    report.tensors++;
    report.type_counts[std::string(dtype_name(to))]++;
    report.bytes_in += static_cast<int64_t>(src.nbytes());
    report.bytes_out += static_cast<int64_t>(dtype_row_bytes(to, shape.product()));
    const int64_t n_per_row = shape[shape.size() - 1], n_rows = shape.product() / n_per_row;
    w.add_tensor(name, to, shape, [src, to, n_rows, n_per_row, pool, hf](uint8_t* dst) {
      const DType from = src.dtype();
      check(can_dequantize(from), "[convert] tensor '", hf, "' has type ", dtype_name(from),
            ", which eight cannot decode");
      const size_t in_row = dtype_row_bytes(from, n_per_row);
      const Tensor rows = src.contiguous();
      const auto* base = static_cast<const uint8_t*>(rows.raw());
      quantize_streaming(
          to, n_rows, n_per_row,
          [&](int64_t row0, int64_t rows, float* buf) {
            dequantize_rows(from, base + static_cast<size_t>(row0) * in_row, buf, rows, n_per_row,
                            pool.get());
          },
          dst, pool.get());
    });
  }
  w.write(out, options.progress);
  return report;
}

}  // namespace eight::clip
