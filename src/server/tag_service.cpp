#include "server/tag_service.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/image.h"
#include "runtime/vision/tags.h"
#include "server/api_error.h"
#include "server/embeddings_json.h"
#include "server/image_data.h"

namespace eight::server {
namespace {

using nlohmann::json;

double threshold_field(const json& body, const char* name, double fallback) {
  if (!body.contains(name) || body.at(name).is_null()) return fallback;
  const json& v = body.at(name);
  if (!v.is_number()) bad_request(name, cat("'", name, "' must be a number in [0, 1]"));
  const double x = v.get<double>();
  if (!(x >= 0 && x <= 1)) bad_request(name, cat("'", name, "' must lie in [0, 1], got ", x));
  return x;
}

}  // namespace

TagService::TagService(std::shared_ptr<const tagger::Tagger> model, TagServiceOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      pool_(options_.n_threads > 0 ? options_.n_threads : default_thread_count()) {
  if (options_.model_id.empty()) options_.model_id = model_->name();
}

std::vector<std::string> TagService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> TagService::routes() {
  return {{"POST", "/v1/tags", [this](const ServiceRequest& r) { return tags(r); }}};
}

ServiceResponse TagService::tags(const ServiceRequest& req) {
  const json body = parse_json_object(req);
  const std::string model = string_field(body, "model");
  if (!model.empty() && model != options_.model_id && model != model_->name())
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this endpoint serves '",
                       options_.model_id, "'"),
                   "model", "model_not_found");
  const vision::TagThresholds th{.general = threshold_field(body, "threshold", 0.35),
                                 .character = threshold_field(body, "character_threshold", 0.85)};
  if (!body.contains("image") || body.at("image").is_null())
    bad_request("image", "'image' is required: a data URL or base64 image, or a list of them");
  const json& img = body.at("image");
  const bool list = img.is_array();
  if (!img.is_string() && !(list && !img.empty()))
    bad_request("image", "'image' must be a base64 string or a non-empty list of them");
  if (list && static_cast<int>(img.size()) > options_.max_inputs)
    bad_request("image",
                cat("at most ", options_.max_inputs, " images per request, got ", img.size()));
  // Every image decoded before the model runs: a bad one fails the request at no model cost.
  std::vector<image::Image> images;
  for (size_t i = 0; i < (list ? img.size() : 1); ++i) {
    const std::string param = list ? cat("image[", i, "]") : "image";
    const json& one = list ? img[i] : img;
    if (!one.is_string()) bad_request(param, "each image must be a base64 string");
    const std::vector<uint8_t> bytes = decode_image_string(one.get<std::string>(), param);
    try {
      images.push_back(image::decode(bytes, param, options_.max_image_pixels));
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {
      bad_request(param, e.what(), "invalid_image");
    }
  }
  json data = json::array();
  {
    std::lock_guard lock(mutex_);
    vision::tag_images(
        *model_, images.size(), 4, pool_, [&](size_t i) { return images[i]; },
        [&](size_t i, const float* probs) {
          json r = vision::tag_result_json("", vision::select_tags(model_->tags(), probs, th));
          r["image"] = i;
          data.push_back(std::move(r));
        },
        [&](size_t i, const std::string& msg) {
          bad_request(list ? cat("image[", i, "]") : "image", msg, "invalid_image");
        });
  }
  if (!list) {
    json r = data.at(0);
    r["model"] = options_.model_id;
    return json_ok(r);
  }
  return json_ok({{"object", "list"}, {"model", options_.model_id}, {"data", data}});
}

}  // namespace eight::server
