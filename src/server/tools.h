#pragma once
// Tool calling on /v1/chat/completions: the request's `tools` and `tool_choice` (validated, 400
// naming the field), the prompt side (tools handed to the chat template, or described in a system
// message when the template ignores them), and the output side (model text → message.tool_calls,
// whole or as streamed deltas). The output formats per model family are text/tool_calls.h.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/tool_calls.h"

namespace eight::server {

struct ToolChoice {
  enum Mode { Auto, None, Required, Named } mode = Auto;
  std::string name;  // Named
};

struct ToolRequest {
  nlohmann::json tools;  // null, or the validated array as OpenAI sends it
  ToolChoice choice;
  // Whether calls are parsed from the output (tools given and choice is not none).
  bool active() const { return !tools.is_null() && choice.mode != ToolChoice::None; }
  // Whether a grammar must force a call (required or a named function).
  bool forced() const {
    return active() && (choice.mode == ToolChoice::Required || choice.mode == ToolChoice::Named);
  }
};

// Reads `tools` and `tool_choice` from a chat request body (400 naming the field when malformed).
ToolRequest parse_tool_request(const nlohmann::json& body);

// An assistant message's tool_calls normalized for chat templates: each {"id", "type",
// "function": {"name", "arguments"}} with arguments as a JSON object when the client sent the
// JSON string OpenAI's API uses (templates apply `tojson` / `items` to them).
nlohmann::ordered_json normalize_tool_calls(const nlohmann::json& calls, const std::string& field);

// The tools the template sees for this request (null for none): the request's `tools` as the
// client wrote them (`body`, re-read to keep the key order the model was trained on), with the
// default empty `parameters` filled in. For templates that do not render tools, null, and a
// system message describing them and the Generic call format is merged into `messages`.
nlohmann::ordered_json tools_for_template(const ToolRequest& req, bool template_uses_tools,
                                          const std::string& body,
                                          nlohmann::ordered_json& messages);

// GBNF (text/grammar.h) that forces one call in the model's format to a function `req` allows
// (the named one, or any for required), its arguments valid for the function's `parameters`
// schema. Throws ApiError 400 naming tools[i].function.parameters when a schema is unsupported.
std::string forced_call_gbnf(const ToolRequest& req, ToolFormat format);

// A random call id: 9 letters and digits (Mistral's templates reject any other shape).
std::string new_call_id();

// The OpenAI message fields for parsed output: content (null when empty and there are calls) and
// tool_calls with fresh ids.
nlohmann::json tool_message(const ParsedOutput& p, std::vector<std::string>* ids);

// Turns streamed text into OpenAI chat deltas: {"content": ...} and {"tool_calls": [{"index",
// "id", "type", "function": {"name", "arguments": ""}}]} when a call's name is known, then
// {"tool_calls": [{"index", "function": {"arguments": fragment}}]} as its arguments arrive.
class ToolStream {
 public:
  explicit ToolStream(ToolFormat f) : format_(f) {}
  // Appends generated text; returns the deltas it makes certain.
  std::vector<nlohmann::json> feed(const std::string& text);
  // The output is complete: the remaining deltas.
  std::vector<nlohmann::json> finish();
  bool has_calls() const { return !sent_.calls.empty(); }

 private:
  std::vector<nlohmann::json> diff(const ParsedOutput& now);

  ToolFormat format_;
  std::string text_;
  ParsedOutput sent_;
  std::vector<std::string> ids_;
};

}  // namespace eight::server
