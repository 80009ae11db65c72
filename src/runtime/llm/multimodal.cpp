#include "runtime/llm/multimodal.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/llm/llm.h"
#include "runtime/plan/clip.h"

namespace eight {

MultimodalPrompt splice_images(std::span<const int32_t> ids, int32_t marker, int32_t bos,
                               std::span<const Tensor> images, int64_t n_embd) {
  const auto markers = static_cast<size_t>(std::count(ids.begin(), ids.end(), marker));
  check(markers == 0 || markers == images.size(), "[vision] the prompt has ", markers,
        " image places for ", images.size(), " image(s)");
  int64_t n_img = 0;
  for (const Tensor& t : images) {
    check(t.dtype() == DType::F32 && t.dim() == 2 && t.size(1) == n_embd && t.is_contiguous(),
          "[vision] image features ", t.str(), " do not match the LLM's width ", n_embd);
    n_img += t.size(0);
  }
  MultimodalPrompt p;
  p.n_image_tokens = n_img;
  const size_t total = ids.size() - markers + static_cast<size_t>(n_img);
  p.tokens.reserve(total);
  p.embeddings.assign(total * static_cast<size_t>(n_embd), 0.0f);
  size_t next = 0;
  auto put_image = [&](const Tensor& t) {
    std::memcpy(p.embeddings.data() + p.tokens.size() * n_embd, t.data<float>(), t.nbytes());
    p.tokens.insert(p.tokens.end(), static_cast<size_t>(t.size(0)), llm::kEmbeddingToken);
  };
  size_t start = 0;
  if (markers == 0) {  // images first, after BOS
    if (!ids.empty() && bos >= 0 && ids[0] == bos) p.tokens.push_back(ids[start++]);
    for (const Tensor& t : images) put_image(t);
  }
  for (size_t i = start; i < ids.size(); ++i) {
    if (markers && ids[i] == marker)
      put_image(images[next++]);
    else
      p.tokens.push_back(ids[i]);
  }
  return p;
}

MultimodalPrompt build_multimodal_prompt(
    const std::function<std::vector<int32_t>(const std::string& piece, bool first)>& encode,
    const std::string& prompt, int32_t bos, std::span<const Tensor> images, int64_t n_embd,
    std::string_view marker) {
  // Pieces between markers tokenized on their own; a marker becomes kEmbeddingToken (never a
  // real id), which splice_images then expands.
  std::vector<int32_t> ids;
  for (size_t pos = 0, n = 0;; ++n) {
    const size_t at = prompt.find(marker, pos);
    const auto t =
        encode(prompt.substr(pos, at == std::string::npos ? std::string::npos : at - pos), n == 0);
    ids.insert(ids.end(), t.begin(), t.end());
    if (at == std::string::npos) break;
    ids.push_back(llm::kEmbeddingToken);
    pos = at + marker.size();
  }
  return splice_images(ids, llm::kEmbeddingToken, bos, images, n_embd);
}

MultimodalPrompt build_multimodal_prompt(const text::Tokenizer& tok, const std::string& prompt,
                                         bool add_bos, bool parse_special,
                                         std::span<const Tensor> images, int64_t n_embd) {
  const bool bos = add_bos && tok.bos() >= 0;
  return build_multimodal_prompt(
      [&](const std::string& piece, bool first) {
        std::vector<int32_t> t;
        if (first && bos) t.push_back(tok.bos());
        if (!piece.empty()) {
          const auto e = tok.encode(piece, /*add_special=*/false, parse_special);
          t.insert(t.end(), e.begin(), e.end());
        }
        return t;
      },
      prompt, bos ? tok.bos() : -1, images, n_embd);
}

ExtraComponent vision_component(const llava::VisionEncoder& enc) {
  const int64_t rows = enc.max_tokens() * enc.config().text_hidden * int64_t{sizeof(float)};
  return {
      .id = "mmproj",
      .role = "vision encoder",
      .bytes = enc.weight_bytes(),
      .work_bytes = clip_vision_activation_bytes(enc.tower_config(), enc.max_tiles()) + 2 * rows};
}

}  // namespace eight
