// `eight embed` for T5-family encoders (see t5_embed.h).
#include "cli/t5_embed.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "models/t5/t5.h"
#include "text/unigram.h"

namespace eight::cli {

namespace fs = std::filesystem;

bool is_t5_encoder(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::ifstream in(fs::path(path) / "config.json");
    if (!in.good()) return false;
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) return false;
    const std::string type = j.value("model_type", std::string());
    return type == "t5" || type == "mt5" || type == "umt5";
  }
  if (fs::path(path).extension() != ".safetensors" || !fs::is_regular_file(path, ec)) return false;
  try {
    return safetensors::File::open(path).find_tensor(
               "encoder.block.0.layer.0.SelfAttention.q.weight") != nullptr;
  } catch (const Error&) {
    return false;
  }
}

namespace {

text::UnigramTokenizer open_tokenizer(const std::string& model, const std::string& given) {
  if (!given.empty()) return text::UnigramTokenizer::open(given);
  std::error_code ec;
  const fs::path dir =
      fs::is_directory(model, ec) ? fs::path(model) : fs::path(model).parent_path();
  check(text::UnigramTokenizer::handles(dir.empty() ? "." : dir.string()),
        "[embed] no tokenizer.json or spiece.model beside ", model,
        ": give one with --tokenizer PATH (a T5 single file such as t5xxl_fp16.safetensors "
        "carries none)");
  return text::UnigramTokenizer::open(dir.empty() ? "." : dir.string());
}

}  // namespace

int run_t5_embed(const std::string& path, const std::vector<std::string>& texts,
                 const T5EmbedOptions& opt, ThreadPool& pool) {
  check(opt.max_sequence_length >= 0 && opt.pad_to >= 0, "[embed] negative token count");
  const auto enc = t5::Encoder::load(path);
  const auto tok = open_tokenizer(path, opt.tokenizer);
  const t5::Config& c = enc->config();
  check(tok.size() <= c.vocab, "[embed] the tokenizer has ", tok.size(),
        " pieces but the encoder's embedding only ", c.vocab, " rows");
  log_info("[embed] ", c.model_type, " encoder: ", c.n_layers, " layers, d_model ", c.d_model, ", ",
           c.n_heads, " heads, ", t5::feed_forward_name(c.ff), "; tokenizer ", tok.source(), " (",
           tok.size(), " pieces)");
  std::vector<Tensor> states;
  std::vector<std::vector<int32_t>> all_ids;
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tok.encode(text, true);
    // Truncation keeps </s> last, as transformers' tokenizer(truncation=True, max_length=N).
    const auto max_len = static_cast<size_t>(opt.max_sequence_length);
    if (max_len > 0 && ids.size() > max_len) {
      const bool eos_last = tok.eos() >= 0 && ids.back() == tok.eos();
      ids.resize(max_len);
      if (eos_last) ids.back() = tok.eos();
    }
    const auto n_valid = static_cast<int64_t>(ids.size());
    if (opt.pad_to > 0) {
      check(ids.size() <= static_cast<size_t>(opt.pad_to), "[embed] '", text, "' has ", ids.size(),
            " tokens, more than --pad-to ", opt.pad_to, " (add --max-sequence-length)");
      ids.resize(static_cast<size_t>(opt.pad_to), tok.pad() >= 0 ? tok.pad() : 0);
    }
    const int64_t valid = opt.attend_padding ? static_cast<int64_t>(ids.size()) : n_valid;
    const auto t0 = std::chrono::steady_clock::now();
    states.push_back(enc->forward(ids, valid, pool));
    log_info("[embed] encoded ", ids.size(), " tokens in ",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s (",
             pool.size(), " threads)");
    all_ids.push_back(std::move(ids));
  }
  const int64_t D = c.d_model;
  if (!opt.output.empty()) {
    const int64_t T = states[0].size(0);
    for (const Tensor& s : states)
      check(s.size(0) == T, "[embed] -o with several texts needs one length for all (got ", T,
            " and ", s.size(0), " tokens): add --pad-to N");
    Tensor out = states.size() == 1
                     ? states[0]
                     : Tensor::empty({static_cast<int64_t>(states.size()), T, D}, DType::F32);
    if (states.size() > 1)
      for (size_t i = 0; i < states.size(); ++i)
        std::memcpy(out.data<float>() + static_cast<int64_t>(i) * T * D,
                    states[i].data<const float>(), static_cast<size_t>(T * D) * sizeof(float));
    npy::write(opt.output, out);
  }
  if (opt.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < texts.size(); ++i) {
      const Tensor& s = states[i];
      nlohmann::json j = {{"input", texts[i]},
                          {"type", "text"},
                          {"ids", all_ids[i]},
                          {"shape", {s.size(0), s.size(1)}}};
      // Values only when small: XXL states are 4096 floats per token.
      if (s.numel() <= 4096)
        j["last_hidden_state"] =
            std::vector<float>(s.data<const float>(), s.data<const float>() + s.numel());
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const float* r = states[i].data<const float>();
    const std::string shown = texts[i].size() > 60 ? texts[i].substr(0, 57) + "..." : texts[i];
    std::printf(
        "text %s: %zu tokens -> last_hidden_state float32 [%lld, %lld], first [%.4f, %.4f, %.4f]\n",
        shown.c_str(), all_ids[i].size(), static_cast<long long>(states[i].size(0)),
        static_cast<long long>(D), r[0], r[1 % D], r[2 % D]);
  }
  if (!opt.output.empty()) std::printf("wrote %s\n", opt.output.c_str());
  return 0;
}

}  // namespace eight::cli
