#pragma once
// Parsing and validation of OpenAI-style request bodies into typed requests. Every problem is an
// ApiError 400 naming the field ("messages[2].role"), so a client learns exactly what to fix.
// Unknown fields are ignored (clients send many: user, metadata, ...).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/llm/sampler.h"
#include "server/tools.h"
#include "text/grammar.h"

namespace eight::server {

// Where an image_url part was in a message's content: U+10FFFE (a noncharacter, which no text
// means) and control bytes no template writes. Carrying a mark of its own instead of the text
// "<image>" keeps a user's literal "<image>" from taking an image's place (llava-hf vocabularies
// even hold "<image>" as a special token). A client that sends these very code points asks for an
// image place and gets one, or a 400 when the images do not match them in number.
inline constexpr std::string_view kImagePart = "\xf4\x8f\xbf\xbe\x02image\x02";

struct GenerationParams {
  SamplerParams sampler;
  int64_t max_tokens = -1;        // -1: until the context is full
  std::vector<std::string> stop;  // up to 4 stop strings
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int top_logprobs = -1;       // -1: no logprobs; 0..20: logprobs with that many alternatives
  bool echo = false;           // completions: return the prompt too
  // Chat image_url parts (data: URLs, decoded), in order; each one's place in its message's
  // content is kImagePart (a client's own "<image>" text stays text).
  std::vector<std::string> images = {};
  // response_format json_object / json_schema, compiled (null: free text).
  std::shared_ptr<const text::Grammar> grammar;
};

struct ChatRequest {
  std::string model;
  // Normalized for the template: [{"role", "content": string, ...}], keys in the client's order.
  nlohmann::ordered_json messages;
  GenerationParams gen;
  ToolRequest tools;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;
  GenerationParams gen;
};

// Parses a request body as JSON (400 on malformed JSON or invalid UTF-8).
nlohmann::ordered_json parse_body(const std::string& body);
ChatRequest parse_chat_request(const nlohmann::ordered_json& body);
CompletionRequest parse_completion_request(const nlohmann::ordered_json& body);

}  // namespace eight::server
