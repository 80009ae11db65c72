#pragma once
// What the HTTP server needs from a loaded text model. The runtime's scheduler implements it
// (continuous batching over parallel slots); the server only speaks HTTP and JSON.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/openai_request.h"
#include "text/tool_calls.h"

namespace eight::server {

struct TokenEvent {
  int32_t token = -1;
  std::string text;      // the UTF-8-complete text this token adds (may be empty)
  float logprob = 0.0f;  // log-probability of the token under the model (before sampling filters)
  std::vector<std::pair<std::string, float>> top;  // top alternatives when asked for
};

enum class FinishReason { Stop, Length };

struct GenerationResult {
  std::string text;  // the generated text (stop string excluded)
  FinishReason finish = FinishReason::Stop;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens reused from a slot's cache
  std::vector<TokenEvent> tokens;    // filled when logprobs were asked for
};

struct BackendStats {
  int64_t queue_depth = 0;    // requests waiting for a slot
  int64_t active_slots = 0;   // requests decoding now
  int64_t slots = 0;          // --parallel
  int64_t kv_used_cells = 0;  // KV-cache cells holding tokens
  int64_t kv_total_cells = 0;
};

class TextBackend {
 public:
  virtual ~TextBackend() = default;
  virtual std::string model_id() const = 0;
  virtual int64_t context_length() const = 0;
  // The prompt text for chat messages, rendered with the model's chat template (generation
  // prompt added); `tools`: the template's `tools` variable (null: None).
  virtual std::string render_chat(const nlohmann::ordered_json& messages,
                                  const nlohmann::ordered_json& tools) const = 0;
  // How the model writes tool calls, and whether its template renders `tools` at all.
  virtual ToolFormat tool_format() const = 0;
  virtual bool template_uses_tools() const = 0;
  // Generates a completion of `prompt`. on_token is called for every token as it is produced (on
  // the calling thread); returning false cancels the request (the client went away) and frees its
  // slot. Throws ApiError: 400 when the prompt does not fit the context (with the token counts),
  // 503 when the queue is full.
  virtual GenerationResult generate(const std::string& prompt, const GenerationParams& params,
                                    const std::function<bool(const TokenEvent&)>& on_token) = 0;
  virtual BackendStats stats() const = 0;
};

}  // namespace eight::server
