// The YAML subset reader on what PyYAML / OmegaConf.to_yaml write, and on bad input.
#include "formats/yaml.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace eight::yaml {
namespace {

TEST(Yaml, OmegaConfBlockStyle) {
  // Written by OmegaConf.to_yaml (PyYAML) for
  // {'a': {'b': [20, 10], 'c': None, 'd': 't5-base', 'e': 1e-5, 'f': True, 'g': [], 'h': {},
  //        's': 'yes', 'n': 'null'}}, plus nesting and wrapped strings.
  const auto j = parse(R"(# comment
a:
  b:
  - 20
  - 10
  c: null
  d: t5-base
  e: 1.0e-05
  f: true
  g: []
  h: {}
  s: 'yes'
  'n': 'null'
  url: //pretrained/facebook/encodec_32khz  # trailing comment
list_of_maps:
- name: x
  size: 3
- - 1
  - 2.5
flow: [1, 'two', {k: v}, -3]
wrapped: this is a long plain string that PyYAML
  folded onto a second line
quoted: "tab\tand \"quote\""
neg: -7
big: 12345678901234567890
word: 1e5
inf: -.inf
empty:
last: ~
)");
  EXPECT_EQ(j["a"]["b"], nlohmann::json::parse("[20, 10]"));
  EXPECT_TRUE(j["a"]["c"].is_null());
  EXPECT_EQ(j["a"]["d"], "t5-base");
  EXPECT_DOUBLE_EQ(j["a"]["e"].get<double>(), 1e-5);
  EXPECT_EQ(j["a"]["f"], true);
  EXPECT_TRUE(j["a"]["g"].is_array() && j["a"]["g"].empty());
  EXPECT_TRUE(j["a"]["h"].is_object() && j["a"]["h"].empty());
  EXPECT_EQ(j["a"]["s"], "yes");
  EXPECT_EQ(j["a"]["n"], "null");
  EXPECT_EQ(j["a"]["url"], "//pretrained/facebook/encodec_32khz");
  EXPECT_EQ(j["list_of_maps"][0]["name"], "x");
  EXPECT_EQ(j["list_of_maps"][0]["size"], 3);
  EXPECT_EQ(j["list_of_maps"][1], nlohmann::json::parse("[1, 2.5]"));
  EXPECT_EQ(j["flow"], nlohmann::json::parse(R"([1, "two", {"k": "v"}, -3])"));
  EXPECT_EQ(j["wrapped"], "this is a long plain string that PyYAML folded onto a second line");
  EXPECT_EQ(j["quoted"], "tab\tand \"quote\"");
  EXPECT_EQ(j["neg"], -7);
  EXPECT_TRUE(j["big"].is_number_float());
  EXPECT_EQ(j["word"], "1e5");  // YAML 1.1 floats need a dot
  EXPECT_TRUE(std::isinf(j["inf"].get<double>()));
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_TRUE(j["last"].is_null());
}

TEST(Yaml, BadInputIsAnErrorNamingTheLine) {
  for (const char* bad : {"a: 1\n  b: 2\n", "a: &x 1\n", "a: *x\n", "a: !!python/object x\n",
                          "a: |\n  text\n", "a: [1, 2\n", "a: 'open\n", "\ta: 1\n",
                          "a: 1\n---\nb: 2\n", "just a line\n", "a: {k v}\n", "- a\nb: c\n"}) {
    try {
      parse(bad, "cfg");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("[yaml] cfg:"), std::string::npos) << e.what();
    }
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  EXPECT_THROW(parse(deep), Error);
  EXPECT_THROW(parse(std::string(200, '[')), Error);
  Limits small;
  small.max_bytes = 8;
  EXPECT_THROW(parse("a: 123456789\n", "x", small), Error);
}

}  // namespace
}  // namespace eight::yaml
