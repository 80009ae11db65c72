#pragma once
// What the LLM commands (run, chat, complete, logits) share: model/threads/context options,
// sampling options, the bundled default model, the tokenizer, end-of-generation ids, Ctrl-C
// handling and token-id lists.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/tensor.h"
#include "formats/gguf.h"
#include "runtime/llm/generate.h"
#include "runtime/llm/sampler.h"
#include "runtime/llm/session.h"
#include "text/tokenizer.h"

namespace eight::llava {
class VisionEncoder;
}

namespace eight::cli {

struct ModelArgs {
  std::string model;
  int threads = 0;
  int64_t ctx = 0;
  std::string kv_type = "f16";
  int64_t ubatch = 512;
  std::string device = "auto";
  int64_t gpu_layers = -1;
  std::string vram;
  void add_to(ArgParser& p, bool model_required = true);
  // The model path (-m, a store name, or the bundled default when allowed) and session options.
  std::string resolve(bool allow_default) const;
  SessionOptions session_options() const;
};

struct SamplingArgs {
  double temp = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0;
  double presence_penalty = 0.0, frequency_penalty = 0.0;
  int top_k = 40, repeat_last_n = 64;
  int64_t seed = -1;
  void add_to(ArgParser& p);
  SamplerParams params() const;  // seed -1: from the clock
};

// --image / --mmproj for vision LLMs (LLaVA 1.6): the encoder is loaded on first use.
struct VisionArgs {
  std::string image, mmproj;
  void add_to(ArgParser& p);
  bool any() const { return !image.empty(); }
  // Decodes and encodes an image into LLM input rows f32 [n, n_embd] (Error when the encoder's
  // width differs from the LLM's n_embd, or --mmproj is missing).
  Tensor encode(const std::string& path, int64_t n_embd, int threads) const;
  // Loads the encoder (when --mmproj is given) and adds its bill to the session's plan.
  void plan(SessionOptions& so) const;
  // -m a Hugging Face LLaVA-NeXT directory without --mmproj: the directory is the encoder too.
  void from_model(const std::string& model) { mmproj = default_mmproj(model, mmproj); }
  static std::string default_mmproj(const std::string& model, const std::string& mmproj);

 private:
  mutable std::shared_ptr<const llava::VisionEncoder> encoder_;
};

// Constrained decoding: --grammar FILE (GBNF) or --json-schema FILE.
struct GrammarArgs {
  std::string grammar_file, json_schema_file;
  void add_to(ArgParser& p);
  // Reads and compiles the file given (errors name it) into params; nothing when neither is set.
  void apply(GenerateParams& params, const text::Tokenizer& tok) const;
};

// The bundled demo model: $EIGHT_DEFAULT_MODEL, else models/*.gguf next to the source tree the
// binary was built from, else in the current directory. Error when none is found.
std::string default_model_path();

// End-of-generation ids: EOS, EOT, EOM and the end-of-turn tokens the vocabulary has
// (<|end|>, <|eot_id|>, <|im_end|>, <|EOT|>, <|endoftext|>, </s>).
std::vector<int32_t> eog_tokens(const gguf::File& f);

// A model's tokenizer with what the commands (and the server) need from it.
class ModelText {
 public:
  explicit ModelText(const gguf::File& f) : tok_(text::Tokenizer::from_gguf(f)) {}
  // BOS per the model's metadata when add_bos; special-token text parsed when parse_special.
  std::vector<int32_t> encode(const std::string& s, bool add_bos, bool parse_special) const {
    return tok_.encode(s, add_bos, parse_special);
  }
  std::string piece(int32_t id) const { return tok_.token_to_piece(id); }  // for streaming
  int32_t find_token(const std::string& s) const { return tok_.find(s); }  // -1 when absent
  bool add_bos() const { return tok_.add_bos(); }
  const text::Tokenizer& tokenizer() const { return tok_; }

 private:
  text::Tokenizer tok_;
};

// Ctrl-C sets the flag (instead of killing the process) once installed; the commands clear it.
std::atomic<bool>& interrupted();
void install_interrupt_handler();

// Parses "1,2,3" or "1 2 3" into token ids.
std::vector<int32_t> parse_token_list(const std::string& text);

}  // namespace eight::cli
