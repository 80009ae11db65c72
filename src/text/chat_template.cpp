#include "text/chat_template.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "formats/gguf.h"
#include "text/jinja.h"

namespace eight {

std::string render_chat(const std::string& template_src, const ChatJson& messages,
                        const ChatOptions& opts) {
  check(messages.is_array(), "[chat] messages must be a JSON array, got ", messages.type_name());
  // jinja2 parses once per template text; so do we (chat servers render the same one often).
  static thread_local std::map<std::string, jinja::Template> cache;
  auto it = cache.find(template_src);
  if (it == cache.end()) {
    if (cache.size() > 16) cache.clear();
    it = cache.emplace(template_src, jinja::Template::parse(template_src)).first;
  }
  jinja::Value ctx = jinja::Value::dict();
  jinja::Dict& d = ctx.dict_ref();
  if (opts.extra.is_object())
    for (const auto& [k, v] : opts.extra.items()) d.set(k, jinja::Value::from_json(v));
  d.set("messages", jinja::Value::from_json(messages));
  d.set("tools", jinja::Value::from_json(opts.tools));
  if (!d.find("documents")) d.set("documents", jinja::Value::none());
  d.set("add_generation_prompt", jinja::Value(opts.add_generation_prompt));
  if (!opts.bos_token.empty()) d.set("bos_token", jinja::Value(opts.bos_token));
  if (!opts.eos_token.empty()) d.set("eos_token", jinja::Value(opts.eos_token));
  return it->second.render(ctx);
}

ChatJson map_contents(const ChatJson& messages,
                      const std::function<std::string(std::string_view)>& f) {
  ChatJson out = messages;
  if (!out.is_array()) return out;
  for (auto& m : out) {
    if (!m.is_object() || !m.contains("content")) continue;
    ChatJson& c = m["content"];
    if (c.is_string()) {
      c = f(c.get_ref<const std::string&>());
    } else if (c.is_array()) {
      for (auto& part : c)
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string())
          part["text"] = f(part["text"].get_ref<const std::string&>());
    }
  }
  return out;
}

namespace {

// Our own minimal templates that produce each family's documented prompt format.
const std::map<std::string, std::string>& defaults() {
  static const std::map<std::string, std::string> t = {
      {"chatml",
       "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
       "message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
       "{{ '<|im_start|>assistant\\n' }}{% endif %}"},
      {"llama3",
       "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
       "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
       "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
       "}}{% endif %}"},
      {"phi3",
       "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + "
       "'<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
       "{% else %}{{ eos_token }}{% endif %}"},
      {"mistral",
       "{{ bos_token }}{% set ns = namespace(sys='') %}{% for message in messages %}"
       "{% if message['role'] == 'system' %}{% set ns.sys = message['content'] + '\\n\\n' %}"
       "{% elif message['role'] == 'user' %}{{ '[INST] ' + ns.sys + message['content'] + "
       "' [/INST]' }}{% set ns.sys = '' %}{% elif message['role'] == 'assistant' %}"
       "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"},
      {"llama2",
       "{% set ns = namespace(sys='') %}{% for message in messages %}"
       "{% if message['role'] == 'system' %}{% set ns.sys = '<<SYS>>\\n' + message['content'] + "
       "'\\n<</SYS>>\\n\\n' %}{% elif message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
       "ns.sys + message['content'] | trim + ' [/INST]' }}{% set ns.sys = '' %}"
       "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + ' ' + "
       "eos_token }}{% endif %}{% endfor %}"},
      {"deepseek",
       "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
       "{{ message['content'] + '\\n' }}{% elif message['role'] == 'user' %}"
       "{{ '### Instruction:\\n' + message['content'] + '\\n' }}{% else %}"
       "{{ '### Response:\\n' + message['content'] + '\\n<|EOT|>\\n' }}{% endif %}{% endfor %}"
       "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"},
      {"vicuna",
       "{% for message in messages %}{% if message['role'] == 'system' %}"
       "{{ message['content'] + '\\n\\n' }}{% elif message['role'] == 'user' %}"
       "{{ 'USER: ' + message['content'] + '\\n' }}{% else %}{{ 'ASSISTANT: ' + "
       "message['content'] + eos_token + '\\n' }}{% endif %}{% endfor %}"
       "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"},
      {"gemma",
       "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == "
       "'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + "
       "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
       "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"},
  };
  return t;
}

}  // namespace

const std::vector<std::string>& chat_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, t] : defaults()) v.push_back(k);
    return v;
  }();
  return names;
}

const std::string& default_chat_template(const std::string& family) {
  auto it = defaults().find(family);
  if (it == defaults().end()) {
    std::string known;
    for (const auto& f : chat_families()) known += cat(known.empty() ? "" : ", ", f);
    fail("[chat] no default template for family '", family, "' (known: ", known, ")");
  }
  return it->second;
}

std::string guess_chat_family(const std::vector<std::string>& tokens, const std::string& arch) {
  auto has = [&](const char* t) {
    return std::find(tokens.begin(), tokens.end(), t) != tokens.end();
  };
  if (has("<|start_header_id|>")) return "llama3";
  if (has("<|im_start|>")) return "chatml";
  if (has("<|assistant|>") && has("<|end|>")) return "phi3";
  if (has("<start_of_turn>")) return "gemma";
  if (has("<|EOT|>") || arch.find("deepseek") != std::string::npos) return "deepseek";
  if (has("[INST]")) return "mistral";
  if (arch == "llama" && tokens.size() == 32000) return "llama2";
  return "chatml";
}

ModelChat model_chat(const gguf::File& file) {
  ModelChat mc;
  std::vector<std::string> tokens;
  if (const auto* t = file.find("tokenizer.ggml.tokens")) tokens = t->as_strings();
  auto token_text = [&](const char* key) -> std::string {
    const auto* v = file.find(key);
    if (!v) return "";
    uint64_t id = v->as_u64();
    check(id < tokens.size(), "[chat] ", key, " = ", id, " but the vocabulary has ", tokens.size(),
          " tokens");
    return tokens[id];
  };
  mc.bos_token = token_text("tokenizer.ggml.bos_token_id");
  mc.eos_token = token_text("tokenizer.ggml.eos_token_id");
  mc.template_src = file.get_string("tokenizer.chat_template", "");
  if (mc.template_src.empty()) {
    mc.family = guess_chat_family(tokens, file.architecture());
    mc.template_src = default_chat_template(mc.family);
  }
  return mc;
}

}  // namespace eight
