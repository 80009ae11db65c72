// EnCodec decoder loading (see encodec.h): audiocraft's compression_state_dict.bin or a
// transformers directory, mapped onto one set of f32 weights with the weight norm folded.
#include <cmath>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/half.h"
#include "core/storage.h"
#include "formats/safetensors.h"
#include "formats/torch_checkpoint.h"
#include "models/encodec/encodec.h"
#include "models/registry.h"

namespace eight::encodec {
namespace {

namespace fs = std::filesystem;

const bool registered = (register_architecture({.name = "encodec",
                                                .family = "audio-codec",
                                                .summary = "EnCodec decoder (audiocraft's "
                                                           "compression model, transformers' "
                                                           "EncodecModel; MusicGen and MAGNeT's "
                                                           "32 kHz codec)"}),
                         true);

// The tensors of either file type by their state-dict names.
class Source {
 public:
  explicit Source(torch::Checkpoint c) : torch_(std::move(c)) {}
  explicit Source(safetensors::Checkpoint c) : st_(std::move(c)) {}

  const std::string& path() const { return torch_ ? torch_->path() : st_->path(); }
  bool has(const std::string& name) const {
    return torch_ ? torch_->find_tensor(torch_->state_dict_prefix() + name) != nullptr
                  : st_->has(name);
  }
  // A contiguous f32 copy (weights are folded and summed, so they are not used in place).
  Tensor f32(const std::string& name) const {
    check(has(name), "[encodec] ", path(), ": missing tensor '", name, "'");
    const Tensor t = torch_ ? torch_->state_tensor(name) : st_->tensor(name);
    const Tensor src = t.contiguous();
    Tensor out = Tensor::empty(t.shape(), DType::F32);
    float* o = out.data<float>();
    const int64_t n = t.numel();
    switch (t.dtype()) {
      case DType::F32:
        std::copy(src.data<float>(), src.data<float>() + n, o);
        break;
      case DType::F16:
        for (int64_t i = 0; i < n; ++i) o[i] = fp16_to_fp32(src.data<uint16_t>()[i]);
        break;
      case DType::BF16:
        for (int64_t i = 0; i < n; ++i) o[i] = bf16_to_fp32(src.data<uint16_t>()[i]);
        break;
      default:
        fail("[encodec] ", path(), ": tensor '", name, "' is ", dtype_name(t.dtype()),
             " (f32, f16 or bf16 expected)");
    }
    for (int64_t i = 0; i < n; ++i)
      check(std::isfinite(o[i]), "[encodec] ", path(), ": tensor '", name,
            "' holds a non-finite value at ", i);
    return out;
  }
  Tensor f32(const std::string& name, const Dims& shape) const {
    Tensor t = f32(name);
    check(t.shape() == shape, "[encodec] ", path(), ": tensor '", name, "' has shape ",
          t.shape().str(), " but the config implies ", shape.str());
    return t;
  }

