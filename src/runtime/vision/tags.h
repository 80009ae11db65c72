#pragma once
// Tagging images with an image tagger (models/tagger): batching files through the model, picking
// the tags above the thresholds, and the two outputs people use, the A1111-style prompt line and
// JSON. Shared by `eight tag` (files and the folder mode) and the server's POST /v1/tags.
//
// The prompt line follows the WD tagger tools (SmilingWolf's wd-tagger space, the wd14-tagger
// extension): general tags above `general` best first, then character tags above `character` best
// first, joined by ", "; in each name '_' becomes a space except in kaomoji (tags such as "^_^" or
// "0_0" whose underscore is the mouth), and '\', '(' and ')' are escaped with a backslash so the
// prompt parser reads "ganyu \(genshin impact\)" as text, not as emphasis. Rating tags never enter
// the line: they are reported apart.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/tagger/tagger.h"

namespace eight::vision {

struct TagThresholds {
  double general = 0.35;  // WD tagger defaults
  double character = 0.85;
};

struct ScoredTag {
  std::string name;  // as the model's tag list writes it
  float score = 0;
};

struct TagResult {
  std::vector<ScoredTag> rating;     // every rating tag, in the model's order
  std::vector<ScoredTag> general;    // score > thresholds.general, best first
  std::vector<ScoredTag> character;  // score > thresholds.character, best first
  std::string text;                  // the prompt line (see above)
  // The most probable rating tag; nullptr when the model has none.
  const ScoredTag* top_rating() const;
};

// Checks both thresholds lie in [0, 1] (Error naming `general_name` / `character_name`).
void check_thresholds(const TagThresholds& t, const char* general_name, const char* character_name);

// probs: the model's probabilities for one image, tags.size() of them.
TagResult select_tags(const std::vector<tagger::Tag>& tags, const float* probs,
                      const TagThresholds& thresholds);

// One tag as the prompt line writes it ("long_hair" → "long hair", "^_^" kept,
// "ganyu_(genshin_impact)" → "ganyu \(genshin impact\)").
std::string prompt_tag(const std::string& name);

// {"image", "rating": {name: probability, ...}, "general": [{"name", "score"}],
//  "character": [{"name", "score"}], "text"}.
nlohmann::json tag_result_json(const std::string& image, const TagResult& r);

// Runs the tagger over images `batch` at a time. `load(i)` decodes input i (throws Error when
// unreadable); on_result(i, probs) gets each image's tags().size() probabilities, on_error(i,
// message) each input that failed to decode or preprocess (the others still run).
void tag_images(const tagger::Tagger& model, size_t n_inputs, int batch, ThreadPool& pool,
                const std::function<image::Image(size_t)>& load,
                const std::function<void(size_t, const float*)>& on_result,
                const std::function<void(size_t, const std::string&)>& on_error);

}  // namespace eight::vision
