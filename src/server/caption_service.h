#pragma once
// BLIP behind the chat API (eight serve --caption-model M): a chat completion naming the model
// (or naming none when no text model is served) with an image_url part (a data: URL, parsed as
// for LLaVA) is answered by BLIP. The last user message's text is the question for a VQA model,
// or the caption's prefix for a captioning model (empty: a plain caption). The reply is an
// ordinary chat.completion (or, with "stream": true, the same text as one SSE content chunk).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/blip/blip.h"
#include "server/service.h"

namespace eight::server {

struct CaptionServiceOptions {
  std::string model_id;                         // /v1/models id (default: the directory name)
  int n_threads = 0;                            // 0: default_thread_count()
  int64_t max_image_pixels = int64_t{1} << 26;  // checked from the image header
};

class CaptionService final : public Service {
 public:
  CaptionService(std::shared_ptr<const blip::Model> model, CaptionServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override { return {}; }
  bool answers_chat(const std::string& model, bool text_model_loaded) const override;
  ServiceResponse chat(const std::string& body) override;

 private:
  std::shared_ptr<const blip::Model> model_;
  CaptionServiceOptions options_;
  ThreadPool pool_;
  std::mutex mutex_;  // one generation at a time
};

}  // namespace eight::server
