#include "runtime/vision/tags.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"

namespace eight::vision {
namespace {

// Tags whose underscore is part of the face, kept as written: the list SmilingWolf's wd-tagger
// space and the wd14-tagger extension keep (every such tag in the WD v3 tag lists).
constexpr std::array<const char*, 19> kKaomoji = {
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<",  "3_3",
    "6_9", ">_o",     "@_@", "^_^", "o_o", "u_u",     "x_x",     "|_|", "||_||"};

bool is_kaomoji(const std::string& name) {
  return std::any_of(kKaomoji.begin(), kKaomoji.end(), [&](const char* k) { return name == k; });
}

void sort_best_first(std::vector<ScoredTag>& v) {
  std::stable_sort(v.begin(), v.end(),
                   [](const ScoredTag& a, const ScoredTag& b) { return a.score > b.score; });
}

nlohmann::json scored_list(const std::vector<ScoredTag>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (const ScoredTag& t : v) out.push_back({{"name", t.name}, {"score", t.score}});
  return out;
}

}  // namespace

const ScoredTag* TagResult::top_rating() const {
  if (rating.empty()) return nullptr;
  return &*std::max_element(rating.begin(), rating.end(),
                            [](const auto& a, const auto& b) { return a.score < b.score; });
}

void check_thresholds(const TagThresholds& t, const char* general_name,
                      const char* character_name) {
  check(t.general >= 0 && t.general <= 1, general_name, " must lie in [0, 1], got ", t.general);
  check(t.character >= 0 && t.character <= 1, character_name, " must lie in [0, 1], got ",
        t.character);
}

std::string prompt_tag(const std::string& name) {
  std::string out;
  const bool keep_underscores = is_kaomoji(name);
  for (const char c : name) {
    if (c == '_' && !keep_underscores) {
      out += ' ';
      continue;
    }
    if (c == '\\' || c == '(' || c == ')') out += '\\';
    out += c;
  }
  return out;
}

TagResult select_tags(const std::vector<tagger::Tag>& tags, const float* probs,
                      const TagThresholds& th) {
  TagResult r;
  for (size_t i = 0; i < tags.size(); ++i) {
    const ScoredTag t{tags[i].name, probs[i]};
    switch (tags[i].category) {
      case tagger::Category::Rating:
        r.rating.push_back(t);
        break;
      case tagger::Category::Character:
        if (t.score > th.character) r.character.push_back(t);
        break;
      case tagger::Category::General:
        if (t.score > th.general) r.general.push_back(t);
        break;
    }
  }
  sort_best_first(r.general);
  sort_best_first(r.character);
  for (const auto* list : {&r.general, &r.character})
    for (const ScoredTag& t : *list) {
      if (!r.text.empty()) r.text += ", ";
      r.text += prompt_tag(t.name);
    }
  return r;
}

nlohmann::json tag_result_json(const std::string& image, const TagResult& r) {
  nlohmann::json rating = nlohmann::json::object();
  for (const ScoredTag& t : r.rating) rating[t.name] = t.score;
  return {{"image", image},
          {"rating", rating},
          {"general", scored_list(r.general)},
          {"character", scored_list(r.character)},
          {"text", r.text}};
}

void tag_images(const tagger::Tagger& model, size_t n_inputs, int batch, ThreadPool& pool,
                const std::function<image::Image(size_t)>& load,
                const std::function<void(size_t, const float*)>& on_result,
                const std::function<void(size_t, const std::string&)>& on_error) {
  check(batch >= 1, "[tag] the batch must be at least 1, got ", batch);
  const auto n_tags = static_cast<int64_t>(model.tags().size());
  // Each preprocessed image is copied into its row of one batch tensor as soon as it is made, so
  // a batch holds `batch` inputs once (not a list of them plus the stacked copy) and the decoded
  // image is freed before the next one is read: what runtime/plan/tagger.h bills.
  Tensor stacked;
  int64_t filled = 0;
  std::vector<size_t> pending;
  auto flush = [&] {
    if (filled == 0) return;
    const Tensor probs = model.predict(stacked.slice(0, 0, filled), pool).contiguous();
    check(probs.dim() == 2 && probs.size(0) == filled && probs.size(1) == n_tags, "[tag] ",
          model.name(), " returned ", probs.str(), " for ", filled, " images of ", n_tags, " tags");
    for (size_t i = 0; i < pending.size(); ++i)
      on_result(pending[i], probs.data<float>() + static_cast<int64_t>(i) * n_tags);
    filled = 0;
    pending.clear();
  };
  for (size_t i = 0; i < n_inputs; ++i) {
    try {
      const Tensor px = model.preprocess(load(i)).contiguous();
      if (!stacked.defined()) {
        Dims dims{std::min<int64_t>(batch, static_cast<int64_t>(n_inputs))};
        for (const int64_t d : px.shape()) dims.push_back(d);
        stacked = Tensor::empty(dims, DType::F32);
      }
      if (!(px.shape() == stacked.select(0, 0).shape()) || px.dtype() != DType::F32)
        fail("[tag] ", model.name(), " preprocessed images to different shapes: ", px.str(),
             " and ", stacked.select(0, 0).str());
      std::memcpy(static_cast<char*>(stacked.raw()) + filled * px.nbytes(), px.raw(), px.nbytes());
      ++filled;
      pending.push_back(i);
    } catch (const Error& e) {
      on_error(i, e.what());
    }
    if (filled >= batch) flush();
  }
  flush();
}

}  // namespace eight::vision
