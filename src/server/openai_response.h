#pragma once
// Response bodies and server-sent-event chunks in the exact shapes OpenAI's API returns, so the
// official clients parse them unchanged.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/backend.h"
#include "text/tool_calls.h"

namespace eight::server {

struct ResponseShape {
  bool chat = true;  // chat.completion(.chunk) or text_completion
  std::string id, model;
  int64_t created = 0;
  std::string echo_prompt;  // completions with echo: text to put before the completion
  int top_logprobs = -1;    // -1: no logprobs in the output
  bool include_usage = false;
  bool tools = false;  // chat with tools: the output is parsed for calls in tool_format
  ToolFormat tool_format = ToolFormat::Generic;
};

nlohmann::json full_response(const ResponseShape& s, const GenerationResult& r);
nlohmann::json first_chunk(const ResponseShape& s);
nlohmann::json token_chunk(const ResponseShape& s, const TokenEvent& t);
// A chat chunk carrying one delta ({"content": ...} or {"tool_calls": [...]}).
nlohmann::json delta_chunk(const ResponseShape& s, const nlohmann::json& delta);
// `tool_calls`: the streamed output held calls (finish_reason "tool_calls" unless cut by length).
nlohmann::json final_chunk(const ResponseShape& s, const GenerationResult& r,
                           bool tool_calls = false);
nlohmann::json usage_chunk(const ResponseShape& s, const GenerationResult& r);
nlohmann::json models_response(const std::string& model_id, int64_t context_length);
// "data: {json}\n\n"
std::string sse(const nlohmann::json& chunk);

}  // namespace eight::server
