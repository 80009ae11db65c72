// The grammar engine: GBNF parsing (and its errors), matching, the JSON-schema compiler, and the
// vocabulary mask against a brute-force twin that re-matches every token's text from scratch.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/grammar.h"
#include "text/json_schema.h"

using namespace eight;
using namespace eight::text;
using nlohmann::json;

namespace {

bool matches(const std::string& gbnf, const std::string& text) {
  return Grammar::parse(gbnf)->matches(text);
}

std::string error_of(const std::string& gbnf) {
  try {
    Grammar::parse(gbnf);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool schema_matches(const json& schema, const std::string& text) {
  return Grammar::from_json_schema(schema)->matches(text);
}

}  // namespace

TEST(Gbnf, LiteralsClassesAndRepetition) {
  const std::string g = R"(
# a comment
root ::= "ab" [0-9]+ x? ( "," [a-c]{2,3} )* tail
x ::= "\x41" | "\u00e9"   # A or é
tail ::= [!]{0,2} "."
)";
  EXPECT_TRUE(matches(g, "ab1."));
  EXPECT_TRUE(matches(g, "ab12A,ab,abc!!."));
  EXPECT_TRUE(matches(g, "ab7\xC3\xA9."));
  EXPECT_FALSE(matches(g, "ab."));     // + needs one digit
  EXPECT_FALSE(matches(g, "ab1,a."));  // {2,3}
  EXPECT_FALSE(matches(g, "ab1,abcc."));
  EXPECT_FALSE(matches(g, "ab1!!!."));  // {0,2}
  EXPECT_FALSE(matches(g, "ab1"));      // incomplete
  EXPECT_TRUE(matches("root ::= [^a-z] . \"\\\"\"", "Z\xE2\x82\xAC\""));
  EXPECT_TRUE(matches("root ::= (\n  \"a\"\n  | \"b\"\n)", "b"));
  EXPECT_TRUE(matches("root ::= \"a\"\n  | \"b\"", "b"));
  // A body that starts on the next line, with comments inside a group (as json.gbnf is written).
  EXPECT_TRUE(matches("root ::=\n  \"{\" (\n  \"a\" | # one\n  \"b\" # two\n  )? \"}\"", "{b}"));
  EXPECT_TRUE(matches("root ::= x{3}\nx ::= \"ab\"", "ababab"));
  EXPECT_TRUE(matches("root ::= \"a\"{,2} \"b\"", "aab"));
  EXPECT_FALSE(matches("root ::= \"a\"{,2} \"b\"", "aaab"));
  // Nullable repetition (ε-loops) terminates.
  EXPECT_TRUE(matches("root ::= (\"a\"?)* \"b\"", "aab"));
  // Right recursion, nested deeply.
  const std::string parens = "root ::= \"(\" root \")\" | \"x\"";
  EXPECT_TRUE(matches(parens, std::string(300, '(') + "x" + std::string(300, ')')));
  EXPECT_FALSE(matches(parens, std::string(3, '(') + "x" + std::string(2, ')')));
}

TEST(Gbnf, ErrorsNameLineAndColumn) {
  EXPECT_NE(error_of("root ::= \"a\"\nfoo ::= bar").find("line 2, column 9: rule 'bar' is used"),
            std::string::npos)
      << error_of("root ::= \"a\"\nfoo ::= bar");
  EXPECT_NE(error_of("root ::= \"abc").find("line 1, column"), std::string::npos);
  EXPECT_NE(error_of("root ::= [a-").find("unterminated character class"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"\\q\"").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of("other ::= \"a\"").find("no rule named 'root'"), std::string::npos);
  EXPECT_NE(error_of("root ::= root \"a\" | \"b\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= x\nx ::= x").find("never finish"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{5,2}").find("max below min"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{99999}").find("repetition count"), std::string::npos);
  EXPECT_NE(error_of("root ::= *").find("follows nothing"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"").find("defined twice"), std::string::npos);
  EXPECT_NE(error_of("").find("no rules"), std::string::npos);
  EXPECT_NE(error_of("root ::= " + std::string(100000, '(')).find("nested deeper"),
            std::string::npos);
}

TEST(JsonSchema, ObjectsArraysAndEnums) {
  const json s = json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 5},
      "age": {"type": "integer", "minimum": 0, "maximum": 120},
      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2},
      "kind": {"const": "x"}
    },
    "required": ["name", "age"],
    "additionalProperties": false
  })");
  EXPECT_TRUE(schema_matches(s, R"({"age": 30, "name": "bob"})"));
  EXPECT_TRUE(schema_matches(s, R"({"age":120,"kind":"x","name":"","tags":["a","b"]})"));
  EXPECT_TRUE(schema_matches(s, "{\n  \"age\": 0,\n  \"name\": \"abcde\"\n}"));
  EXPECT_FALSE(schema_matches(s, R"({"age": 121, "name": "bob"})"));
  EXPECT_FALSE(schema_matches(s, R"({"age": 01, "name": "bob"})"));
  EXPECT_FALSE(schema_matches(s, R"({"age": 3, "name": "abcdef"})"));
  EXPECT_FALSE(schema_matches(s, R"({"name": "bob"})"));                      // required
  EXPECT_FALSE(schema_matches(s, R"({"age": 3, "name": "b", "zzz": 1})"));    // closed
  EXPECT_FALSE(schema_matches(s, R"({"age": 3, "name": "b", "tags": []})"));  // minItems
  EXPECT_FALSE(schema_matches(s, R"({"age": 3, "name": "b", "tags": ["a","a","a"]})"));
  EXPECT_FALSE(schema_matches(s, "{\"age\":  3, \"name\": \"b\"}"));  // two spaces: bounded ws
  // Open objects take extra members after the declared ones.
  const json open = {{"type", "object"}, {"properties", {{"a", {{"type", "boolean"}}}}}};
  EXPECT_TRUE(schema_matches(open, R"({"a": true, "b": [1, {"c": null}]})"));
  EXPECT_TRUE(schema_matches(open, R"({})"));
}

