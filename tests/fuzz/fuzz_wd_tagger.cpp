// libFuzzer target for what a WD tagger folder's text files go through: the input is
// selected_tags.csv, a NUL byte, then config.json. Any input must parse or throw eight::Error —
// no crash, hang or sanitizer report. Parsed tags then go through the tag selection and the
// prompt-line escaping with made-up probabilities.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/tagger/tagger.h"
#include "models/tagger/wd_internal.h"
#include "runtime/vision/tags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nul = text.find('\0');
  const std::string csv = text.substr(0, nul);
  const std::string config = nul == std::string::npos ? std::string() : text.substr(nul + 1);
  try {
    const auto tags = eight::tagger::parse_selected_tags(csv, "fuzz.csv");
    std::vector<float> probs(tags.size());
    for (size_t i = 0; i < probs.size(); ++i) probs[i] = static_cast<float>(i % 7) / 6.0f;
    const auto r =
        eight::vision::select_tags(tags, probs.data(), {.general = 0.3, .character = 0.6});
    volatile size_t sink = r.text.size() + eight::vision::tag_result_json("x", r).size();
    (void)sink;
  } catch (const eight::Error&) {
  }
  try {
    const auto c = eight::tagger::wd::parse_config(config, "fuzz.json");
    volatile int64_t sink = c.input_size + static_cast<int64_t>(c.architecture.size());
    (void)sink;
    (void)eight::tagger::wd::activation_of(c.model_args, "fuzz.json");
  } catch (const eight::Error&) {
  }
  return 0;
}
