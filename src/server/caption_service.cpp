#include "server/caption_service.h"

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/image.h"
#include "server/api_error.h"
#include "server/openai_request.h"

namespace eight::server {
namespace {

using json = nlohmann::json;

std::string trim(std::string s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return {};
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// The last user message's text without the marks image parts leave (kImagePart).
std::string user_text(const nlohmann::ordered_json& messages) {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->value("role", "") != "user") continue;
    std::string t = (*it)["content"].is_string() ? (*it)["content"].get<std::string>() : "";
    for (size_t at = t.find(kImagePart); at != std::string::npos; at = t.find(kImagePart, at))
      t.erase(at, kImagePart.size());
    return trim(t);
  }
  return {};
}

}  // namespace

CaptionService::CaptionService(std::shared_ptr<const blip::Model> model,
                               CaptionServiceOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      pool_(options_.n_threads > 0 ? options_.n_threads : default_thread_count()) {
  if (options_.model_id.empty()) options_.model_id = model_->name();
}

std::vector<std::string> CaptionService::model_ids() const {
  return {options_.model_id};
}

bool CaptionService::answers_chat(const std::string& model, bool text_model_loaded) const {
  return model == options_.model_id || (model.empty() && !text_model_loaded);
}

ServiceResponse CaptionService::chat(const std::string& body) {
  const ChatRequest r = parse_chat_request(parse_body(body));
  if (r.gen.images.empty())
    bad_request("messages", cat("'", options_.model_id,
                                "' answers about an image: send one as an image_url part "
                                "(data:image/...;base64,...)"));
  const std::string text = user_text(r.messages);
  if (model_->is_vqa() && text.empty())
    bad_request("messages",
                cat("'", options_.model_id,
                    "' is a question-answering model: ask a question beside the image"));
  image::Image img;
  try {
    const std::string& bytes = r.gen.images.back();
    img = image::decode({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "image",
                        options_.max_image_pixels);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request("messages", cat("the image cannot be read: ", e.what()), "invalid_image");
  }
  const int max_new =
      r.gen.max_tokens > 0 ? static_cast<int>(std::min<int64_t>(r.gen.max_tokens, 4096)) : -1;
  blip::Generated g;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Tensor pixels = model_->preprocess(img);
    try {
      g = model_->is_vqa()
              ? model_->answer(pixels, text,
                               {.prompt = "", .max_new_tokens = max_new, .num_beams = -1}, pool_)
              : model_->caption(
                    pixels, {.prompt = text, .max_new_tokens = max_new, .num_beams = -1}, pool_);
    } catch (const Error& e) {  // a prompt past the decoder's positions, and the like
      bad_request("messages", e.what());
    }
  }
  const std::string finish = g.ended ? "stop" : "length";
  const auto created = static_cast<int64_t>(std::time(nullptr));
  const std::string id =
      cat("chatcmpl-blip", std::chrono::steady_clock::now().time_since_epoch().count());
  const json usage = {{"prompt_tokens", g.prompt_tokens},
                      {"completion_tokens", g.tokens.size()},
                      {"total_tokens", g.prompt_tokens + static_cast<int64_t>(g.tokens.size())}};
  if (!r.gen.stream) {
    const json out = {
        {"id", id},
        {"object", "chat.completion"},
        {"created", created},
        {"model", options_.model_id},
        {"choices", json::array({{{"index", 0},
                                  {"message", {{"role", "assistant"}, {"content", g.text}}},
                                  {"finish_reason", finish}}})},
        {"usage", usage}};
    return {.status = 200, .body = out.dump(), .content_type = "application/json"};
  }
  auto chunk = [&](const json& delta, const json& reason) {
    json c = {
        {"id", id},
        {"object", "chat.completion.chunk"},
        {"created", created},
        {"model", options_.model_id},
        {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", reason}}})}};
    if (r.gen.include_usage) c["usage"] = nullptr;
    return "data: " + c.dump() + "\n\n";
  };
  std::string sse = chunk({{"role", "assistant"}, {"content", ""}}, nullptr) +
                    chunk({{"content", g.text}}, nullptr) + chunk(json::object(), finish);
  if (r.gen.include_usage)
    sse += "data: " +
           json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", options_.model_id},
                {"choices", json::array()},
                {"usage", usage}}
               .dump() +
           "\n\n";
  sse += "data: [DONE]\n\n";
  return {.status = 200, .body = sse, .content_type = "text/event-stream"};
}

}  // namespace eight::server
