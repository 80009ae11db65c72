#pragma once
// The image tagger's endpoint (`eight serve --tag-model MODEL`):
//   POST /v1/tags   JSON {"model", "image": data URL | base64 | [...], "threshold" (0.35),
//                   "character_threshold" (0.85)} → for one image the object `eight tag --json`
//                   prints ({"image": 0, "rating": {tag: p}, "general": [{"name", "score"}],
//                   "character": [...], "text"}) plus "model"; for a list of images
//                   {"object": "list", "model", "data": [those objects, "image" = the index]}.
// Broken input (bad JSON, thresholds outside [0, 1], undecodable images, over the pixel limit) is
// a 400 naming the field, before the model runs. Requests run one at a time on the service's own
// thread pool.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/tagger/tagger.h"
#include "server/service.h"

namespace eight::server {

struct TagServiceOptions {
  std::string model_id;                         // reported by /v1/models; default: the name
  int n_threads = 0;                            // 0: default_thread_count()
  int64_t max_image_pixels = int64_t{1} << 26;  // per image, checked from the header
  int max_inputs = 64;                          // images per request
};

class TagService final : public Service {
 public:
  TagService(std::shared_ptr<const tagger::Tagger> model, TagServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;

  ServiceResponse tags(const ServiceRequest& req);  // throws ApiError for client errors

 private:
  std::shared_ptr<const tagger::Tagger> model_;
  TagServiceOptions options_;
  ThreadPool pool_;
  std::mutex mutex_;  // one forward pass at a time
};

}  // namespace eight::server
