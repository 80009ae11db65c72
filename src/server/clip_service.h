#pragma once
// CLIP's endpoints:
//   POST /v1/embeddings          OpenAI's shape: {"model", "input": string | [string],
//                                "encoding_format": "float" | "base64"} → {"object": "list",
//                                "data": [{"object": "embedding", "index", "embedding"}], "model",
//                                "usage"}; normalized text embeddings
//   POST /v1/images/embeddings   JSON {"model", "image": base64 | data URL | [...],
//                                "encoding_format"} or multipart with one or more `file` parts;
//                                the same response shape, normalized image embeddings
//   POST /v1/classify            JSON {"image" (as above), "labels": [..] | "a,b,c",
//                                "template": "a photo of {}"} or multipart (file, labels,
//                                template) → {"object": "list", "model", "data": [{"object":
//                                "classification", "index", "labels": [{"label", "probability"}]}]}
//                                with labels best first
// Images are decoded (JPEG, PNG, WebP, BMP, GIF; EXIF orientation applied) under a pixel limit;
// broken input is a 400 naming the field. Requests run one at a time on the service's own thread
// pool (ThreadPool::parallel_for is not reentrant, and an LLM beside it has its own).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/clip/clip.h"
#include "server/service.h"

namespace eight::server {

struct ClipServiceOptions {
  std::string model_id;                         // reported by /v1/models and in responses
  int n_threads = 0;                            // 0: default_thread_count()
  int64_t max_image_pixels = int64_t{1} << 26;  // per image, checked from the header
  int max_inputs = 256;                         // texts or images per request
};

class ClipService final : public Service {
 public:
  ClipService(std::shared_ptr<const clip::Model> model, ClipServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;

  // The handlers (throw ApiError for client errors).
  ServiceResponse text_embeddings(const ServiceRequest& req);
  ServiceResponse image_embeddings(const ServiceRequest& req);
  ServiceResponse classify(const ServiceRequest& req);

 private:
  std::shared_ptr<const clip::Model> model_;
  ClipServiceOptions options_;
  ThreadPool pool_;
  std::mutex mutex_;  // one model call at a time
};

}  // namespace eight::server
