// libFuzzer target for what a BLIP directory holds besides its weights: config.json,
// tokenizer.json, vocab.txt and tokenizer_config.json (models/blip), and the WordPiece
// tokenizer built from them. The input is split at NUL bytes into those four files and a text;
// every input must parse or throw eight::Error, and a vocabulary that parses must encode the text
// and decode the ids (with out-of-range ones mixed in) without a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/blip/blip_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(5);
  size_t k = 0;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && k + 1 < parts.size()) {
      ++k;
      continue;
    }
    parts[k] += static_cast<char>(data[i]);
  }
  try {
    (void)eight::blip::parse_config_json(parts[0]);
  } catch (const eight::Error&) {
  }
  try {
    const auto v = eight::blip::parse_vocab(parts[1], parts[2], parts[3]);
    std::vector<int32_t> ids = eight::blip::encode(v, parts[4].substr(0, 1024));
    ids.push_back(-1);
    ids.push_back(1 << 30);
    (void)eight::blip::decode(v, ids);
  } catch (const eight::Error&) {
  }
  return 0;
}
