#include "formats/whisper_ct2.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"

namespace eight::whisper {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A weight as whisper::Model takes it: the matrix (F32/F16/BF16 view, Q8_0 from int8, F16 from
// int16) and, for quantized ones, the per-row multipliers that undo CTranslate2's scale.
struct Matrix {
  Tensor weight;
  Tensor mult;  // F32 [rows] or undefined
};

// CTranslate2's scales as float multipliers 1/s, one per row (int16 stores one for the tensor).
Tensor row_multipliers(const ct2::ModelBin& bin, const std::string& var, int64_t rows) {
  const Tensor s = bin.tensor(var + "_scale");
  check(s.numel() == rows || s.numel() == 1, "[whisper] ", bin.path, ": '", var, "_scale' has ",
        s.numel(), " values for ", rows, " rows");
  check(s.dtype() == DType::F32 || s.dtype() == DType::F16 || s.dtype() == DType::BF16,
        "[whisper] ", bin.path, ": '", var, "_scale' has type ", dtype_name(s.dtype()));
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (int64_t i = 0; i < s.numel(); ++i) {
    const char* at = static_cast<const char*>(s.raw()) + i * dtype_row_bytes(s.dtype(), 1);
    float f;
    if (s.dtype() == DType::F32)
      std::memcpy(&f, at, 4);
    else {
      uint16_t h;
      std::memcpy(&h, at, 2);
      f = s.dtype() == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    check(std::isfinite(f) && f != 0, "[whisper] ", bin.path, ": '", var, "_scale' holds ", f);
    v[static_cast<size_t>(i)] = f;
  }
  Tensor out = Tensor::empty({rows}, DType::F32);
  for (int64_t r = 0; r < rows; ++r) out.data<float>()[r] = 1.0f / v[v.size() == 1 ? 0 : r];
  return out;
}

// An int8/int16 tensor [rows, ...] dequantized to F32 (q · mult[row]).
Tensor dequantized(const Tensor& q, const Tensor& mult) {
  Tensor out = Tensor::empty(q.shape(), DType::F32);
  const int64_t rows = q.size(0), cols = q.numel() / std::max<int64_t>(rows, 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const float v = q.dtype() == DType::I8 ? q.data<int8_t>()[i] : q.data<int16_t>()[i];
      out.data<float>()[i] = v * mult.data<float>()[r];
    }
  return out;
}

Matrix matrix(const ct2::ModelBin& bin, const std::string& var, int64_t rows, int64_t cols) {
  const Tensor t = bin.tensor(var);
  check(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols, "[whisper] ", bin.path, ": '", var,
        "' has shape ", t.shape().str(), ", expected [", rows, ", ", cols, "]");
  if (t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16)
    return {t, {}};
  check(t.dtype() == DType::I8 || t.dtype() == DType::I16, "[whisper] ", bin.path, ": '", var,
        "' has type ", dtype_name(t.dtype()), " (weights are float32, float16, bfloat16, int8 ",
        "or int16)");
  Tensor mult = row_multipliers(bin, var, rows);
  if (t.dtype() == DType::I16) {  // |q| <= 1024 by CTranslate2's int16 scheme: exact in F16
    Tensor out = Tensor::empty(t.shape(), DType::F16);
    for (int64_t i = 0; i < t.numel(); ++i)
      out.data<uint16_t>()[i] = fp32_to_fp16(static_cast<float>(t.data<int16_t>()[i]));
    return {out, mult};
  }
  if (cols % quant::QK8_0 != 0) return {dequantized(t, mult), {}};
  Tensor out = Tensor::empty(t.shape(), DType::Q8_0);
  auto* blocks = static_cast<quant::BlockQ8_0*>(out.raw());
  const uint16_t one = fp32_to_fp16(1.0f);
  for (int64_t b = 0; b < t.numel() / quant::QK8_0; ++b) {
    blocks[b].d = one;
    std::memcpy(blocks[b].qs, t.data<int8_t>() + b * quant::QK8_0, quant::QK8_0);
  }
  return {out, mult};
}

class Mapper {
 public:
  Mapper(const ct2::ModelBin& bin, ModelFile& m) : bin_(bin), m_(m) {}

  void put(const std::string& name, const Tensor& t) {
    check(m_.tensors.emplace(name, t).second, "[whisper] ", bin_.path, ": '", name, "' twice");
    m_.tensor_names.push_back(name);
    m_.tensor_bytes += static_cast<int64_t>(t.nbytes());
    // Not a view into the file: copied for alignment, repacked (int8) or converted.
    if (std::find(bin_.parts.begin(), bin_.parts.end(), t.storage()) == bin_.parts.end()) {
      ++m_.copied_tensors;
      m_.copied_bytes += static_cast<int64_t>(t.nbytes());
    }
  }
  // A float vector/matrix as stored (norms, biases, positional encodings).
  void plain(const std::string& name, const std::string& var) {
    const Tensor t = bin_.tensor(var);
    check(t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16,
          "[whisper] ", bin_.path, ": '", var, "' has type ", dtype_name(t.dtype()),
          ", expected a float type");
    put(name, t);
  }
  void norm(const std::string& name, const std::string& var) {
    plain(name + ".weight", var + "/gamma");
    plain(name + ".bias", var + "/beta");
  }
  // Linear `var` [parts·n, cols] split along its rows into parts named by `names` ("" skips a
  // bias: Whisper's key has none; CTranslate2 stores zeros there when fusing).
  void linear(const std::string& var, int64_t n, int64_t cols,
              const std::vector<std::pair<std::string, bool>>& names) {
    const int64_t parts = static_cast<int64_t>(names.size());
    const Matrix w = matrix(bin_, var + "/weight", parts * n, cols);
    const Tensor b = bin_.tensor(var + "/bias");
    check(b.numel() == parts * n, "[whisper] ", bin_.path, ": '", var, "/bias' has ", b.numel(),
          " values, expected ", parts * n);
    for (int64_t p = 0; p < parts; ++p) {
      const auto& [name, with_bias] = names[static_cast<size_t>(p)];
      put(name + ".weight", w.weight.slice(0, p * n, (p + 1) * n));
      if (w.mult.defined()) put(name + ".weight_scale", w.mult.slice(0, p * n, (p + 1) * n));
      if (with_bias) put(name + ".bias", b.reshape({parts * n}).slice(0, p * n, (p + 1) * n));
    }
  }
  void conv(const std::string& name, const std::string& var) {
    const Tensor t = bin_.tensor(var + "/weight");
    check(t.dim() == 3, "[whisper] ", bin_.path, ": '", var, "/weight' has shape ", t.shape().str(),
          ", expected [n_state, n_in, 3]");
    if (t.dtype() == DType::I8 || t.dtype() == DType::I16) {
      put(name + ".weight", dequantized(t, row_multipliers(bin_, var + "/weight", t.size(0))));
    } else if (t.dtype() == DType::BF16) {  // the convolution kernels take F32 or F16
      Tensor f = Tensor::empty(t.shape(), DType::F32);
      for (int64_t i = 0; i < t.numel(); ++i)
        f.data<float>()[i] = bf16_to_fp32(t.data<uint16_t>()[i]);
      put(name + ".weight", f);
    } else
      plain(name + ".weight", var + "/weight");
    plain(name + ".bias", var + "/bias");
  }
  void block(const std::string& dst, const std::string& src, int64_t n, bool cross) {
    norm(dst + ".attn_ln", src + "/self_attention/layer_norm");
    linear(src + "/self_attention/linear_0", n, n,
           {{dst + ".attn.query", true}, {dst + ".attn.key", false}, {dst + ".attn.value", true}});
    linear(src + "/self_attention/linear_1", n, n, {{dst + ".attn.out", true}});
    if (cross) {
      norm(dst + ".cross_attn_ln", src + "/attention/layer_norm");
      linear(src + "/attention/linear_0", n, n, {{dst + ".cross_attn.query", true}});
      linear(src + "/attention/linear_1", n, n,
             {{dst + ".cross_attn.key", false}, {dst + ".cross_attn.value", true}});
      linear(src + "/attention/linear_2", n, n, {{dst + ".cross_attn.out", true}});
    }
    norm(dst + ".mlp_ln", src + "/ffn/layer_norm");
    linear(src + "/ffn/linear_0", 4 * n, n, {{dst + ".mlp.0", true}});
    linear(src + "/ffn/linear_1", n, 4 * n, {{dst + ".mlp.2", true}});
  }

 private:
  const ct2::ModelBin& bin_;
  ModelFile& m_;
};

int32_t count_layers(const ct2::ModelBin& bin, const std::string& side) {
  int32_t n = 0;
  while (n < (1 << 12) && bin.has(side + "/layer_" + std::to_string(n) + "/ffn/linear_0/weight"))
    ++n;
  check(n >= 1, "[whisper] ", bin.path, ": no ", side, " layers (", side,
        "/layer_0/ffn/linear_0/weight is missing)");
  return n;
}

int32_t heads(const ct2::ModelBin& bin, const std::string& var, int64_t state) {
  const double h = bin.scalar(var);
  check(h >= 1 && h <= state && std::fmod(state, h) == 0, "[whisper] ", bin.path, ": '", var,
        "' = ", h, " does not divide the width ", state);
  return static_cast<int32_t>(h);
}

// The matrix type that names the file's weights (an ftype whisper.cpp knows where one fits).
void set_weight_type(const ct2::ModelBin& bin, ModelFile& m) {
  const ct2::VarType t = bin.get("decoder/layer_0/ffn/linear_0/weight").type;
  m.weight_type = t == ct2::VarType::F32    ? DType::F32
                  : t == ct2::VarType::BF16 ? DType::BF16
                  : t == ct2::VarType::I8   ? DType::Q8_0
                                            : DType::F16;
  m.hparams.ftype = t == ct2::VarType::F32 ? 0 : (t == ct2::VarType::I8 ? 7 : 1);
}

json parse_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  check(!j.is_discarded() && j.is_object(), "[whisper] ", what, " is not a JSON object");
  return j;
}

std::vector<int32_t> int_list(const json& j, const char* key, const std::string& what) {
  std::vector<int32_t> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  check(j[key].is_array(), "[whisper] ", what, ": '", key, "' is not a list");
  for (const auto& v : j[key]) {
    check(v.is_number_integer(), "[whisper] ", what, ": '", key, "' holds a non-integer");
    const auto i = v.get<int64_t>();
    check(i >= -1 && i < kMaxVocab, "[whisper] ", what, ": '", key, "' holds ", i);
    out.push_back(static_cast<int32_t>(i));
  }
  return out;
}

void read_config(const std::string& text, ModelFile& m) {
  if (text.empty()) return;
  const std::string what = m.path + "/config.json";
  const json j = parse_json(text, what);
  m.suppress_ids = int_list(j, "suppress_ids", what);
  m.suppress_ids_begin = int_list(j, "suppress_ids_begin", what);
  const std::vector<int32_t> langs = int_list(j, "lang_ids", what);
  for (size_t i = 0; i < langs.size(); ++i)
    check(langs[i] == m.special.language(static_cast<int>(i)), "[whisper] ", what, ": lang_ids[", i,
          "] = ", langs[i], " but n_vocab ", m.hparams.n_vocab, " puts that language at ",
          m.special.language(static_cast<int>(i)));
  if (j.contains("alignment_heads") && j["alignment_heads"].is_array())
    for (const auto& p : j["alignment_heads"]) {
      check(p.is_array() && p.size() == 2 && p[0].is_number_integer() && p[1].is_number_integer(),
            "[whisper] ", what, ": alignment_heads holds an entry that is not [layer, head]");
      const int l = p[0].get<int>(), h = p[1].get<int>();
      check(l >= 0 && l < m.hparams.n_text_layer && h >= 0 && h < m.hparams.n_text_head,
            "[whisper] ", what, ": alignment head [", l, ", ", h, "] is outside ",
            m.hparams.n_text_layer, " layers x ", m.hparams.n_text_head, " heads");
      m.alignment_heads.emplace_back(l, h);
    }
  for (const char* key : {"language", "task"})
    if (j.contains(key) && j[key].is_string())
      (key[0] == 'l' ? m.language : m.task) = j[key].get<std::string>();
  check(m.task.empty() || m.task == "transcribe" || m.task == "translate", "[whisper] ", what,
        ": task '", m.task, "' is not transcribe or translate");
}

// Token strings by id from vocabulary.json/.txt or tokenizer.json, decoded to bytes.
void read_vocabulary(const std::string& vocab, bool is_json, const std::string& tokenizer,
                     ModelFile& m) {
  const size_t n = static_cast<size_t>(m.hparams.n_vocab);
  if (!vocab.empty()) {
    if (is_json) {
      const json j = json::parse(vocab, nullptr, false);
      check(!j.is_discarded() && j.is_array(), "[whisper] ", m.path,
            "/vocabulary.json is not a JSON list");
      for (const auto& t : j) {
        check(t.is_string(), "[whisper] ", m.path, "/vocabulary.json holds a non-string");
        if (m.vocab.size() < n) m.vocab.push_back(byte_level_decode(t.get<std::string>()));
      }
    } else {
      std::istringstream in(vocab);
      for (std::string line; m.vocab.size() < n && std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        m.vocab.push_back(byte_level_decode(line));
      }
    }
  } else if (!tokenizer.empty()) {
    const json j = parse_json(tokenizer, m.path + "/tokenizer.json");
    check(j.contains("model") && j["model"].is_object() && j["model"].contains("vocab") &&
              j["model"]["vocab"].is_object(),
          "[whisper] ", m.path, "/tokenizer.json has no model.vocab object");
    m.vocab.assign(n, std::string());
    for (const auto& [token, id] : j["model"]["vocab"].items()) {
      check(id.is_number_integer(), "[whisper] ", m.path, "/tokenizer.json: id of '", token,
            "' is not an integer");
      const auto i = id.get<int64_t>();
      if (i >= 0 && static_cast<size_t>(i) < n)
        m.vocab[static_cast<size_t>(i)] = byte_level_decode(token);
    }
  }
  check(m.vocab.size() >= static_cast<size_t>(m.special.eot), "[whisper] ", m.path, ": ",
        m.vocab.size(), " tokens in the vocabulary, but n_vocab ", m.hparams.n_vocab, " needs the ",
        m.special.eot, " text tokens (vocabulary.json, vocabulary.txt or ", "tokenizer.json)");
}

std::string read_text(const fs::path& p) {
  if (!fs::is_regular_file(p)) return {};
  // JSON and vocabularies of real models are a few MiB; far larger is not a Whisper directory.
  check(fs::file_size(p) <= (64u << 20), "[whisper] ", p.string(), " is over 64 MiB");
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[whisper] cannot read ", p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string byte_level_decode(const std::string& token) {
  // GPT-2's bytes_to_unicode: printable bytes stand for themselves; the other 68 bytes map, in
  // order, to U+0100 onwards.
  static const auto table = [] {
    std::vector<int> cp_to_byte(512, -1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      cp_to_byte[static_cast<size_t>(printable ? b : next++)] = b;
    }
    return cp_to_byte;
  }();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const auto c = static_cast<unsigned char>(token[i]);
    uint32_t cp = 0;
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : 0;
    if (len == 1) cp = c;
    const bool continued = len == 2 && i + 1 < token.size() && (token[i + 1] & 0xc0) == 0x80;
    if (continued) cp = ((c & 0x1fu) << 6) | (token[i + 1] & 0x3fu);
    if (len == 0 || (len == 2 && !continued) || cp >= 512 || table[cp] < 0) return token;
    out.push_back(static_cast<char>(table[cp]));
    i += len;
  }
  return out;
}

Tensor slaney_mel_filters(int n_mels) {
  check(n_mels >= 1 && n_mels <= 1024, "[whisper] n_mels ", n_mels, " is outside [1, 1024]");
  constexpr int kBins = 201;
  constexpr double kRate = 16000, kNfft = 400;
  // Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
  const double f_sp = 200.0 / 3, min_log_mel = 1000.0 / f_sp, logstep = std::log(6.4) / 27;
  auto hz_to_mel = [&](double f) {
    return f < 1000 ? f / f_sp : min_log_mel + std::log(f / 1000) / logstep;
  };
  auto mel_to_hz = [&](double m) {
    return m < min_log_mel ? m * f_sp : 1000 * std::exp(logstep * (m - min_log_mel));
  };
  std::vector<double> edges(static_cast<size_t>(n_mels) + 2);
  const double top = hz_to_mel(kRate / 2);
  for (size_t i = 0; i < edges.size(); ++i)
    edges[i] = mel_to_hz(top * static_cast<double>(i) / static_cast<double>(n_mels + 1));
  Tensor out = Tensor::empty({n_mels, kBins}, DType::F32);
  for (int m = 0; m < n_mels; ++m) {
    const double lo = edges[m], mid = edges[m + 1], hi = edges[m + 2];
    const double enorm = 2.0 / (hi - lo);  // Slaney normalization: equal area per filter
    for (int k = 0; k < kBins; ++k) {
      const double f = k * kRate / kNfft;
      const double w = std::max(0.0, std::min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
      out.data<float>()[m * kBins + k] = static_cast<float>(w * enorm);
    }
  }
  return out;
}

bool is_ct2_dir(const std::string& path) {
  std::error_code ec;
  const fs::path d(path);
  return fs::is_directory(d, ec) && fs::is_regular_file(d / "config.json", ec) &&
         (fs::is_regular_file(d / "model.bin", ec) ||
          fs::is_regular_file(d / "model.bin.part1", ec));
}

bool is_whisper_model(const std::string& path) {
  if (is_ct2_dir(path)) return true;
  std::ifstream f(path, std::ios::binary);
  uint32_t magic = 0;
  return f.read(reinterpret_cast<char*>(&magic), 4) && magic == kGgmlMagic;
}

std::vector<std::string> ct2_model_files(const std::string& dir) {
  const fs::path d(dir);
  if (fs::is_regular_file(d / "model.bin")) return {(d / "model.bin").string()};
  std::vector<std::string> parts;
  for (int i = 1; i <= 1000 && fs::is_regular_file(d / ("model.bin.part" + std::to_string(i))); ++i)
    parts.push_back((d / ("model.bin.part" + std::to_string(i))).string());
  check(!parts.empty(), "[whisper] ", dir, ": no model.bin (or model.bin.part1, .part2, ...)");
  return parts;
}

ModelFile ct2_to_model_file(const ct2::ModelBin& bin, const std::string& config_json,
                            const std::string& vocabulary, bool vocabulary_is_json,
                            const std::string& tokenizer_json,
                            const std::string& preprocessor_json) {
  check(bin.spec == "WhisperSpec", "[whisper] ", bin.path, ": spec '", bin.spec,
        "' is not WhisperSpec (a CTranslate2 model of another kind)");
  check(bin.revision >= 1 && bin.revision <= 3, "[whisper] ", bin.path, ": WhisperSpec revision ",
        bin.revision, " is not 1..3");
  // Revision 3 numbers the activations anew; 3 is GELU (erf), what Whisper uses.
  if (bin.revision >= 3 && bin.has("decoder/activation"))
    check(bin.scalar("decoder/activation") == 3, "[whisper] ", bin.path, ": decoder activation ",
          bin.scalar("decoder/activation"), " is not GELU (3)");
  if (bin.has("decoder/scale_embeddings"))
    check(bin.scalar("decoder/scale_embeddings") == 0, "[whisper] ", bin.path,
          ": scaled embeddings are not Whisper's");
  ModelFile m;
  m.path = bin.path;
  m.format = "ct2";
  HParams& hp = m.hparams;
  const Tensor conv1 = bin.tensor("encoder/conv1/weight");
  const Tensor emb = bin.tensor("decoder/embeddings/weight");
  const Tensor enc_pos = bin.tensor("encoder/position_encodings/encodings");
  const Tensor dec_pos = bin.tensor("decoder/position_encodings/encodings");
  check(conv1.dim() == 3 && emb.dim() == 2 && enc_pos.dim() == 2 && dec_pos.dim() == 2,
        "[whisper] ", bin.path, ": conv1, embeddings or position encodings have the wrong rank");
  constexpr int64_t kDim = 1 << 16;
  for (int64_t v : {conv1.size(0), conv1.size(1), emb.size(1), enc_pos.size(0), dec_pos.size(0)})
    check(v >= 1 && v <= kDim, "[whisper] ", bin.path, ": a dimension of ", v, " is outside [1, ",
          kDim, "]");
  hp.n_vocab = static_cast<int32_t>(std::min<int64_t>(emb.size(0), kMaxVocab + 1));
  hp.n_audio_state = static_cast<int32_t>(conv1.size(0));
  hp.n_mels = static_cast<int32_t>(conv1.size(1));
  hp.n_audio_ctx = static_cast<int32_t>(enc_pos.size(0));
  hp.n_text_ctx = static_cast<int32_t>(dec_pos.size(0));
  hp.n_text_state = static_cast<int32_t>(emb.size(1));
  check(hp.n_audio_state == hp.n_text_state, "[whisper] ", bin.path, ": encoder width ",
        hp.n_audio_state, " differs from decoder width ", hp.n_text_state);
  hp.n_audio_head = heads(bin, "encoder/num_heads", hp.n_audio_state);
  hp.n_text_head = heads(bin, "decoder/num_heads", hp.n_text_state);
  hp.n_audio_layer = count_layers(bin, "encoder");
  hp.n_text_layer = count_layers(bin, "decoder");
  set_weight_type(bin, m);
  if (!preprocessor_json.empty()) {
    const json p = parse_json(preprocessor_json, m.path + "/preprocessor_config.json");
    if (p.contains("feature_size") && p["feature_size"].is_number_integer())
      check(p["feature_size"].get<int64_t>() == hp.n_mels, "[whisper] ", m.path,
            "/preprocessor_config.json: feature_size ", p["feature_size"].get<int64_t>(),
            " differs from the model's ", hp.n_mels, " mel bins");
  }

  Mapper map(bin, m);
  const int64_t n = hp.n_audio_state;
  map.conv("encoder.conv1", "encoder/conv1");
  map.conv("encoder.conv2", "encoder/conv2");
  map.plain("encoder.positional_embedding", "encoder/position_encodings/encodings");
  for (int i = 0; i < hp.n_audio_layer; ++i)
    map.block("encoder.blocks." + std::to_string(i), "encoder/layer_" + std::to_string(i), n,
              false);
  map.norm("encoder.ln_post", "encoder/layer_norm");
  const Matrix tok = matrix(bin, "decoder/embeddings/weight", hp.n_vocab, n);
  map.put("decoder.token_embedding.weight", tok.weight);
  if (tok.mult.defined()) map.put("decoder.token_embedding.weight_scale", tok.mult);
  // Whisper ties its output projection to the token embedding; CTranslate2 writes it as an
  // alias (or, from an older converter, as an equal copy).
  if (bin.has("decoder/projection/weight")) {
    const ct2::Variable& p = bin.get("decoder/projection/weight");
    const ct2::Variable& e = bin.get("decoder/embeddings/weight");
    bool same = &p == &e;
    if (!same && p.nbytes == e.nbytes && p.type == e.type) {
      const Tensor a = bin.tensor("decoder/projection/weight");
      same = std::memcmp(a.raw(), emb.raw(), e.nbytes) == 0;
    }
    check(same, "[whisper] ", bin.path, ": decoder/projection/weight differs from the token ",
          "embedding (an untied output projection is not Whisper's)");
    check(!bin.has("decoder/projection/bias"), "[whisper] ", bin.path,
          ": decoder/projection/bias is not Whisper's");
  }
  map.plain("decoder.positional_embedding", "decoder/position_encodings/encodings");
  for (int i = 0; i < hp.n_text_layer; ++i)
    map.block("decoder.blocks." + std::to_string(i), "decoder/layer_" + std::to_string(i), n, true);
  map.norm("decoder.ln", "decoder/layer_norm");
  // After the weights, so a malformed file's tensors are all checked first (the fuzz target's
  // small seeds have no Whisper vocabulary).
  m.special = special_tokens_for(hp.n_vocab);
  m.mel_filters = slaney_mel_filters(hp.n_mels);

  read_config(config_json, m);
  read_vocabulary(vocabulary, vocabulary_is_json, tokenizer_json, m);
  return m;
}

ModelFile load_ct2(const std::string& dir) {
  const fs::path d(dir);
  const ct2::ModelBin bin = ct2::load(ct2_model_files(dir));
  const bool json_vocab = fs::is_regular_file(d / "vocabulary.json");
  const std::string vocab = read_text(d / (json_vocab ? "vocabulary.json" : "vocabulary.txt"));
  // tokenizer.json is only read when no vocabulary file is there (it is the bigger file).
  const std::string tokenizer = vocab.empty() ? read_text(d / "tokenizer.json") : std::string();
  ModelFile m = ct2_to_model_file(bin, read_text(d / "config.json"), vocab, json_vocab, tokenizer,
                                  read_text(d / "preprocessor_config.json"));
  m.path = dir;
  return m;
}

}  // namespace eight::whisper
