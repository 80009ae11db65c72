#pragma once
// Image generation over an SDXL pipeline, in the two shapes front ends speak:
//   POST /v1/images/generations   OpenAI: {"prompt", "n", "size": "WxH", "response_format":
//                                 "b64_json"} plus the extensions "negative_prompt", "steps",
//                                 "cfg_scale", "sampler", "seed"; answers {"created", "data":
//                                 [{"b64_json", "revised_prompt"}]}
//   POST /sdapi/v1/txt2img        A1111: {"prompt", "negative_prompt", "steps", "cfg_scale",
//                                 "width", "height", "seed", "sampler_name", "batch_size"};
//                                 answers {"images": [base64 PNG], "parameters", "info"}
// One generation runs at a time; up to `queue` more wait their turn, and past that a request
// gets 503 with Retry-After. Images of a batch take seeds seed, seed + 1, ... (as A1111 does).
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/diffusion/image_pipeline.h"
#include "server/generation_queue.h"
#include "server/service.h"

namespace eight::server {

struct ImageServiceOptions {
  std::string model_id;
  int queue = 4;  // requests that may wait while one generates
  int64_t max_pixels = int64_t{2048} * 2048;
  int max_images = 8;  // n / batch_size per request
};

class ImageService final : public Service {
 public:
  ImageService(std::unique_ptr<diffusion::ImagePipeline> pipeline, ThreadPool& pool,
               ImageServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;

  ServiceResponse openai(const ServiceRequest& req);
  ServiceResponse a1111(const ServiceRequest& req);

 private:
  struct Job;
  struct Generated {
    std::string png;
    std::string sampler;
    int64_t steps = 0;
    double cfg_scale = 0;
    uint64_t seed = 0;
  };
  // Checks the job, then runs generate() when the queue gives it its turn.
  std::vector<Generated> run(const Job& job);
  // The job's images one after another.
  std::vector<Generated> generate(const Job& job);

  std::unique_ptr<diffusion::ImagePipeline> pipeline_;
  ThreadPool& pool_;
  ImageServiceOptions options_;
  GenerationQueue queue_;
};

}  // namespace eight::server
