// Loading a whisper.cpp ggml file into whisper::Model: every tensor bound by its checkpoint name
// (OpenAI's model.py state-dict names, which whisper.cpp keeps) and checked against the
// hyperparameters, so a forward pass never meets a misshapen weight.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "backend/cpu/kernels.h"
#include "backend/cpu/quant.h"
#include "core/error.h"
#include "formats/whisper_ct2.h"
#include "models/registry.h"
#include "models/whisper/whisper_internal.h"

namespace eight::whisper {

namespace {

const bool registered = [] {
  register_architecture({.name = "whisper",
                         .family = "speech",
                         .summary = "OpenAI Whisper speech-to-text (whisper.cpp ggml files)"});
  return true;
}();

class Binder {
 public:
  Binder(const ModelFile& f, Model::Weights& w) : f_(f), w_(w) {}

  // A 2-D weight [rows, cols] used by matmul in place.
  Tensor mat(const std::string& name, int64_t rows, int64_t cols) {
    const Tensor& t = f_.tensor(name);
    check(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols, "[whisper] ", f_.path,
          ": tensor '", name, "' has shape ", t.shape().str(), ", expected [", rows, ", ", cols,
          "]");
    check(cpu::matmul_weight_type_supported(t.dtype()), "[whisper] ", f_.path, ": tensor '", name,
          "' has type ", dtype_name(t.dtype()), " which has no matrix kernel");
    return t;
  }

  // A vector of n values as contiguous F32 (any shape with n elements and unit dims, e.g. the
  // [n_state, 1] conv biases), converted when stored in another type.
  Tensor vec(const std::string& name, int64_t n) { return f32(name, {n}); }

  // A tensor of `shape` elements as contiguous F32 (positional embeddings, norms, biases).
  Tensor f32(const std::string& name, const Dims& shape) {
    const Tensor& t = f_.tensor(name);
    check(t.numel() == shape.product() && (t.dim() == shape.size() || shape.size() == 1),
          "[whisper] ", f_.path, ": tensor '", name, "' has shape ", t.shape().str(), ", expected ",
          shape.str());
    if (shape.size() > 1)
      for (int d = 0; d < shape.size(); ++d)
        check(t.size(d) == shape[d], "[whisper] ", f_.path, ": tensor '", name, "' has shape ",
              t.shape().str(), ", expected ", shape.str());
    if (t.dtype() == DType::F32 && t.is_contiguous()) return t.reshape(shape);
    check(dtype_block_size(t.dtype()) == 1 || t.size(-1) % dtype_block_size(t.dtype()) == 0,
          "[whisper] ", f_.path, ": tensor '", name, "' of type ", dtype_name(t.dtype()),
          " cannot be read as floats");
    Tensor out = Tensor::empty(shape, DType::F32);
    const Tensor src = t.contiguous();
    dequantize_row(src.dtype(), src.raw(), out.data<float>(), src.numel());
    w_.copied_bytes += static_cast<int64_t>(out.nbytes());
    return out;
  }

  // conv weight [c_out, c_in, 3] (F32 or F16) → [c_out, 3·c_in] with element (o, k·c_in + i) =
  // w[o, i, k], in the stored type.
  Tensor conv(const std::string& name, int64_t c_out, int64_t c_in) {
    const Tensor& t = f_.tensor(name);
    check(t.dim() == 3 && t.size(0) == c_out && t.size(1) == c_in && t.size(2) == 3, "[whisper] ",
          f_.path, ": tensor '", name, "' has shape ", t.shape().str(), ", expected [", c_out, ", ",
          c_in, ", 3]");
    check(t.dtype() == DType::F32 || t.dtype() == DType::F16, "[whisper] ", f_.path,
          ": convolution weight '", name, "' must be f32 or f16, got ", dtype_name(t.dtype()));
    const Tensor src = t.contiguous();
    Tensor out = Tensor::empty({c_out, 3 * c_in}, t.dtype());
    const size_t es = dtype_row_bytes(t.dtype(), 1);
    const auto* s = static_cast<const char*>(src.raw());
    auto* d = static_cast<char*>(out.raw());
    for (int64_t o = 0; o < c_out; ++o)
      for (int64_t i = 0; i < c_in; ++i)
        for (int64_t k = 0; k < 3; ++k)
          std::memcpy(d + ((o * 3 + k) * c_in + i) * es, s + ((o * c_in + i) * 3 + k) * es, es);
    w_.copied_bytes += static_cast<int64_t>(out.nbytes());
    return out;
  }

  Norm norm(const std::string& prefix, int64_t n) {
    return {vec(prefix + ".weight", n), vec(prefix + ".bias", n)};
  }
  nn::Linear linear(const std::string& prefix, int64_t out, int64_t in, bool bias = true) {
    nn::Linear l{.weight = mat(prefix + ".weight", out, in), .bias = {}, .scale = {}};
    if (bias) l.bias = vec(prefix + ".bias", out);
    if (f_.has(prefix + ".weight_scale")) l.scale = vec(prefix + ".weight_scale", out);
    return l;
  }

