#pragma once
// Chat prompts: runs a model's Jinja chat template the way Hugging Face's apply_chat_template
// does (same globals: messages, tools, documents, add_generation_prompt, bos_token, eos_token,
// raise_exception, strftime_now), with per-family defaults for models that ship no template.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace eight::gguf {
class File;
}

namespace eight {

using ChatJson = nlohmann::ordered_json;

struct ChatOptions {
  bool add_generation_prompt = true;
  std::string bos_token;  // empty: not defined for the template (as HF when the token is unset)
  std::string eos_token;
  ChatJson tools;  // null: `tools` is None, as in HF
  ChatJson extra;  // object of additional template variables (HF's **kwargs), may be null
};

// messages: a JSON array of {"role": ..., "content": ...} objects (any extra fields are passed
// through). Throws Error "[jinja] line N: ..." for template errors.
std::string render_chat(const std::string& template_src, const ChatJson& messages,
                        const ChatOptions& opts);

// messages with every content string (and the text of every {"type": "text"} content part)
// replaced by f(text): Tokenizer::protect_special, so that message text never becomes a special
// token.
ChatJson map_contents(const ChatJson& messages,
                      const std::function<std::string(std::string_view)>& f);

// Families with a built-in default template.
const std::vector<std::string>& chat_families();
// The default template of a family (llama3, chatml, phi3, mistral, llama2, deepseek, vicuna,
// gemma). Throws Error for an unknown family.
const std::string& default_chat_template(const std::string& family);
// Picks a family from a vocabulary's special tokens and the architecture name.
std::string guess_chat_family(const std::vector<std::string>& tokens, const std::string& arch);

// What a model file says about chatting: its template (or the family default when it has
// none), and its BOS/EOS token texts.
struct ModelChat {
  std::string template_src;
  std::string family;  // set when template_src is a default
  std::string bos_token, eos_token;
};
ModelChat model_chat(const gguf::File& file);

}  // namespace eight
