#include "server/embedding_service.h"

#include <cstring>

#include "core/error.h"
#include "server/api_error.h"
#include "server/embeddings_json.h"

namespace eight::server {

using nlohmann::json;

EmbeddingService::EmbeddingService(std::unique_ptr<TextEmbedder> model,
                                   EmbeddingServiceOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      pool_(options_.n_threads > 0 ? options_.n_threads : default_thread_count()) {}

std::vector<std::string> EmbeddingService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> EmbeddingService::routes() {
  auto h = [this](const ServiceRequest& r) { return embeddings(r); };
  return {{"POST", "/v1/embeddings", h}, {"POST", "/embeddings", h}};
}

namespace {

// One input as token ids: a string is tokenized (TextEmbedder::tokenize), an array of
// integers is taken as ids, checked against the vocabulary.
std::vector<int32_t> input_ids(const json& v, const std::string& field, const TextEmbedder& m) {
  if (v.is_string()) return m.tokenize(v.get<std::string>());
  if (!v.is_array() || v.empty())
    bad_request(field, "each input must be a string or a non-empty array of token ids");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<int64_t>() < 0 ||
        v[i].get<int64_t>() >= m.tokenizer().size())
      bad_request(cat(field, "[", i, "]"),
                  cat("token ids must be integers in [0, ", m.tokenizer().size(), ")"));
    ids.push_back(v[i].get<int32_t>());
  }
  return ids;
}

}  // namespace

ServiceResponse EmbeddingService::embeddings(const ServiceRequest& req) {
  const json body = parse_json_object(req);
  const std::string model = string_field(body, "model");
  if (!model.empty() && model != options_.model_id)
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this endpoint serves '",
                       options_.model_id, "'"),
                   "model", "model_not_found");
  const std::string format = encoding_format(body);
  if (!body.contains("input")) bad_request("input", "'input' is required: a string or a list");
  const json& input = body.at("input");
  std::vector<std::vector<int32_t>> ids;
  if (input.is_string()) {
    ids.push_back(input_ids(input, "input", *model_));
  } else if (input.is_array() && !input.empty() && input[0].is_number_integer()) {
    ids.push_back(input_ids(input, "input", *model_));  // one input given as token ids
  } else if (input.is_array() && !input.empty()) {
    if (static_cast<int>(input.size()) > options_.max_inputs)
      bad_request("input",
                  cat("at most ", options_.max_inputs, " inputs per request, got ", input.size()));
    for (size_t i = 0; i < input.size(); ++i)
      ids.push_back(input_ids(input[i], cat("input[", i, "]"), *model_));
  } else {
    bad_request("input", "'input' must be a string, a list of strings or token-id arrays");
  }
  if (body.contains("dimensions") && !body.at("dimensions").is_null() &&
      !(body.at("dimensions").is_number_integer() &&
        body.at("dimensions").get<int64_t>() == model_->dim()))
    bad_request("dimensions", cat("this model's embeddings have ", model_->dim(),
                                  " dimensions and cannot be shortened"));
  int64_t tokens = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) bad_request(cat("input[", i, "]"), "the input has no tokens");
    if (static_cast<int64_t>(ids[i].size()) > model_->max_tokens())
      bad_request(ids.size() == 1 ? "input" : cat("input[", i, "]"),
                  cat("the input has ", ids[i].size(), " tokens; this model embeds at most ",
                      model_->max_tokens()));
    tokens += static_cast<int64_t>(ids[i].size());
  }
  const int64_t d = model_->dim();
  Tensor emb = Tensor::empty({static_cast<int64_t>(ids.size()), d}, DType::F32);
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::vector<float> e = model_->embed_ids(ids[i], pool_);
      std::memcpy(emb.data<float>() + static_cast<int64_t>(i) * d, e.data(),
                  static_cast<size_t>(d) * sizeof(float));
    }
  }
  return json_ok(embeddings_response(emb, options_.model_id, format,
                                     {{"prompt_tokens", tokens}, {"total_tokens", tokens}}));
}

}  // namespace eight::server