 private:
  std::optional<torch::Checkpoint> torch_;
  std::optional<safetensors::Checkpoint> st_;
};

// w = g * v / ||v||, the norm over all but the first dimension (torch's weight_norm, dim=0).
Tensor fold_weight_norm(const Tensor& g, const Tensor& v, const std::string& name) {
  const int64_t d0 = v.size(0), per = v.numel() / d0;
  check(g.numel() == d0, "[encodec] ", name, ": weight norm g has ", g.numel(),
        " values for a first dimension of ", d0);
  Tensor w = Tensor::empty(v.shape(), DType::F32);
  for (int64_t i = 0; i < d0; ++i) {
    const float* vi = v.data<float>() + i * per;
    double sq = 0;
    for (int64_t j = 0; j < per; ++j) sq += double(vi[j]) * vi[j];
    const double norm = std::sqrt(sq);
    const double s = norm > 0 ? g.data<float>()[i] / norm : 0.0;
    float* wi = w.data<float>() + i * per;
    for (int64_t j = 0; j < per; ++j) wi[j] = static_cast<float>(vi[j] * s);
  }
  return w;
}

// A convolution under `prefix` (ending in '.'): plain `weight`, old-style weight_g/weight_v, or
// parametrizations.weight.original0/1, and an optional bias.
Conv load_conv(const Source& src, const std::string& prefix, const Dims& shape,
               int64_t dilation = 1, int64_t stride = 1) {
  Conv c;
  c.dilation = dilation;
  c.stride = stride;
  const Dims g_shape{shape[0], 1, 1};
  if (src.has(prefix + "weight")) {
    c.w = src.f32(prefix + "weight", shape);
  } else if (src.has(prefix + "weight_v")) {
    c.w = fold_weight_norm(src.f32(prefix + "weight_g", g_shape),
                           src.f32(prefix + "weight_v", shape), prefix + "weight");
  } else {
    const std::string p = prefix + "parametrizations.weight.original";
    check(src.has(p + "1"), "[encodec] ", src.path(), ": missing the weight of '", prefix,
          "' (weight, weight_v or parametrizations.weight.original1)");
    c.w = fold_weight_norm(src.f32(p + "0", g_shape), src.f32(p + "1", shape), prefix + "weight");
  }
  const int64_t c_out = stride > 1 ? shape[1] : shape[0];  // transposed: [C_in, C_out, k]
  if (src.has(prefix + "bias")) c.b = src.f32(prefix + "bias", {c_out});
  return c;
}

// Parameter-name prefixes of each layout (index: the decoder's nn.Sequential position).
struct Names {
  bool audiocraft;
  std::string layer(int64_t i) const {
    return cat(audiocraft ? "decoder.model." : "decoder.layers.", i, ".");
  }
  std::string conv(int64_t i) const { return layer(i) + (audiocraft ? "conv.conv." : "conv."); }
  std::string convtr(int64_t i) const {
    return layer(i) + (audiocraft ? "convtr.convtr." : "conv.");
  }
  std::string block(int64_t i, int64_t j) const {
    return cat(layer(i), "block.", j, audiocraft ? ".conv.conv." : ".conv.");
  }
  std::string shortcut(int64_t i) const {
    return layer(i) + (audiocraft ? "shortcut.conv.conv." : "shortcut.conv.");
  }
  std::string lstm(int64_t i) const { return layer(i) + "lstm."; }
  std::string codebook(int64_t q) const {
    return audiocraft ? cat("quantizer.vq.layers.", q, "._codebook.embed")
                      : cat("quantizer.layers.", q, ".codebook.embed");
  }
  std::string project_out(int64_t q) const {
    return cat("quantizer.vq.layers.", q, ".project_out.");
  }
};

Weights load_weights(const Source& src, Config& c, bool audiocraft) {
  const Names n{audiocraft};
  Weights w;
  if (c.n_q <= 0) {  // transformers: every quantizer layer present
    c.n_q = 0;
    while (c.n_q < 64 && src.has(n.codebook(c.n_q))) ++c.n_q;
    check(c.n_q > 0, "[encodec] ", src.path(), ": no codebooks ('", n.codebook(0), "')");
  }
  for (int64_t q = 0; q < c.n_q; ++q) {
    Tensor cb = src.f32(n.codebook(q));
    check(cb.dim() == 2 && cb.size(0) == c.bins, "[encodec] ", src.path(), ": codebook ", q,
          " has shape ", cb.shape().str(), " but the config says ", c.bins, " codes");
    const int64_t cdim = cb.size(1);
    if (audiocraft && src.has(n.project_out(q) + "weight")) {
      w.project_out.push_back(src.f32(n.project_out(q) + "weight", {c.dimension, cdim}));
      w.project_out_b.push_back(src.has(n.project_out(q) + "bias")
                                    ? src.f32(n.project_out(q) + "bias", {c.dimension})
                                    : Tensor::zeros({c.dimension}, DType::F32));
    } else {
      check(cdim == c.dimension, "[encodec] ", src.path(), ": codebook ", q, " is ", cdim,
            " wide but the latent is ", c.dimension, " and there is no project_out");
    }
    w.codebooks.push_back(std::move(cb));
  }
  check(w.project_out.empty() || static_cast<int64_t>(w.project_out.size()) == c.n_q, "[encodec] ",
        src.path(), ": only some codebooks have a project_out");

  int64_t mult = int64_t{1} << c.ratios.size();
  int64_t idx = 0;
  w.first = load_conv(src, n.conv(idx++), {mult * c.n_filters, c.dimension, c.kernel_size});
  // transformers always builds the LSTM module; audiocraft only with lstm > 0.
  if (c.lstm > 0 || !audiocraft) {
    const int64_t H = mult * c.n_filters;
    for (int64_t l = 0; l < c.lstm; ++l) {
      const std::string p = n.lstm(idx);
      nn::LstmLayer L;
      L.w_ih = src.f32(cat(p, "weight_ih_l", l), {4 * H, H});
      L.w_hh = src.f32(cat(p, "weight_hh_l", l), {4 * H, H});
      L.bias = src.f32(cat(p, "bias_ih_l", l), {4 * H});
      const Tensor b2 = src.f32(cat(p, "bias_hh_l", l), {4 * H});
      for (int64_t i = 0; i < 4 * H; ++i) L.bias.data<float>()[i] += b2.data<float>()[i];
      w.lstm.push_back(std::move(L));
    }
    check(!src.has(cat(n.lstm(idx), "weight_ih_l", c.lstm)), "[encodec] ", src.path(),
          ": the checkpoint has more LSTM layers than the config's ", c.lstm);
    ++idx;
  }
  for (int64_t ratio : c.ratios) {
    const int64_t dim = mult * c.n_filters;
    UpBlock up;
    ++idx;  // ELU
    up.up = load_conv(src, n.convtr(idx++), {dim, dim / 2, 2 * ratio}, 1, ratio);
    int64_t dilation = 1;
    for (int64_t j = 0; j < c.n_residual_layers; ++j, dilation *= c.dilation_base) {
      const int64_t hidden = (dim / 2) / c.compress;
      check(hidden >= 1, "[encodec] ", src.path(), ": compress ", c.compress,
            " leaves no channels");
      ResBlock rb;
      rb.conv1 =
          load_conv(src, n.block(idx, 1), {hidden, dim / 2, c.residual_kernel_size}, dilation);
      rb.conv2 = load_conv(src, n.block(idx, 3), {dim / 2, hidden, 1});
      if (!c.true_skip) rb.shortcut = load_conv(src, n.shortcut(idx), {dim / 2, dim / 2, 1});
      up.res.push_back(std::move(rb));
      ++idx;
    }
    w.ups.push_back(std::move(up));
    mult /= 2;
  }
  ++idx;  // ELU
  w.last = load_conv(src, n.conv(idx), {c.channels, c.n_filters, c.last_kernel_size});
  return w;
}

// A torch checkpoint holding audiocraft's exported compression model.
Decoder open_audiocraft(const std::string& file) {
  torch::Checkpoint ckpt = torch::Checkpoint::open(file);
  const pickle::Value& root = ckpt.root();
  check(root.is(pickle::Kind::Dict), "[encodec] ", file, " holds a ", root.describe(),
        ", not audiocraft's {'best_state', 'xp.cfg'} dict");
  if (const pickle::Value* pre = root.get("pretrained")) {
    fail("[encodec] ", file, " holds no weights: it points to the pretrained compression model '",
         pre->is(pickle::Kind::Str) ? pre->s : pre->describe(),
         "'; pass that model's directory (transformers layout: config.json and "
         "model.safetensors) with -m instead");
  }
  const pickle::Value* cfg = root.get("xp.cfg");
  check(cfg != nullptr, "[encodec] ", file, " has no 'xp.cfg' (audiocraft's exported config)");
  check(cfg->is(pickle::Kind::Str), "[encodec] ", file, ": 'xp.cfg' is a ", cfg->describe(),
        ", not the YAML text audiocraft's export writes");
  check(root.get("best_state") != nullptr && ckpt.state_dict_prefix() == "best_state.",
        "[encodec] ", file, " has no 'best_state' state dict");
  Config c = parse_audiocraft_config(cfg->s, file + " xp.cfg");
  Source src(std::move(ckpt));
  Weights w = load_weights(src, c, true);
  return Decoder(std::move(c), std::move(w), "audiocraft", file);
}

Decoder open_transformers(const fs::path& dir, const fs::path& weights) {
  const fs::path config = dir / "config.json";
  check(fs::is_regular_file(config), "[encodec] ", dir.string(),
        " has no config.json (transformers' EncodecConfig)");
  Config c =
      parse_hf_config(read_small_file(config.string(), "[encodec]", 1 << 20), config.string());
  c.n_q = 0;
  const bool st = weights.extension() == ".safetensors" || fs::is_directory(weights);
  Weights w = st ? load_weights(Source(safetensors::Checkpoint::open(weights.string())), c, false)
                 : load_weights(Source(torch::Checkpoint::open(weights.string())), c, false);
  return Decoder(std::move(c), std::move(w), "transformers", weights.string());
}

}  // namespace

Decoder Decoder::open(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) {
    if (fs::is_regular_file(p / "compression_state_dict.bin", ec))
      return open_audiocraft((p / "compression_state_dict.bin").string());
    for (const char* name : {"model.safetensors", "model.safetensors.index.json"})
      if (fs::exists(p / name, ec)) return open_transformers(p, p / name);
    if (fs::is_regular_file(p / "pytorch_model.bin", ec))
      return open_transformers(p, p / "pytorch_model.bin");
    fail("[encodec] ", path, " holds neither compression_state_dict.bin (audiocraft) nor ",
         "config.json with model.safetensors or pytorch_model.bin (transformers)");
  }
  check(fs::is_regular_file(p, ec), "[encodec] no such file or directory: ", path);
  if (p.extension() == ".safetensors" || p.filename() == "pytorch_model.bin")
    return open_transformers(p.parent_path().empty() ? fs::path(".") : p.parent_path(), p);
  return open_audiocraft(path);
}

int64_t Decoder::weight_bytes() const {
  int64_t n = 0;
  const auto conv = [&](const Conv& c) {
    n += c.w.defined() ? static_cast<int64_t>(c.w.nbytes()) : 0;
    n += c.b.defined() ? static_cast<int64_t>(c.b.nbytes()) : 0;
  };
  for (const Tensor& t : w_.codebooks) n += static_cast<int64_t>(t.nbytes());
  for (const Tensor& t : w_.project_out) n += static_cast<int64_t>(t.nbytes());
  conv(w_.first);
  conv(w_.last);
  for (const auto& L : w_.lstm)
    n += static_cast<int64_t>(L.w_ih.nbytes() + L.w_hh.nbytes() + L.bias.nbytes());
  for (const UpBlock& u : w_.ups) {
    conv(u.up);
    for (const ResBlock& r : u.res) {
      conv(r.conv1);
      conv(r.conv2);
      conv(r.shortcut);
    }
  }
  return n;
}

}  // namespace eight::encodec