  Model::Layer block(const std::string& p, int64_t n, bool cross) {
    Model::Layer L;
    L.attn_ln = norm(p + ".attn_ln", n);
    L.query = linear(p + ".attn.query", n, n);
    L.key = linear(p + ".attn.key", n, n, false);
    L.value = linear(p + ".attn.value", n, n);
    L.out = linear(p + ".attn.out", n, n);
    if (cross) {
      L.cross_attn_ln = norm(p + ".cross_attn_ln", n);
      L.cross_query = linear(p + ".cross_attn.query", n, n);
      L.cross_key = linear(p + ".cross_attn.key", n, n, false);
      L.cross_value = linear(p + ".cross_attn.value", n, n);
      L.cross_out = linear(p + ".cross_attn.out", n, n);
    }
    L.mlp_ln = norm(p + ".mlp_ln", n);
    L.mlp0 = linear(p + ".mlp.0", 4 * n, n);
    L.mlp2 = linear(p + ".mlp.2", n, 4 * n);
    return L;
  }

 private:
  const ModelFile& f_;
  Model::Weights& w_;
};

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, Device encoder_device) {
  return from_file(is_ct2_dir(path) ? load_ct2(path) : whisper::load(path), encoder_device);
}

std::shared_ptr<const Model> Model::from_file(ModelFile file, Device encoder_device) {
  auto m = std::make_shared<Model>();
  m->file_ = std::move(file);
  const HParams& hp = m->file_.hparams;
  const std::string& path = m->file_.path;
  // The decoder's cross-attention reads the encoder output, so the two widths must agree.
  check(hp.n_audio_state == hp.n_text_state, "[whisper] ", path, ": n_audio_state ",
        hp.n_audio_state, " differs from n_text_state ", hp.n_text_state);
  auto w = std::make_shared<Weights>();
  Binder b(m->file_, *w);
  const int64_t na = hp.n_audio_state, nt = hp.n_text_state;
  w->conv1 = b.conv("encoder.conv1.weight", na, hp.n_mels);
  w->conv1_bias = b.vec("encoder.conv1.bias", na);
  w->conv2 = b.conv("encoder.conv2.weight", na, na);
  w->conv2_bias = b.vec("encoder.conv2.bias", na);
  w->enc_pos = b.f32("encoder.positional_embedding", {hp.n_audio_ctx, na});
  for (int i = 0; i < hp.n_audio_layer; ++i)
    w->enc.push_back(b.block("encoder.blocks." + std::to_string(i), na, false));
  w->ln_post = b.norm("encoder.ln_post", na);
  w->tok_emb = b.mat("decoder.token_embedding.weight", hp.n_vocab, nt);
  if (m->file_.has("decoder.token_embedding.weight_scale"))
    w->tok_emb_scale = b.vec("decoder.token_embedding.weight_scale", hp.n_vocab);
  w->dec_pos = b.f32("decoder.positional_embedding", {hp.n_text_ctx, nt});
  for (int i = 0; i < hp.n_text_layer; ++i)
    w->dec.push_back(b.block("decoder.blocks." + std::to_string(i), nt, true));
  w->ln = b.norm("decoder.ln", nt);
  // The GPU encoder blocks have no per-feature multipliers, which integer weights need.
  if (encoder_device.kind != DeviceKind::CPU && !w->enc.empty() && w->enc[0].query.scale.defined())
    encoder_device = Device::cpu();
  if (encoder_device.kind != DeviceKind::CPU) place_encoder_blocks(*w, encoder_device);
  m->weights_ = std::move(w);
  return m;
}

int64_t Model::weight_bytes() const {
  int64_t n = weights_->copied_bytes;
  for (const auto& [name, t] : file_.tensors) n += static_cast<int64_t>(t.nbytes());
  return n;
}

const std::string& Model::token_text(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= file_.special.eot || id >= static_cast<int32_t>(file_.vocab.size()))
    return empty;
  return file_.vocab[id];
}

int32_t Model::language_token(const std::string& code) const {
  // English-only models are prompted without a language token (OpenAI's sot_sequence).
  if (!file_.special.multilingual) return -1;
  const auto& codes = language_codes();
  const auto it = std::find(codes.begin(), codes.end(), code);
  const int index = static_cast<int>(it - codes.begin());
  if (it == codes.end() || index >= file_.special.n_languages) return -1;
  return file_.special.language(index);
}

const std::vector<std::string>& Model::language_codes() {
  // OpenAI's whisper/tokenizer.py LANGUAGES, in order (token order); "yue" is v3's addition.
  static const std::vector<std::string> codes = {
      "en", "zh", "de", "es",  "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
      "it", "id", "hi", "fi",  "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
      "th", "ur", "hr", "bg",  "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
      "az", "sl", "kn", "et",  "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
      "gl", "mr", "pa", "si",  "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
      "am", "yi", "lo", "uz",  "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
      "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};
  return codes;
}

}  // namespace eight::whisper
