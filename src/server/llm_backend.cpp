#include "server/llm_backend.h"

#include "core/thread_pool.h"
#include "formats/image.h"
#include "runtime/llm/multimodal.h"
#include "server/api_error.h"

namespace eight::server {

LLMBackend::LLMBackend(std::string model_id, Scheduler& scheduler, LLMTextFunctions text)
    : model_id_(std::move(model_id)), scheduler_(scheduler), text_(std::move(text)) {}

std::string LLMBackend::render_chat(const nlohmann::ordered_json& messages,
                                    const nlohmann::ordered_json& tools) const {
  try {
    return text_.render_chat(messages, tools);
  } catch (const Error& e) {
    // A template that rejects the conversation (raise_exception) is the client's problem.
    throw ApiError(400, "invalid_request_error",
                   cat("the chat template rejected the messages: ", e.what()), "messages");
  }
}

TokenEvent LLMBackend::event(const ScheduledToken& t) const {
  TokenEvent e;
  e.token = t.token;
  e.text = t.text;
  e.logprob = t.logprob;
  for (const auto& [id, lp] : t.top) e.top.emplace_back(text_.piece(id), lp);
  return e;
}

void LLMBackend::prompt_ids(const std::string& prompt, const GenerationParams& params,
                            ScheduledRequest& req) const {
  if (params.images.empty()) {
    req.prompt = text_.encode(prompt);
    return;
  }
  if (!text_.vision)
    throw ApiError(
        400, "invalid_request_error",
        cat("the model '", model_id_, "' cannot see images (start the server with its --mmproj)"),
        "messages");
  const int64_t n_embd = scheduler_.model().config().n_embd;
  std::vector<Tensor> features;
  for (size_t i = 0; i < params.images.size(); ++i) {
    const std::string& b = params.images[i];
    image::Image im;
    try {
      im = image::decode({reinterpret_cast<const uint8_t*>(b.data()), b.size()},
                         cat("image ", i + 1));
    } catch (const Error& e) {
      throw ApiError(400, "invalid_request_error", e.what(), "messages");
    }
    features.push_back(text_.vision->encode(im, global_thread_pool()));
  }
  MultimodalPrompt mp;
  try {
    mp = build_multimodal_prompt(
        [&](const std::string& piece, bool first) {
          return first ? text_.encode(piece) : text_.encode_piece(piece);
        },
        prompt, -1, features, n_embd, kImagePart);
  } catch (const Error& e) {
    throw ApiError(400, "invalid_request_error", e.what(), "messages");
  }
  req.prompt = std::move(mp.tokens);
  req.embeddings = std::move(mp.embeddings);
}

GenerationResult LLMBackend::generate(const std::string& prompt, const GenerationParams& params,
                                      const std::function<bool(const TokenEvent&)>& on_token) {
  ScheduledRequest req;
  prompt_ids(prompt, params, req);
  if (req.prompt.empty()) bad_request("prompt", "the prompt encodes to no tokens");
  const int64_t n_prompt = static_cast<int64_t>(req.prompt.size());
  if (n_prompt >= scheduler_.n_ctx())
    throw ApiError(
        400, "invalid_request_error",
        cat("this model's context holds ", scheduler_.n_ctx(),
            " tokens per request, "
            "but the prompt has ",
            n_prompt, " tokens (at least ", n_prompt + 1, " are needed to generate anything)"),
        "messages", "context_length_exceeded");
  if (params.max_tokens > 0 && n_prompt + params.max_tokens > scheduler_.n_ctx())
    throw ApiError(400, "invalid_request_error",
                   cat("this model's context holds ", scheduler_.n_ctx(),
                       " tokens per request, but the prompt has ", n_prompt,
                       " tokens and max_tokens asks for ", params.max_tokens, " more (",
                       n_prompt + params.max_tokens, " in total)"),
                   "max_tokens", "context_length_exceeded");
  req.sampling = params.sampler;
  req.max_tokens = params.max_tokens;
  req.stop = params.stop;
  req.top_logprobs = params.top_logprobs;
  if (params.grammar) {
    if (!text_.grammar_vocab)
      bad_request("response_format", "this model does not support response_format");
    req.grammar = params.grammar;
    req.grammar_vocab = text_.grammar_vocab;
  }

  auto job = scheduler_.submit(std::move(req));
  if (!job)
    throw ApiError(503, "server_error",
                   "the server is busy: every slot and the queue are full; "
                   "retry shortly");
  ScheduledToken t;
  bool open = true;
  while (job->next(&t)) {
    const bool visible = !t.text.empty() || (params.top_logprobs >= 0 && t.token >= 0);
    if (open && visible && !on_token(event(t))) {
      open = false;
      job->cancel();
    }
  }
  const ScheduledResult& r = job->result();
  if (r.finish_reason == "error") throw ApiError(500, "server_error", r.error);
  GenerationResult out;
  out.text = r.text;
  out.finish = r.finish_reason == "length" ? FinishReason::Length : FinishReason::Stop;
  out.prompt_tokens = r.prompt_tokens;
  out.completion_tokens = r.completion_tokens;
  out.cached_prompt_tokens = r.cached_tokens;
  for (const auto& tok : r.tokens) out.tokens.push_back(event(tok));
  return out;
}

BackendStats LLMBackend::stats() const {
  const SchedulerStats s = scheduler_.stats();
  return {.queue_depth = s.queued,
          .active_slots = s.active,
          .slots = s.slots,
          .kv_used_cells = s.kv_used,
          .kv_total_cells = s.kv_total};
}

}  // namespace eight::server
