// Tool-call parsing on each family's literal output (text/tool_calls.h), malformed output as plain
// content, the incremental contract (every prefix's parse is extended by the next and by the final
// parse), streamed deltas reassembling into the whole result (server/tools.h), and request
// validation naming the field.
#include <gtest/gtest.h>

#include <random>

#include "server/api_error.h"
#include "server/tools.h"
#include "text/grammar.h"
#include "text/tool_calls.h"

namespace eight {
namespace {

using nlohmann::json;

ParsedOutput parse(ToolFormat f, const std::string& s) {
  return parse_tool_output(f, s, true);
}

void expect_call(const ParsedToolCall& c, const std::string& name, const json& args) {
  EXPECT_EQ(c.name, name);
  EXPECT_EQ(json::parse(c.arguments), args) << c.arguments;
}

// Every prefix parse is extended by every longer prefix and by the final parse.
void expect_incremental(ToolFormat f, const std::string& s) {
  const ParsedOutput whole = parse(f, s);
  ParsedOutput prev;
  for (size_t n = 0; n <= s.size(); ++n) {
    const ParsedOutput p = parse_tool_output(f, std::string_view(s).substr(0, n), false);
    ASSERT_TRUE(extends(prev, p)) << tool_format_name(f) << " at " << n << ": " << s;
    ASSERT_TRUE(extends(p, whole)) << tool_format_name(f) << " at " << n << ": " << s;
    prev = p;
  }
}

const std::vector<std::pair<ToolFormat, std::string>>& samples() {
  static const std::vector<std::pair<ToolFormat, std::string>> s = {
      {ToolFormat::Hermes,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
       "</tool_call>"},
      {ToolFormat::Hermes,
       "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2.5e3]}}\n"
       "</tool_call>\n<tool_call>\n{\"arguments\": {}, \"name\": \"b\"}\n</tool_call>"},
      {ToolFormat::Hermes, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}"},  // cut
      {ToolFormat::Hermes, "<tool_call>\n{\"nam\": \"a\"}\n</tool_call> plain"},
      {ToolFormat::Hermes, "text <tool_call> not json </tool_call> more"},
      {ToolFormat::Hermes, "a < b and <tool_ca"},
      {ToolFormat::Mistral, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"q\": \"x\"}}]"},
      {ToolFormat::Mistral,
       " [{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}, {\"name\": \"g\", "
       "\"arguments\": {\"n\": -1}}]"},
      {ToolFormat::Mistral, "[1, 2, 3] is a list"},
      {ToolFormat::Mistral, "Hello there"},
      {ToolFormat::Llama3, "{\"name\": \"f\", \"parameters\": {\"a\": true, \"b\": null}}"},
      {ToolFormat::Llama3,
       "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\"}"},
      {ToolFormat::Llama3, "{\"answer\": 42}"},
      {ToolFormat::Llama3, "  The answer is {\"name\": 1}"},
      {ToolFormat::Generic, "{\"name\": \"f\", \"arguments\": {\"s\": \"\\u00e9\\\"}\"}} done"},
      {ToolFormat::Generic, "{\"name\": \"f\", \"arguments\": {\"a\": 1 x}}"},
      {ToolFormat::Generic, "Just text, no call."},
  };
  return s;
}

TEST(ToolCallParse, Hermes) {
  ParsedOutput p = parse(ToolFormat::Hermes, samples()[0].second);
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 1u);
  expect_call(p.calls[0], "get_weather", {{"city", "Paris"}});

  p = parse(ToolFormat::Hermes, samples()[1].second);
  EXPECT_EQ(p.content, "Let me check.");
  ASSERT_EQ(p.calls.size(), 2u);
  expect_call(p.calls[0], "a", {{"x", {1, 2500.0}}});
  expect_call(p.calls[1], "b", json::object());
  EXPECT_EQ(p.calls[0].arguments, "{\"x\": [1, 2.5e3]}");  // the model's bytes, unchanged

