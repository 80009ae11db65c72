// `eight chat [-m MODEL] [--system TEXT] [-p QUESTION]`: a conversation using the model's chat
// template. History is kept (the cached prefix of the conversation is reused each turn); /reset
// clears it, /exit or end of input quits, Ctrl-C stops the current answer. With -p it answers one
// question and exits (for scripts). Without -m it uses the bundled demo model. A vision LLM
// (LLaVA 1.6, --mmproj) sees images: --image for the first question, /image PATH for the next;
// each goes at the start of its user turn as "<image>\n".
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/llm_common.h"
#include "core/error.h"
#include "core/log.h"
#include "runtime/llm/multimodal.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace eight::cli {
namespace {

struct Chat {
  LLMSession& session;
  const text::Tokenizer& tok;
  const ModelChat& tmpl;
  GenerateParams params;
  bool context_shift = false;
  ChatJson messages = ChatJson::array();
  size_t n_system = 0;                 // leading system messages, never dropped
  std::vector<Tensor> images = {};     // the image rows of the conversation, in order
  Tensor pending = {};                 // attached by --image or /image for the next user turn
  std::vector<float> embeddings = {};  // the last render's rows (read by generate)

  std::vector<int32_t> render() {
    ChatOptions o;
    o.bos_token = tmpl.bos_token;
    o.eos_token = tmpl.eos_token;
    const ChatJson protected_messages =
        map_contents(messages, [this](std::string_view s) { return tok.protect_special(s); });
    const std::string prompt = render_chat(tmpl.template_src, protected_messages, o);
    // Templates usually write BOS themselves; add it only when they do not.
    const bool has_bos = !tmpl.bos_token.empty() && prompt.rfind(tmpl.bos_token, 0) == 0;
    if (images.empty()) {
      params.prompt_embeddings = nullptr;
      return tok.encode_chat(prompt, /*add_special=*/!has_bos);
    }
    // Turns dropped by a context shift took their (oldest) images with them.
    size_t markers = 0;
    for (size_t at = prompt.find(kImageMarker); at != std::string::npos;
         at = prompt.find(kImageMarker, at + 1))
      ++markers;
    if (markers < images.size())
      images.erase(images.begin(), images.end() - static_cast<long>(markers));
    // Pieces between images tokenized as chat text (template specials parsed, content not).
    MultimodalPrompt mp = build_multimodal_prompt(
        [&](const std::string& piece, bool first) {
          return tok.encode_chat(piece, /*add_special=*/first && !has_bos);
        },
        prompt, !has_bos && tok.add_bos() ? tok.bos() : -1, images, session.config().n_embd);
    embeddings = std::move(mp.embeddings);
    params.prompt_embeddings = embeddings.data();
    return mp.tokens;
  }

  // Runs one user turn; the answer streams to stdout and joins the history.
  void turn(const std::string& user) {
    const bool with_image = pending.defined();
    if (with_image) {
      images.push_back(std::move(pending));
      pending = Tensor();
      messages.push_back({{"role", "user"}, {"content", std::string(kImageMarker) + "\n" + user}});
    } else {
      messages.push_back({{"role", "user"}, {"content", user}});
    }
    std::vector<int32_t> prompt = render();
    const int64_t reserve =
        std::min<int64_t>(params.max_tokens > 0 ? params.max_tokens : 256, session.n_ctx() / 2);
    // Context full: drop the oldest turns after the system prompt, or refuse this one.
    while (static_cast<int64_t>(prompt.size()) + reserve > session.n_ctx()) {
      if (!context_shift || messages.size() <= n_system + 1) {
        messages.erase(messages.end() - 1);
        if (with_image) images.pop_back();  // the refused turn's image goes with it
        std::fprintf(stderr,
                     "[the conversation (%zu tokens) no longer fits the context of %lld tokens: "
                     "/reset, or restart with --context-shift or a larger --ctx]\n",
                     prompt.size(), static_cast<long long>(session.n_ctx()));
        return;
      }
      messages.erase(messages.begin() + static_cast<long>(n_system));  // oldest message
      while (messages.size() > n_system + 1 &&
             messages[n_system]["role"].get<std::string>() != "user")
        messages.erase(messages.begin() + static_cast<long>(n_system));
      log_info("[chat] context full: dropped the oldest turn");
      prompt = render();
    }
    interrupted().store(false);
    auto sink = [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    };
    const GenerateResult r = generate(
        session, prompt, params, [&](int32_t id) { return tok.token_to_piece(id); }, sink,
        &interrupted());
    std::printf("\n");
    if (r.finish_reason == "cancelled") std::fprintf(stderr, "[stopped]\n");
    if (r.finish_reason == "context")
      std::fprintf(stderr, "[the context is full: /reset, or restart with --context-shift]\n");
    messages.push_back({{"role", "assistant"}, {"content", r.text}});
    interrupted().store(false);
  }

