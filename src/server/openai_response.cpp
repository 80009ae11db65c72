#include "server/openai_response.h"

#include <ctime>

#include "server/tools.h"

namespace eight::server {

using nlohmann::json;

namespace {

const char* finish_name(FinishReason f, bool tool_calls = false) {
  if (f == FinishReason::Length) return "length";
  return tool_calls ? "tool_calls" : "stop";
}

json usage(const GenerationResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_prompt_tokens}}}};
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Chat logprobs for one token: {"token", "logprob", "bytes", "top_logprobs": [...]}.
json chat_logprob(const TokenEvent& t) {
  json top = json::array();
  for (const auto& [text, lp] : t.top)
    top.push_back({{"token", text}, {"logprob", lp}, {"bytes", bytes_of(text)}});
  return {{"token", t.text},
          {"logprob", t.logprob},
          {"bytes", bytes_of(t.text)},
          {"top_logprobs", top}};
}

// Legacy completions logprobs: parallel arrays.
json completion_logprobs(const std::vector<TokenEvent>& tokens, size_t text_start) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  size_t offset = text_start;
  for (const auto& t : tokens) {
    toks.push_back(t.text);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [text, lp] : t.top) top[text] = lp;
    tops.push_back(top);
    offs.push_back(offset);
    offset += t.text.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json base(const ResponseShape& s, const char* object) {
  return {{"id", s.id},
          {"object", object},
          {"created", s.created},
          {"model", s.model},
          {"system_fingerprint", "eight"}};
}

json chunk_base(const ResponseShape& s) {
  json j = base(s, s.chat ? "chat.completion.chunk" : "text_completion");
  if (s.include_usage) j["usage"] = nullptr;
  return j;
}

}  // namespace

json full_response(const ResponseShape& s, const GenerationResult& r) {
  json j = base(s, s.chat ? "chat.completion" : "text_completion");
  json choice = {{"index", 0}, {"finish_reason", finish_name(r.finish)}, {"logprobs", nullptr}};
  if (s.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", r.text}, {"refusal", nullptr}};
    if (s.tools) {
      const ParsedOutput p = parse_tool_output(s.tool_format, r.text, true);
      std::vector<std::string> ids;
      choice["message"].update(tool_message(p, &ids));
      choice["finish_reason"] = finish_name(r.finish, !p.calls.empty());
    }
    if (s.top_logprobs >= 0) {
      json content = json::array();
      for (const auto& t : r.tokens) content.push_back(chat_logprob(t));
      choice["logprobs"] = {{"content", content}, {"refusal", nullptr}};
    }
  } else {
    choice["text"] = s.echo_prompt + r.text;
    if (s.top_logprobs >= 0)
      choice["logprobs"] = completion_logprobs(r.tokens, s.echo_prompt.size());
  }
  j["choices"] = json::array({choice});
  j["usage"] = usage(r);
  return j;
}

json first_chunk(const ResponseShape& s) {
  json j = chunk_base(s);
  if (s.chat)
    j["choices"] = json::array({{{"index", 0},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}}});
  else
    j["choices"] = json::array({{{"index", 0},
                                 {"text", s.echo_prompt},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}}});
  return j;
}

json token_chunk(const ResponseShape& s, const TokenEvent& t) {
  json j = chunk_base(s);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  if (s.chat) {
    choice["delta"] = {{"content", t.text}};
    if (s.top_logprobs >= 0)
      choice["logprobs"] = {{"content", json::array({chat_logprob(t)})}, {"refusal", nullptr}};
  } else {
    choice["text"] = t.text;
    if (s.top_logprobs >= 0) choice["logprobs"] = completion_logprobs({t}, 0);
  }
  j["choices"] = json::array({choice});
  return j;
}

json delta_chunk(const ResponseShape& s, const json& delta) {
  json j = chunk_base(s);
  j["choices"] = json::array(
      {{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  return j;
}

json final_chunk(const ResponseShape& s, const GenerationResult& r, bool tool_calls) {
  json j = chunk_base(s);
  json choice = {
      {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_name(r.finish, tool_calls)}};
  if (s.chat)
    choice["delta"] = json::object();
  else
    choice["text"] = "";
  j["choices"] = json::array({choice});
  return j;
}

json usage_chunk(const ResponseShape& s, const GenerationResult& r) {
  json j = chunk_base(s);
  j["choices"] = json::array();
  j["usage"] = usage(r);
  return j;
}

json models_response(const std::string& model_id, int64_t context_length) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model_id},
                                 {"object", "model"},
                                 {"created", static_cast<int64_t>(std::time(nullptr))},
                                 {"owned_by", "eight"},
                                 {"context_length", context_length}}})}};
}

std::string sse(const json& chunk) {
  return "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace eight::server