  // Cut by the token limit: the call is known, its arguments are what was written.
  p = parse(ToolFormat::Hermes, samples()[2].second);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{\"x\": 1}");
}

TEST(ToolCallParse, MalformedIsContent) {
  for (size_t i : {3, 4, 5}) {
    const ParsedOutput p = parse(ToolFormat::Hermes, samples()[i].second);
    EXPECT_TRUE(p.calls.empty()) << samples()[i].second;
    EXPECT_EQ(p.content, samples()[i].second);
  }
  for (size_t i : {8, 9, 12, 13, 16}) {
    const ParsedOutput p = parse(samples()[i].first, samples()[i].second);
    EXPECT_TRUE(p.calls.empty()) << samples()[i].second;
    EXPECT_EQ(p.content, samples()[i].second);
  }
}

TEST(ToolCallParse, MistralLlamaGeneric) {
  ParsedOutput p = parse(ToolFormat::Mistral, samples()[6].second);
  ASSERT_EQ(p.calls.size(), 1u);
  expect_call(p.calls[0], "f", {{"q", "x"}});
  EXPECT_EQ(p.content, "");
  p = parse(ToolFormat::Mistral, samples()[7].second);
  ASSERT_EQ(p.calls.size(), 2u);
  expect_call(p.calls[1], "g", {{"n", -1}});

  p = parse(ToolFormat::Llama3, samples()[10].second);
  ASSERT_EQ(p.calls.size(), 1u);
  expect_call(p.calls[0], "f", {{"a", true}, {"b", nullptr}});
  p = parse(ToolFormat::Llama3, samples()[11].second);
  ASSERT_EQ(p.calls.size(), 2u);
  expect_call(p.calls[1], "g", json::object());  // no arguments written: {}

  p = parse(ToolFormat::Generic, samples()[14].second);
  ASSERT_EQ(p.calls.size(), 1u);
  expect_call(p.calls[0], "f", {{"s", "é\"}"}});
  EXPECT_EQ(p.content, " done");

  // Broken after the name: the call stands with the arguments up to the error, the rest is text.
  p = parse(ToolFormat::Generic, samples()[15].second);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{\"a\": 1 ");
  EXPECT_EQ(p.content, "x}}");
}

TEST(ToolCallParse, EveryPrefixIsExtended) {
  for (const auto& [f, s] : samples()) expect_incremental(f, s);
}

TEST(ToolCallParse, RandomBytesNeverThrowAndStayIncremental) {
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,ab \\u0n<tool_call>/TOOL_CALLS|python_tag1e-.";
  for (int iter = 0; iter < 300; ++iter) {
    std::string s;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    for (ToolFormat f :
         {ToolFormat::Generic, ToolFormat::Llama3, ToolFormat::Mistral, ToolFormat::Hermes})
      expect_incremental(f, s);
  }
  // Deep nesting is refused, not recursed into without bound.
  const std::string deep = "{\"name\": \"f\", \"arguments\": " + std::string(100000, '[');
  EXPECT_EQ(parse(ToolFormat::Generic, deep).calls.size(), 1u);
}

TEST(ToolCallFormat, FromTemplateAndVocab) {
  auto none = [](std::string_view) { return false; };
  EXPECT_EQ(detect_tool_format("{{ '<tool_call>' }}{{ tools }}", none), ToolFormat::Hermes);
  EXPECT_EQ(detect_tool_format("{{ '[TOOL_CALLS][' }}", none), ToolFormat::Mistral);
  EXPECT_EQ(detect_tool_format("{{ '<|python_tag|>' }}", none), ToolFormat::Llama3);
  EXPECT_EQ(detect_tool_format("{% for t in tools %}{% endfor %}", none), ToolFormat::Generic);
  EXPECT_EQ(
      detect_tool_format("{{ messages }}", [](std::string_view t) { return t == "[TOOL_CALLS]"; }),
      ToolFormat::Mistral);
  EXPECT_FALSE(template_uses_tools("{{ messages }}"));
}

// Streams each sample token by token (random cuts) and rebuilds the OpenAI message from the
// deltas the way a client does; it must equal the non-streamed message (ids aside).
TEST(ToolCallStream, DeltasReassemble) {
  std::mt19937 rng(3);
  for (const auto& [f, s] : samples()) {
    server::ToolStream stream(f);
    std::vector<json> deltas;
    for (size_t i = 0; i < s.size();) {
      const size_t n = 1 + rng() % 4;
      for (json& d : stream.feed(s.substr(i, n))) deltas.push_back(std::move(d));
      i += n;
    }
    for (json& d : stream.finish()) deltas.push_back(std::move(d));
    std::string content;
    json calls = json::array();
    for (const json& d : deltas) {
      if (d.contains("content")) content += d["content"].get<std::string>();
      for (const json& tc : d.value("tool_calls", json::array())) {
        const size_t i = tc["index"];
        if (i == calls.size()) {
          ASSERT_TRUE(tc.contains("id"));
          calls.push_back({{"name", tc["function"]["name"]}, {"arguments", ""}});
        }
        calls[i]["arguments"] = calls[i]["arguments"].get<std::string>() +
                                tc["function"]["arguments"].get<std::string>();
      }
    }
    const ParsedOutput whole = parse(f, s);
    EXPECT_EQ(content, whole.content) << s;
    ASSERT_EQ(calls.size(), whole.calls.size()) << s;
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i]["name"], whole.calls[i].name);
      EXPECT_EQ(calls[i]["arguments"], whole.calls[i].arguments);
    }
    EXPECT_EQ(stream.has_calls(), !whole.calls.empty());
  }
}

std::string param_of(const json& body) {
  try {
    server::parse_tool_request(body);
  } catch (const server::ApiError& e) {
    EXPECT_EQ(e.status, 400);
    return e.param;
  }
  return "(accepted)";
}

