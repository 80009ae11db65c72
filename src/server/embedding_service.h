#pragma once
// /v1/embeddings (and /embeddings) for a GGUF text embedding model: BERT (bge, all-MiniLM, ...)
// or a decoder LLM with last-token pooling (runtime/llm/embedder.h). OpenAI's request shape:
// {"model", "input": string | [string] | [int] | [[int]], "encoding_format": "float" | "base64",
// "dimensions" (only the model's own)}; token-id inputs are embedded as given. Vectors are
// L2-normalised. Requests run one at a time on the service's thread pool.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/llm/embedder.h"
#include "server/service.h"

namespace eight::server {

struct EmbeddingServiceOptions {
  std::string model_id;  // reported by /v1/models and in responses
  int n_threads = 0;     // 0: default_thread_count()
  int max_inputs = 256;  // per request
};

class EmbeddingService final : public Service {
 public:
  EmbeddingService(std::unique_ptr<TextEmbedder> model, EmbeddingServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;
  ServiceResponse embeddings(const ServiceRequest& req);  // throws ApiError for client errors

 private:
  std::unique_ptr<TextEmbedder> model_;
  EmbeddingServiceOptions options_;
  ThreadPool pool_;
  std::mutex mutex_;
};

}  // namespace eight::server
