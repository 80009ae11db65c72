#pragma once
// BLIP (Salesforce): image captioning (BlipForConditionalGeneration) and visual question
// answering (BlipForQuestionAnswering) from Hugging Face checkpoint directories (config.json,
// model.safetensors, vocab.txt or tokenizer.json, preprocessor_config.json), run as transformers
// runs them: a pre-norm ViT whose post-layernormed hidden states are the image embeddings; for VQA
// a bidirectional BERT question encoder cross-attending to them; then a causal BERT decoder
// cross-attending to the image (captions) or the question encoding (answers), decoded greedily or
// by beam search as transformers' generate does.
//
//   auto m = blip::Model::load("blip-image-captioning-base");
//   blip::Generated g = m->caption(m->preprocess(image::load("cat.jpg")), {}, pool);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/image.h"

namespace eight::blip {

struct VisionConfig {
  int hidden = 768, intermediate = 3072, layers = 12, heads = 12;
  int image_size = 384, patch_size = 16;
  double eps = 1e-5;
};

struct TextConfig {
  int hidden = 768, intermediate = 3072, layers = 12, heads = 8;
  int encoder_hidden = 768;  // encoder_hidden_size: the width cross-attention reads
  int vocab_size = 30524, max_positions = 512;
  double eps = 1e-12;
  int bos_token_id = 30522;  // [DEC]: the decoder's first token
  int sep_token_id = 102;    // [SEP]: ends generation
  int pad_token_id = 0;
};

// Decoding settings, as transformers' GenerationConfig defaults them (generation_config.json,
// else the legacy fields of config.json's text_config, else transformers' defaults).
struct GenerationConfig {
  // Prompt + generated tokens, the [DEC] token included, when a config sets it. When none does,
  // transformers 5 generates 20 new tokens (max_length = 20 + prompt, at most max_positions).
  int max_length = 20;
  bool max_length_set = false;
  int min_length = 0;  // [SEP] is masked until the sequence has this many tokens
  int num_beams = 1;
  double length_penalty = 1.0;
  bool early_stopping = false;
};

struct Config {
  VisionConfig vision;
  TextConfig text;
  GenerationConfig generation;
  bool vqa = false;  // BlipForQuestionAnswering (has a question encoder)
  image::PreprocessConfig preprocess;
};

struct GenerateOptions {
  std::string prompt;       // caption prefix (captioning models only)
  int max_new_tokens = -1;  // -1: the model's max_length
  int num_beams = -1;       // -1: the model's num_beams
};

struct Generated {
  std::vector<int32_t> tokens;  // after the prompt, without the final [SEP]
  std::string text;             // the whole decoded sequence (prompt included), as the processor
                                // decodes it with skip_special_tokens
  bool ended = false;           // generation stopped at [SEP] (not at the length limit)
  int64_t prompt_tokens = 0;    // decoder prompt ([DEC] + prefix), plus the question for VQA
};

class Model {
 public:
  // dir: a Hugging Face BLIP directory. Throws Error naming what is missing or malformed.
  static std::shared_ptr<const Model> load(const std::string& dir);
  ~Model();

  const Config& config() const;
  std::string name() const;
  int64_t weight_bytes() const;
  int64_t file_bytes() const;  // the checkpoint files as mapped, headers included (the planner's)
  DType matrix_type() const;   // the type of the weight matrices (F32, F16, BF16)
  bool is_vqa() const { return config().vqa; }

  // BlipImageProcessor: RGB, resize to the configured size (PIL bicubic), rescale, normalize.
  // F32 [3, H, W].
  Tensor preprocess(const image::Image& img) const;
  // The vision tower's post-layernormed last hidden state, F32 [1 + patches, hidden] for pixels
  // F32 [3, H, W].
  Tensor image_embeddings(const Tensor& pixels, ThreadPool& pool) const;

  // A caption (captioning models). Throws Error for a VQA model.
  Generated caption(const Tensor& pixels, const GenerateOptions& opt, ThreadPool& pool) const;
  // An answer to `question` (VQA models). Throws Error for a captioning model.
  Generated answer(const Tensor& pixels, const std::string& question, const GenerateOptions& opt,
                   ThreadPool& pool) const;

  // [CLS] text [SEP] with the model's WordPiece vocabulary (lower-cased).
  std::vector<int32_t> tokenize(const std::string& text) const;
  // As BertTokenizer.decode(ids, skip_special_tokens=True).
  std::string decode(const std::vector<int32_t>& ids) const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::blip
