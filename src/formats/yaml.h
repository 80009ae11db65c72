#pragma once
// The block-style YAML subset that PyYAML's dump writes for configs (OmegaConf.to_yaml: the
// `xp.cfg` string inside audiocraft's exported checkpoints), read into JSON values:
//   key: scalar            nested mappings by indentation     - item   (sequences, also at the
//   'quoted key': "str"    key: [1, 2] / key: {}  (flow)       same indent as their key)
// Scalars as YAML 1.1 core: null / ~, true / false, integers, floats (1.0e-05, .inf, .nan),
// '...' and "..." strings, anything else a plain string; a plain or quoted scalar may continue
// on more-indented lines (PyYAML wraps long ones), folded with spaces.
// Anchors, aliases, tags, block scalars (| >) and multi-document streams are refused with an
// Error naming the line: configs do not use them and silently misreading one would be worse.
//
// The text is untrusted: size, nesting and item counts are bounded; every failure is an Error
// "[yaml] NAME:LINE: ...".
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace eight::yaml {

struct Limits {
  size_t max_bytes = 16u << 20;
  int max_depth = 64;
  size_t max_nodes = 1'000'000;
};

nlohmann::json parse(std::string_view text, const std::string& name = "<yaml>",
                     const Limits& limits = {});

}  // namespace eight::yaml