TEST(JsonSchema, RefsAnyOfFormatsPatternsAndNumbers) {
  const json s = json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
              "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
              "required": ["v", "next"], "additionalProperties": false}},
    "$ref": "#/$defs/node"})");
  EXPECT_TRUE(schema_matches(s, R"({"next": {"next": null, "v": -4}, "v": 1})"));
  EXPECT_FALSE(schema_matches(s, R"({"next": {"v": -4}, "v": 1})"));
  const json defs = json::parse(
      R"({"definitions": {"n": {"type": "integer", "exclusiveMinimum": 5}}, "type": "array",
          "items": {"$ref": "#/definitions/n"}, "minItems": 2})");
  EXPECT_TRUE(schema_matches(defs, "[6, 700]"));
  EXPECT_FALSE(schema_matches(defs, "[5, 7]"));
  EXPECT_FALSE(schema_matches(defs, "[6]"));
  EXPECT_TRUE(schema_matches(json{{"type", "string"}, {"format", "date"}}, "\"2024-02-28\""));
  EXPECT_FALSE(schema_matches(json{{"type", "string"}, {"format", "date"}}, "\"2024-02-30\""));
  EXPECT_TRUE(schema_matches(json{{"type", "string"}, {"format", "date-time"}},
                             "\"2024-12-07T17:05:15.25Z\""));
  EXPECT_TRUE(schema_matches(json{{"type", "string"}, {"format", "uuid"}},
                             "\"123e4567-e89b-12d3-a456-426614174000\""));
  const json pat = {{"type", "string"}, {"pattern", "^[A-Z]{2}-\\d{3}(x|yz)?$"}};
  EXPECT_TRUE(schema_matches(pat, "\"AB-123yz\""));
  EXPECT_FALSE(schema_matches(pat, "\"AB-12\""));
  EXPECT_TRUE(schema_matches(json{{"type", "string"}, {"pattern", "^a\"b$"}}, R"("a\"b")"));
  const json range = {{"type", "integer"}, {"minimum", -15}, {"exclusiveMaximum", 1234}};
  for (int v = -30; v < 1300; ++v)
    EXPECT_EQ(schema_matches(range, std::to_string(v)), v >= -15 && v < 1234) << v;
  const json num = {{"type", "number"}, {"minimum", 1.5}, {"maximum", 3}};
  EXPECT_TRUE(schema_matches(num, "2.75"));
  EXPECT_TRUE(schema_matches(num, "3"));
  EXPECT_FALSE(schema_matches(num, "3.5"));
  EXPECT_FALSE(schema_matches(num, "1"));
  EXPECT_TRUE(schema_matches(json::parse(R"({"type": ["string", "null"]})"), "null"));
  EXPECT_TRUE(Grammar::json_object()->matches(R"({"a": [1, 2.5e3, "x"]})"));
  EXPECT_FALSE(Grammar::json_object()->matches(R"([1])"));
}

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  auto err = [](const json& s) {
    try {
      json_schema_to_gbnf(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(json{{"type", "array"}, {"uniqueItems", true}}).find("'uniqueItems'"),
            std::string::npos);
  EXPECT_NE(err(json{{"type", "string"}, {"format", "email"}}).find("'format' 'email'"),
            std::string::npos);
  EXPECT_NE(
      err(json{{"type", "object"}, {"properties", {{"a", {{"not", {}}}}}}}).find("#/properties/a"),
      std::string::npos);
  EXPECT_NE(err(json{{"$ref", "#/$defs/missing"}}).find("points nowhere"), std::string::npos);
  EXPECT_NE(err(json{{"type", "string"}, {"pattern", "(?=a)"}}).find("lookaround"),
            std::string::npos);
  EXPECT_NE(err(json{{"type", "wat"}}).find("unknown type"), std::string::npos);
  EXPECT_NE(err(json{{"type", "string"}, {"pattern", std::string(100000, '(')}}).find("deeper"),
            std::string::npos);
}

namespace {

// A small vocabulary: every printable ASCII byte, some multi-byte pieces, a split UTF-8
// character, specials and an end-of-generation token.
GrammarVocab small_vocab(std::vector<std::string>& pieces, std::vector<bool>& text) {
  for (int c = 32; c < 127; ++c) pieces.push_back(std::string(1, static_cast<char>(c)));
  for (const char* p : {"{\"", "\":", "\", \"", "ab", "abc", "true", "null", "12", "\n  ", "  ",
                        "\xC3", "\xA9", "\xC3\xA9", "}\n", "\"}", ", "})
    pieces.push_back(p);
  text.assign(pieces.size(), true);
  pieces.push_back("<eos>");
  text.push_back(false);
  pieces.push_back("<ctl>");
  text.push_back(false);
  return GrammarVocab(pieces, text, {static_cast<int32_t>(pieces.size() - 2)});
}

}  // namespace

TEST(GrammarMatcher, MaskEqualsBruteForceAlongRandomPaths) {
  std::vector<std::string> pieces;
  std::vector<bool> text;
  auto vocab = std::make_shared<const GrammarVocab>(small_vocab(pieces, text));
  const int32_t n = vocab->size(), eos = n - 2;
  const json schema = json::parse(R"({"type": "object", "properties": {
      "ab": {"type": "string", "maxLength": 4}, "n": {"type": "integer", "maximum": 500},
      "e": {"enum": ["é", true, null]}}, "required": ["ab"]})");
  auto grammar = Grammar::from_json_schema(schema);
  std::mt19937 rng(7);
  std::vector<uint32_t> mask(GrammarMatcher::mask_words(n));
  for (int trial = 0; trial < 20; ++trial) {
    GrammarMatcher m(grammar, vocab);
    std::string so_far;
    for (int step = 0; step < 60; ++step) {
      const int64_t budget = 12 + trial;  // tight near the end: must still close in time
      m.fill_mask(mask, budget - step);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < n; ++t) {
        // The twin: a fresh matcher fed the whole text so far plus this token.
        GrammarMatcher twin(grammar, nullptr);
        bool ok = twin.accept_text(so_far);
        if (t == eos) {
          ok = ok && twin.is_complete();
        } else {
          ok = ok && text[static_cast<size_t>(t)] &&
               twin.accept_text(pieces[static_cast<size_t>(t)]);
          ok = ok && twin.min_bytes_to_complete() <= budget - step - 1;
        }
        const bool bit = (mask[static_cast<size_t>(t) / 32] >> (t % 32)) & 1;
        ASSERT_EQ(bit, ok) << "token '" << pieces[static_cast<size_t>(t)] << "' after '" << so_far
                           << "'";
        if (ok) allowed.push_back(t);
      }
      ASSERT_FALSE(allowed.empty()) << so_far;
      const int32_t pick = allowed[rng() % allowed.size()];
      if (pick == eos) break;
      ASSERT_TRUE(m.accept(pick));
      so_far += pieces[static_cast<size_t>(pick)];
    }
    EXPECT_TRUE(m.is_complete()) << so_far;
    EXPECT_TRUE(grammar->matches(so_far)) << so_far;
    const json parsed = json::parse(so_far);  // throws if not JSON
    EXPECT_TRUE(parsed.contains("ab"));
  }
}