TEST(ToolRequest, ValidationNamesTheField) {
  const json ok = {{"type", "function"},
                   {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}};
  EXPECT_EQ(param_of({{"tools", {ok}}}), "(accepted)");
  EXPECT_EQ(param_of({{"tools", "f"}}), "tools");
  EXPECT_EQ(param_of({{"tools", {ok, 3}}}), "tools[1]");
  EXPECT_EQ(param_of({{"tools", {{{"type", "retrieval"}}}}}), "tools[0].type");
  EXPECT_EQ(param_of({{"tools", {{{"type", "function"}}}}}), "tools[0].function");
  EXPECT_EQ(param_of({{"tools", {{{"type", "function"}, {"function", {{"name", "a b"}}}}}}}),
            "tools[0].function.name");
  EXPECT_EQ(
      param_of({{"tools",
                 {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", "x"}}}}}}}),
      "tools[0].function.parameters");
  EXPECT_EQ(param_of({{"tools", {ok, ok}}}), "tools[1].function.name");
  EXPECT_EQ(param_of({{"tools", {ok}}, {"tool_choice", "sometimes"}}), "tool_choice");
  EXPECT_EQ(param_of({{"tool_choice", "required"}}), "tool_choice");
  EXPECT_EQ(param_of({{"tools", {ok}},
                      {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}),
            "tool_choice.function.name");
  const server::ToolRequest r = server::parse_tool_request(
      {{"tools", {ok}}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}});
  EXPECT_TRUE(r.forced());
  EXPECT_EQ(r.choice.name, "f");
  EXPECT_FALSE(server::parse_tool_request({{"tools", {ok}}, {"tool_choice", "none"}}).active());
}

TEST(ToolRequest, ArgumentStringsBecomeObjectsForTemplates) {
  const json calls =
      server::normalize_tool_calls(json::parse(R"([{"id": "abcdefghi", "type": "function",
                       "function": {"name": "f", "arguments": "{\"a\": 1}"}}])"),
                                   "messages[1].tool_calls");
  EXPECT_EQ(calls[0]["function"]["arguments"], json({{"a", 1}}));
  EXPECT_EQ(calls[0]["id"], "abcdefghi");
  EXPECT_EQ(server::new_call_id().size(), 9u);
}

// The forced-call grammar accepts exactly calls in the family's format whose arguments fit the
// schema, and its sentences parse back into that call.
TEST(ToolGrammar, ForcesAValidCallPerFormat) {
  const json weather = {{"type", "function"},
                        {"function",
                         {{"name", "get_weather"},
                          {"parameters",
                           {{"type", "object"},
                            {"properties",
                             {{"city", {{"type", "string"}, {"maxLength", 8}}},
                              {"unit", {{"enum", {"celsius", "fahrenheit"}}}}}},
                            {"required", {"city", "unit"}},
                            {"additionalProperties", false}}}}}};
  const json other = {{"type", "function"}, {"function", {{"name", "noop"}}}};
  server::ToolRequest req = server::parse_tool_request(
      {{"tools", {weather, other}},
       {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}});
  const std::string args = R"({"city": "Paris", "unit": "celsius"})";
  const std::vector<std::pair<ToolFormat, std::string>> cases = {
      {ToolFormat::Hermes,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " + args + "}\n</tool_call>"},
      {ToolFormat::Mistral, "[{\"name\": \"get_weather\", \"arguments\": " + args + "}]"},
      {ToolFormat::Llama3, "{\"name\": \"get_weather\", \"parameters\": " + args + "}"},
      {ToolFormat::Generic, "{\"name\": \"get_weather\", \"arguments\": " + args + "}"}};
  for (const auto& [f, text] : cases) {
    const auto g = text::Grammar::parse(server::forced_call_gbnf(req, f));
    EXPECT_TRUE(g->matches(text)) << tool_format_name(f);
    const ParsedOutput p = parse(f, text);
    ASSERT_EQ(p.calls.size(), 1u);
    expect_call(p.calls[0], "get_weather", json::parse(args));
    std::string wrong = text;
    wrong.replace(wrong.find("Paris"), 5, "Parisienne");  // longer than maxLength
    EXPECT_FALSE(g->matches(wrong));
    EXPECT_FALSE(g->matches(std::string(text).replace(text.find("get_"), 4, "put_")));
  }
  // required: any of the tools; noop's parameters default to an empty object.
  req.choice = {server::ToolChoice::Required, ""};
  const auto g = text::Grammar::parse(server::forced_call_gbnf(req, ToolFormat::Generic));
  EXPECT_TRUE(g->matches(R"({"name": "noop", "arguments": {}})"));
  EXPECT_TRUE(g->matches(R"({"name": "get_weather", "arguments": )" + args + "}"));
  // A schema the compiler refuses is a 400 naming the tool's parameters.
  const json bad = {
      {"type", "function"},
      {"function",
       {{"name", "f"}, {"parameters", {{"type", "object"}, {"not", {{"type", "null"}}}}}}}};
  req = server::parse_tool_request({{"tools", {bad}}, {"tool_choice", "required"}});
  try {
    server::forced_call_gbnf(req, ToolFormat::Generic);
    ADD_FAILURE() << "accepted";
  } catch (const server::ApiError& e) {
    EXPECT_EQ(e.param, "tools[0].function.parameters");
  }
}

}  // namespace
}  // namespace eight
