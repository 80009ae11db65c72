// Writing whisper.cpp's ggml layout (see whisper_ggml.h) from a ModelFile, for `eight convert` of a
// CTranslate2 directory. Types as whisper.cpp's loader creates its tensors: the matrices (linear
// layers, token embedding) and convolution kernels in the file's type, positional embeddings,
// norms and biases F32, convolution biases [n_state, 1].
#include <cstring>
#include <fstream>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/half.h"
#include "formats/whisper_ggml.h"

namespace eight::whisper {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Stored in the file's type (F32 or F16); everything else is F32.
bool is_matrix_or_conv(const std::string& name, const Tensor& t) {
  return ends_with(name, ".weight") &&
         (t.dim() == 3 || (t.dim() == 2 && name.find("_ln") == std::string::npos));
}

// The values of `t` as floats, each row times its multiplier when `mult` is defined.
std::vector<float> values(const Tensor& t, const Tensor* mult) {
  const Tensor c = t.contiguous();
  std::vector<float> out(static_cast<size_t>(c.numel()));
  const int64_t rows = c.size(0), cols = c.numel() / rows;
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = out.data() + r * cols;
    dequantize_row(c.dtype(),
                   static_cast<const char*>(c.raw()) + dtype_row_bytes(c.dtype(), cols) * r, dst,
                   cols);
    if (mult)
      for (int64_t j = 0; j < cols; ++j) dst[j] *= mult->data<float>()[r];
  }
  return out;
}

template <class T>
void put(std::ofstream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

void write_ggml(const ModelFile& m, const std::string& path, DType type) {
  check(type == DType::F32 || type == DType::F16, "[whisper] ggml output type must be f32 or f16, ",
        "got ", dtype_name(type));
  std::ofstream out(path, std::ios::binary);
  check(out.good(), "[whisper] cannot write '", path, "'");
  const HParams& h = m.hparams;
  put(out, kGgmlMagic);
  for (int32_t v :
       {h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer, h.n_text_ctx,
        h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels, type == DType::F32 ? 0 : 1})
    put(out, v);
  const Tensor filters = m.mel_filters.contiguous();
  put(out, static_cast<int32_t>(filters.size(0)));
  put(out, static_cast<int32_t>(filters.size(1)));
  out.write(static_cast<const char*>(filters.raw()),
            static_cast<std::streamsize>(filters.nbytes()));
  // The text tokens only, as whisper.cpp's converter stores them; specials follow from n_vocab.
  const size_t n_text = std::min(m.vocab.size(), static_cast<size_t>(m.special.eot));
  put(out, static_cast<int32_t>(n_text));
  for (size_t i = 0; i < n_text; ++i) {
    put(out, static_cast<int32_t>(m.vocab[i].size()));
    out.write(m.vocab[i].data(), static_cast<std::streamsize>(m.vocab[i].size()));
  }
  for (const std::string& name : m.tensor_names) {
    if (ends_with(name, ".weight_scale")) continue;  // folded into its weight below
    const Tensor& t = m.tensor(name);
    const std::string scale_name = name + "_scale";
    const Tensor* mult = m.has(scale_name) ? &m.tensor(scale_name) : nullptr;
    const std::vector<float> v = values(t, mult);
    Dims shape = t.shape();
    if (name == "encoder.conv1.bias" || name == "encoder.conv2.bias") shape = {t.numel(), 1};
    const DType dt = is_matrix_or_conv(name, t) ? type : DType::F32;
    put(out, static_cast<int32_t>(shape.size()));
    put(out, static_cast<int32_t>(name.size()));
    put(out, static_cast<int32_t>(dt));
    for (int d = shape.size() - 1; d >= 0; --d) put(out, static_cast<int32_t>(shape[d]));
    out.write(name.data(), static_cast<std::streamsize>(name.size()));
    if (dt == DType::F32) {
      out.write(reinterpret_cast<const char*>(v.data()),
                static_cast<std::streamsize>(v.size() * sizeof(float)));
    } else {
      std::vector<uint16_t> half(v.size());
      for (size_t i = 0; i < v.size(); ++i) half[i] = fp32_to_fp16(v[i]);
      out.write(reinterpret_cast<const char*>(half.data()),
                static_cast<std::streamsize>(half.size() * 2));
    }
  }
  check(out.good(), "[whisper] failed writing '", path, "'");
}

}  // namespace eight::whisper
