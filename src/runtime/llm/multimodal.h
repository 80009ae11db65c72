#pragma once
// Prompts with images for vision LLMs (LLaVA): token ids where each image's positions hold
// llm::kEmbeddingToken, and the rows those positions read (the image features). The image goes
// where the prompt holds the literal text "<image>" (no special-token parsing needed); a prompt
// without one gets its images before the text (after BOS), as LLaVA's processors do.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/llava/llava.h"
#include "runtime/plan/planner.h"
#include "text/tokenizer.h"

namespace eight {

inline constexpr const char* kImageMarker = "<image>";

struct MultimodalPrompt {
  std::vector<int32_t> tokens;
  // [tokens.size(), n_embd] f32 rows aligned with tokens; text positions are zero (unread).
  std::vector<float> embeddings;
  int64_t n_image_tokens = 0;
};

// Each occurrence of `marker` in `ids` becomes the next image's rows (images[i]: f32
// [n_i, n_embd]). With no marker, the images go after a leading `bos` (or first when ids do not
// start with it). Throws Error when markers and images disagree in number.
MultimodalPrompt splice_images(std::span<const int32_t> ids, int32_t marker, int32_t bos,
                               std::span<const Tensor> images, int64_t n_embd);

// Tokenizes `prompt` piece by piece around each literal "<image>" (BOS once, at the start, when
// add_bos) and splices the images in (see splice_images for a prompt without one).
// The same with the caller's tokenization: encode(piece, first) gives a piece's ids (`first`:
// the text before the first marker, where BOS belongs; pieces may be empty). `bos`: the id a
// marker-less prompt's images follow when it starts with it (-1: none). `marker`: the text that
// holds an image's place (the server's own mark instead of "<image>").
MultimodalPrompt build_multimodal_prompt(
    const std::function<std::vector<int32_t>(const std::string& piece, bool first)>& encode,
    const std::string& prompt, int32_t bos, std::span<const Tensor> images, int64_t n_embd,
    std::string_view marker = kImageMarker);

// parse_special: special-token text in the pieces becomes those tokens.
MultimodalPrompt build_multimodal_prompt(const text::Tokenizer& tok, const std::string& prompt,
                                         bool add_bos, bool parse_special,
                                         std::span<const Tensor> images, int64_t n_embd);

// What the planner bills for a vision encoder: its weights, and as work the activations of the
// vision tower over one image's tiles plus the image's rows (features and the prompt-aligned
// copy the LLM reads) at the encoder's largest token count.
ExtraComponent vision_component(const llava::VisionEncoder& encoder);

}  // namespace eight
