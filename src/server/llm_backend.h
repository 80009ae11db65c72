#pragma once
// TextBackend over the runtime's continuous-batching Scheduler. The tokenizer and chat template
// come in as functions (the command that starts the server owns the model's text side).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/llava/llava.h"
#include "runtime/llm/scheduler.h"
#include "server/backend.h"

namespace eight::server {

struct LLMTextFunctions {
  // Prompt text → ids (BOS per the model's metadata; special-token text parsed, since chat
  // templates emit it).
  std::function<std::vector<int32_t>(const std::string&)> encode;
  // A token's bytes.
  TokenText piece;
  // Chat messages and tools (null: none) → prompt text, generation prompt added.
  std::function<std::string(const nlohmann::ordered_json&, const nlohmann::ordered_json&)>
      render_chat;
  ToolFormat tool_format = ToolFormat::Generic;  // text/tool_calls.h: detect_tool_format
  bool template_uses_tools = false;
  // The vocabulary's trie for constrained decoding (response_format).
  std::shared_ptr<const text::GrammarVocab> grammar_vocab;
  // A vision LLM's image encoder (LLaVA's mmproj), or null for a model that cannot see, and the
  // ids of chat prompt text after an image (no BOS; as encode treats chat prompts).
  std::shared_ptr<const llava::VisionEncoder> vision = nullptr;
  std::function<std::vector<int32_t>(const std::string&)> encode_piece = nullptr;
};

class LLMBackend final : public TextBackend {
 public:
  LLMBackend(std::string model_id, Scheduler& scheduler, LLMTextFunctions text);

  std::string model_id() const override { return model_id_; }
  int64_t context_length() const override { return scheduler_.n_ctx(); }
  std::string render_chat(const nlohmann::ordered_json& messages,
                          const nlohmann::ordered_json& tools) const override;
  ToolFormat tool_format() const override { return text_.tool_format; }
  bool template_uses_tools() const override { return text_.template_uses_tools; }
  GenerationResult generate(const std::string& prompt, const GenerationParams& params,
                            const std::function<bool(const TokenEvent&)>& on_token) override;
  BackendStats stats() const override;

 private:
  TokenEvent event(const ScheduledToken& t) const;
  // The prompt's ids, with the request's images spliced in where it says "<image>" (400 for a
  // model that cannot see, or an image that does not decode).
  void prompt_ids(const std::string& prompt, const GenerationParams& params,
                  ScheduledRequest& req) const;

  std::string model_id_;
  Scheduler& scheduler_;
  LLMTextFunctions text_;
};

}  // namespace eight::server
