#pragma once
// BLIP internals shared by the loader, the towers and the decoding loops. Weight fields are
// commented with their Hugging Face names; shapes are PyTorch order.
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/blip/blip.h"
#include "models/clip/clip_internal.h"

namespace eight::blip {

using clip::LayerNorm;
using clip::Linear;

// BlipTextAttention: self (query/key/value) + output (dense, LayerNorm over the residual).
struct Attention {
  Linear q, k, v;  // self.{query,key,value}; k and v read encoder_hidden_size wide in cross blocks
  Linear out;      // output.dense
  LayerNorm norm;  // output.LayerNorm
};

// {text_encoder,text_decoder.bert}.encoder.layer.N (post-norm BERT with cross-attention).
struct TextLayer {
  Attention self_attn;             // attention
  std::optional<Attention> cross;  // crossattention (is_decoder configs)
  Linear fc1;                      // intermediate.dense
  Linear fc2;                      // output.dense
  LayerNorm norm;                  // output.LayerNorm
};

struct TextModel {
  Tensor word_embeddings;      // embeddings.word_embeddings.weight [vocab, hidden]
  Tensor position_embeddings;  // embeddings.position_embeddings.weight [max_pos, hidden] f32
  LayerNorm embed_norm;        // embeddings.LayerNorm
  std::vector<TextLayer> layers;
};

// text_decoder.cls.predictions
struct LmHead {
  Linear transform;  // transform.dense
  LayerNorm norm;    // transform.LayerNorm
  Linear decoder;    // decoder.weight (tied to the word embeddings when absent) + bias
};

// The WordPiece vocabulary of vocab.txt or tokenizer.json, plus the tokens decode skips.
struct Vocab {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::string> tokens;
  std::vector<bool> special;
  int32_t cls = -1, sep = -1, unk = -1;
};

struct Model::Impl {
  Config config;
  std::string name;
  int64_t weight_bytes = 0;
  int64_t file_bytes = 0;  // the checkpoint files as mapped (whole)
  // vision_model
  Tensor class_embedding;     // embeddings.class_embedding [1, 1, D] as [D] f32
  Linear patch_embedding;     // embeddings.patch_embedding: conv [D, 3, p, p] as [D, 3 p p]
  Tensor position_embedding;  // embeddings.position_embedding [1, 1 + patches, D] as 2-D f32
  clip::Tower tower;          // encoder.layers (qkv split into q/k/v views, projection = out)
  LayerNorm post_norm;        // post_layernorm
  std::optional<TextModel> question_encoder;  // text_encoder (VQA)
  TextModel decoder;                          // text_decoder.bert
  LmHead head;                                // text_decoder.cls.predictions
  Vocab vocab;
};

// Loading (blip_load.cpp).
std::unique_ptr<Model::Impl> load_directory(const std::string& dir);
// config.json's text (BlipConfig with transformers' defaults; generation fields of text_config).
Config parse_config_json(const std::string& text);
// The vocabulary from tokenizer.json, else vocab.txt, plus tokenizer_config.json's added special
// tokens (each argument a file's text, empty when absent). Throws Error on malformed input.
Vocab parse_vocab(const std::string& tokenizer_json, const std::string& vocab_txt,
                  const std::string& tokenizer_config);
// [CLS] WordPiece(text) [SEP], and BertTokenizer.decode(ids, skip_special_tokens=True)
// (blip_model.cpp).
std::vector<int32_t> encode(const Vocab& v, const std::string& text);
std::string decode(const Vocab& v, const std::vector<int32_t>& ids);

// Text side (blip_text.cpp). Cross-attention keys and values of one encoder sequence, per layer.
struct CrossKV {
  std::vector<Tensor> k, v;  // [S, hidden] f32 each
};
CrossKV cross_kv(const TextModel& m, const TextConfig& c, const Tensor& encoder_states,
                 ThreadPool& pool);
// The bidirectional question encoding F32 [T, hidden] (BlipTextModel, is_decoder=False).
Tensor encode_question(const TextModel& m, const TextConfig& c, const std::vector<int32_t>& ids,
                       const CrossKV& cross, ThreadPool& pool);

// The decoder's self-attention cache for `beams` sequences of up to `max_len` tokens.
struct DecoderCache {
  std::vector<Tensor> k, v;  // per layer [beams, max_len, hidden] f32
  int64_t beams = 0, max_len = 0;
  DecoderCache(const TextConfig& c, int64_t beams, int64_t max_len);
  // Beam b takes the cache of beam parents[b] for positions [0, len).
  void reorder(const std::vector<int>& parents, int64_t len);
};
// One decoding step: token[b] at position `pos` for each beam; returns logits F32 [beams, vocab].
Tensor decoder_step(const Model::Impl& m, const std::vector<int32_t>& tokens, int64_t pos,
                    DecoderCache& cache, const CrossKV& cross, ThreadPool& pool);

// Decoding (blip_generate.cpp): the whole sequence (prompt included, final [SEP] kept when
// reached), as transformers' greedy search or beam search returns it.
std::vector<int32_t> generate(const Model::Impl& m, const std::vector<int32_t>& prompt,
                              const CrossKV& cross, const GenerationConfig& g, ThreadPool& pool);

}  // namespace eight::blip