  void reset() {
    messages.erase(messages.begin() + static_cast<long>(n_system), messages.end());
    images.clear();
    params.prompt_embeddings = nullptr;
    session.reset();
  }
};

int run(int argc, char** argv) {
  ArgParser p("chat", "[-m MODEL] [--system TEXT] [-p QUESTION]",
              "Chat with an LLM using its chat template (/reset, /exit, /image PATH with "
              "--mmproj; Ctrl-C stops an answer).");
  ModelArgs model;
  SamplingArgs sampling;
  VisionArgs vision;
  GrammarArgs grammar;
  std::string system, question;
  int64_t n = 512;
  bool context_shift = false;
  model.add_to(p, /*model_required=*/false);
  p.option("--system", &system, "TEXT", "system prompt");
  p.option("-p,--prompt", &question, "TEXT", "answer this one question and exit");
  p.option("-n,--max-tokens", &n, "N", "tokens per answer at most (default 512)");
  sampling.add_to(p);
  vision.add_to(p);
  grammar.add_to(p);
  p.flag("--context-shift", &context_shift,
         "when the conversation outgrows the context, drop the oldest turns after the system "
         "prompt");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(n > 0, "--max-tokens must be positive, got ", n);

  const std::string path = model.resolve(/*allow_default=*/true);
  SessionOptions so = model.session_options();
  const bool mmproj_given = !vision.mmproj.empty();
  vision.from_model(model.model);  // a LLaVA-NeXT directory can take /image PATH later
  vision.plan(so);
  auto session = LLMSession::open(path, so);
  const gguf::File& f = session->model().file();
  const auto tok = text::Tokenizer::from_gguf(f);
  const ModelChat tmpl = model_chat(f);
  Chat chat{.session = *session,
            .tok = tok,
            .tmpl = tmpl,
            .params = {.max_tokens = n, .sampling = sampling.params(), .eog_tokens = tok.eog_ids()},
            .context_shift = context_shift};
  grammar.apply(chat.params, tok);  // every answer follows it
  if (!system.empty()) {
    chat.messages.push_back({{"role", "system"}, {"content", system}});
    chat.n_system = 1;
  }
  const int64_t n_embd = session->config().n_embd;
  if (vision.any()) chat.pending = vision.encode(vision.image, n_embd, model.threads);
  check(vision.any() || !mmproj_given || question.empty(), "--mmproj needs an --image");
  install_interrupt_handler();
  if (!question.empty()) {
    chat.turn(question);
    return 0;
  }
  const bool tty = ::isatty(STDIN_FILENO);
  if (tty)
    std::fprintf(stderr, "eight chat: %s (%s). /reset clears the history, /exit quits.\n",
                 f.get_string("general.name", path).c_str(), session->ctx_note().c_str());
  std::string line;
  while (true) {
    if (tty) {
      std::printf("> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) {
      if (interrupted().exchange(false) && !std::cin.eof()) {  // Ctrl-C at the prompt
        std::cin.clear();
        std::printf("\n");
        continue;
      }
      break;  // end of input
    }
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line.rfind("/image ", 0) == 0) {
      try {
        chat.pending = vision.encode(line.substr(7), n_embd, model.threads);
        std::fprintf(stderr, "[image attached to your next message: %lld tokens]\n",
                     static_cast<long long>(chat.pending.size(0)));
      } catch (const Error& e) {
        std::fprintf(stderr, "[%s]\n", e.what());
      }
      continue;
    }
    if (line == "/reset") {
      chat.reset();
      std::fprintf(stderr, "[history cleared]\n");
      continue;
    }
    chat.turn(line);
  }
  return 0;
}

const Registration reg({.name = "chat",
                        .summary = "chat with an LLM (default: the bundled demo model)",
                        .run = run,
                        .order = 41});

}  // namespace
}  // namespace eight::cli
