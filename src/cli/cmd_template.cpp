// `eight template`: renders a conversation through a model's chat template (or a given one) and
// prints the prompt exactly, byte for byte, with no trailing newline added.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "models/llm/llm_hf.h"
#include "text/chat_template.h"

namespace eight::cli {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "[template] cannot open '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(int argc, char** argv) {
  ArgParser p("template", "-m FILE --messages CONVERSATION.json",
              "Render a conversation through a chat template and print the prompt.");
  std::string model, messages_path, template_path, family, bos, eos;
  bool no_gen = false;
  p.option("-m,--model", &model, "FILE",
           "GGUF model (or Hugging Face directory) whose tokenizer.chat_template is used");
  p.option("--messages", &messages_path, "FILE",
           "conversation: a JSON array of messages, or an object with \"messages\" and optional "
           "\"tools\", \"add_generation_prompt\" and other template variables ('-' for stdin)");
  p.option("--chat-template", &template_path, "FILE", "use this Jinja template instead");
  p.option("--family", &family, "NAME",
           "use the built-in default template of a family (llama3, chatml, phi3, mistral, "
           "llama2, deepseek, vicuna, gemma)");
  p.option("--bos", &bos, "TEXT", "bos_token (default: the model's)");
  p.option("--eos", &eos, "TEXT", "eos_token (default: the model's)");
  p.flag("--no-generation-prompt", &no_gen, "do not open an assistant turn at the end");
  p.positional_count(0, 0);
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!messages_path.empty(), "[template] --messages is required");
  check(!model.empty() || !template_path.empty() || !family.empty(),
        "[template] give -m MODEL, --chat-template FILE or --family NAME");

  std::string text;
  if (messages_path == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    text = s.str();
  } else {
    text = read_file(messages_path);
  }
  ChatJson conv;
  try {
    conv = ChatJson::parse(text);
  } catch (const std::exception& e) {
    fail("[template] ", messages_path, " is not valid JSON: ", e.what());
  }

  ChatOptions opts;
  ChatJson messages;
  if (conv.is_array()) {
    messages = conv;
  } else {
    check(conv.is_object() && conv.contains("messages"), "[template] ", messages_path,
          ": expected an array of messages or an object with \"messages\"");
    opts.extra = ChatJson::object();
    for (const auto& [k, v] : conv.items()) {
      if (k == "messages")
        messages = v;
      else if (k == "tools")
        opts.tools = v;
      else if (k == "add_generation_prompt")
        opts.add_generation_prompt = v.get<bool>();
      else
        opts.extra[k] = v;
    }
  }
  if (no_gen) opts.add_generation_prompt = false;

  std::string tmpl;
  if (!model.empty()) {
    ModelChat mc = model_chat(llm::open_llm_file(model));
    tmpl = mc.template_src;
    opts.bos_token = mc.bos_token;
    opts.eos_token = mc.eos_token;
  }
  if (!family.empty()) tmpl = default_chat_template(family);
  if (!template_path.empty()) tmpl = read_file(template_path);
  if (p.given("--bos")) opts.bos_token = bos;
  if (p.given("--eos")) opts.eos_token = eos;
  // Variables in the conversation file win, as HF's **kwargs do.
  if (opts.extra.is_object()) {
    if (opts.extra.contains("bos_token") && opts.extra["bos_token"].is_string())
      opts.bos_token = opts.extra["bos_token"].get<std::string>();
    if (opts.extra.contains("eos_token") && opts.extra["eos_token"].is_string())
      opts.eos_token = opts.extra["eos_token"].get<std::string>();
  }
  std::string out = render_chat(tmpl, messages, opts);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

const Registration reg({.name = "template",
                        .summary = "render a conversation through a chat template",
                        .run = run,
                        .order = 610});

}  // namespace
}  // namespace eight::cli