TEST(GrammarMatcher, RejectsWithoutChangingState) {
  auto g = Grammar::parse("root ::= \"ab\" \"c\"*");
  GrammarMatcher m(g, nullptr);
  EXPECT_FALSE(m.accept_text("b"));
  EXPECT_TRUE(m.accept_text("a"));
  EXPECT_FALSE(m.is_complete());
  EXPECT_FALSE(m.accept_text("bx"));
  EXPECT_TRUE(m.accept_text("b"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_TRUE(m.can_continue());
  m.reset();
  EXPECT_FALSE(m.is_complete());
}

TEST(GrammarMatcher, ByteVocabularyNeverDeadEnds) {
  // Every byte a token (as SentencePiece byte fallback gives): random walks through strings with
  // arbitrary UTF-8 must never reach a state with no allowed token (partial characters included),
  // and must end as valid JSON within the budget.
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  pieces.push_back("</s>");
  std::vector<bool> text(pieces.size(), true);
  text.back() = false;
  auto vocab = std::make_shared<const GrammarVocab>(pieces, text, std::vector<int32_t>{256});
  auto grammar = Grammar::from_json_schema(json::parse(
      R"({"type": "object", "properties": {"s": {"type": "string"}, "t": {"type": "array",
          "items": {"type": "string", "pattern": "^[^a-z]{1,3}$"}}}, "required": ["s", "t"]})"));
  std::mt19937 rng(11);
  std::vector<uint32_t> mask(GrammarMatcher::mask_words(vocab->size()));
  for (int trial = 0; trial < 40; ++trial) {
    GrammarMatcher m(grammar, vocab);
    std::string out;
    const int64_t budget = 40 + trial * 3;
    for (int64_t step = 0; step < budget; ++step) {
      m.fill_mask(mask, budget - step);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < vocab->size(); ++t)
        if ((mask[static_cast<size_t>(t) / 32] >> (t % 32)) & 1) allowed.push_back(t);
      ASSERT_FALSE(allowed.empty()) << "dead end after '" << out << "'";
      const int32_t pick = allowed[rng() % allowed.size()];
      if (pick == 256) break;
      ASSERT_TRUE(m.accept(pick));
      out += pieces[static_cast<size_t>(pick)];
    }
    ASSERT_TRUE(m.is_complete()) << out;
    const json v = json::parse(out);
    EXPECT_TRUE(v["s"].is_string() && v["t"].is_array()) << out;
  }
}
