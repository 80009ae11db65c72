#include "server/clip_service.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "formats/image.h"
#include "server/api_error.h"
#include "server/embeddings_json.h"
#include "server/image_data.h"
#include "server/openai_request.h"

namespace eight::server {
namespace {

using nlohmann::json;

// One image from the request: its bytes and the field it came from (for error messages).
struct ImageInput {
  std::vector<uint8_t> bytes;
  std::string param;
};

bool is_multipart(const ServiceRequest& req) {
  return req.content_type.rfind("multipart/form-data", 0) == 0;
}

// The text of a multipart field, or "" when absent.
std::string form_text(const ServiceRequest& req, const std::string& name) {
  const auto it = req.form.find(name);
  return it == req.form.end() ? std::string() : it->second.content;
}

}  // namespace

ClipService::ClipService(std::shared_ptr<const clip::Model> model, ClipServiceOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      pool_(options_.n_threads > 0 ? options_.n_threads : default_thread_count()) {
  if (options_.model_id.empty()) options_.model_id = model_->name();
}

std::vector<std::string> ClipService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> ClipService::routes() {
  auto text = [this](const ServiceRequest& r) { return text_embeddings(r); };
  auto images = [this](const ServiceRequest& r) { return image_embeddings(r); };
  auto labels = [this](const ServiceRequest& r) { return classify(r); };
  return {{"POST", "/v1/embeddings", text},
          {"POST", "/embeddings", text},
          {"POST", "/v1/images/embeddings", images},
          {"POST", "/v1/classify", labels}};
}

namespace {

void check_model(const std::string& requested, const std::string& served,
                 const clip::Model& model) {
  if (!requested.empty() && requested != served && requested != model.name())
    throw ApiError(
        404, "invalid_request_error",
        cat("the model '", requested, "' does not exist; this endpoint serves '", served, "'"),
        "model", "model_not_found");
}

// The images of a request: multipart `file` parts, or the JSON "image" field (a string or a
// list of strings).
std::vector<ImageInput> request_images(const ServiceRequest& req, const json* body,
                                       int max_inputs) {
  std::vector<ImageInput> out;
  if (!body) {
    const auto [lo, hi] = req.form.equal_range("file");
    for (auto it = lo; it != hi; ++it)
      out.push_back({std::vector<uint8_t>(it->second.content.begin(), it->second.content.end()),
                     cat("file[", out.size(), "]")});
    if (out.empty()) bad_request("file", "the multipart request has no 'file' part");
  } else {
    if (!body->contains("image") || body->at("image").is_null())
      bad_request("image", "'image' is required: base64 image data, a data URL, or a list of them");
    const json& img = body->at("image");
    if (img.is_string()) {
      out.push_back({decode_image_string(img.get<std::string>(), "image"), "image"});
    } else if (img.is_array() && !img.empty()) {
      for (size_t i = 0; i < img.size(); ++i) {
        const std::string param = cat("image[", i, "]");
        if (!img[i].is_string()) bad_request(param, "each image must be a base64 string");
        out.push_back({decode_image_string(img[i].get<std::string>(), param), param});
      }
    } else {
      bad_request("image", "'image' must be a base64 string or a non-empty list of them");
    }
  }
  if (static_cast<int>(out.size()) > max_inputs)
    bad_request(body ? "image" : "file",
                cat("at most ", max_inputs, " images per request, got ", out.size()));
  for (const ImageInput& in : out)
    if (in.bytes.empty()) bad_request(in.param, "the image is empty", "invalid_image");
  return out;
}

// The request's images decoded and preprocessed for the model, before it is touched: a bad image
// fails the request without costing anyone else a forward pass.
std::vector<Tensor> request_pixels(const ServiceRequest& req, const json* body,
                                   const clip::Model& model, const ClipServiceOptions& o) {
  const image::PreprocessConfig& pc = model.config().preprocess;
  std::vector<Tensor> pixels;
  for (const ImageInput& in : request_images(req, body, o.max_inputs)) {
    try {
      pixels.push_back(
          image::preprocess(image::decode(in.bytes, in.param, o.max_image_pixels), pc));
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {
      bad_request(in.param, e.what(), "invalid_image");
    }
  }
  return pixels;
}

}  // namespace

ServiceResponse ClipService::text_embeddings(const ServiceRequest& req) {
  const json body = parse_json_object(req);
  check_model(string_field(body, "model"), options_.model_id, *model_);
  const std::string format = encoding_format(body);
  if (!model_->config().has_text)
    bad_request("input", cat(options_.model_id, " has no text tower (a vision-only file)"));
  if (!body.contains("input")) bad_request("input", "'input' is required: a string or a list");
  const json& input = body.at("input");
  std::vector<std::string> texts;
  if (input.is_string()) {
    texts.push_back(input.get<std::string>());
  } else if (input.is_array() && !input.empty()) {
    for (size_t i = 0; i < input.size(); ++i) {
      if (!input[i].is_string())
        bad_request(cat("input[", i, "]"),
                    "CLIP embeds text strings; token-id arrays are not accepted");
      texts.push_back(input[i].get<std::string>());
    }
  } else {
    bad_request("input", "'input' must be a string or a non-empty list of strings");
  }
  if (static_cast<int>(texts.size()) > options_.max_inputs)
    bad_request("input",
                cat("at most ", options_.max_inputs, " inputs per request, got ", texts.size()));
  if (body.contains("dimensions") && !body.at("dimensions").is_null() &&
      !(body.at("dimensions").is_number_integer() &&
        body.at("dimensions").get<int64_t>() == model_->config().projection_dim))
    bad_request("dimensions", cat("this model's embeddings have ", model_->config().projection_dim,
                                  " dimensions and cannot be shortened"));
  int64_t tokens = 0;
  Tensor emb;
  {
    std::lock_guard lock(mutex_);
    for (const auto& t : texts) tokens += static_cast<int64_t>(model_->tokenize(t).size());
    emb = model_->embed_texts(texts, pool_);
  }
  return json_ok(embeddings_response(emb, options_.model_id, format,
                                     {{"prompt_tokens", tokens}, {"total_tokens", tokens}}));
}

ServiceResponse ClipService::image_embeddings(const ServiceRequest& req) {
  json body;
  const bool multipart = is_multipart(req);
  if (!multipart) body = parse_json_object(req);
  const std::string model = multipart ? form_text(req, "model") : string_field(body, "model");
  check_model(model, options_.model_id, *model_);
  std::string format = "float";
  if (multipart) {
    format = form_text(req, "encoding_format");
    if (format.empty()) format = "float";
    if (format != "float" && format != "base64")
      bad_request("encoding_format", "encoding_format must be \"float\" or \"base64\"");
  } else {
    format = encoding_format(body);
  }
  const std::vector<Tensor> pixels =
      request_pixels(req, multipart ? nullptr : &body, *model_, options_);
  const Dims one = pixels[0].shape();
  Tensor stacked =
      Tensor::empty({static_cast<int64_t>(pixels.size()), one[0], one[1], one[2]}, DType::F32);
  for (size_t i = 0; i < pixels.size(); ++i)
    std::memcpy(static_cast<char*>(stacked.raw()) + i * pixels[i].nbytes(), pixels[i].raw(),
                pixels[i].nbytes());
  Tensor emb;
  {
    std::lock_guard lock(mutex_);
    emb = model_->embed_images(stacked, pool_);
  }
  const int64_t n = static_cast<int64_t>(pixels.size());
  return json_ok(embeddings_response(emb.contiguous(), options_.model_id, format,
                                     {{"prompt_tokens", 0}, {"total_tokens", 0}, {"images", n}}));
}

ServiceResponse ClipService::classify(const ServiceRequest& req) {
  json body;
  const bool multipart = is_multipart(req);
  if (!multipart) body = parse_json_object(req);
  check_model(multipart ? form_text(req, "model") : string_field(body, "model"), options_.model_id,
              *model_);
  if (!model_->config().has_text)
    bad_request("labels", cat(options_.model_id, " has no text tower: classification needs one"));
  // Labels: a JSON list of strings, or one comma-separated string (the multipart form).
  std::vector<std::string> labels;
  json lj = multipart ? json(form_text(req, "labels"))
                      : (body.contains("labels") ? body.at("labels") : json());
  if (lj.is_string()) {
    const std::string s = lj.get<std::string>();
    size_t start = 0;
    while (start <= s.size() && !s.empty()) {
      const size_t comma = std::min(s.find(',', start), s.size());
      std::string item = s.substr(start, comma - start);
      const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
      if (b != std::string::npos) labels.push_back(item.substr(b, e - b + 1));
      start = comma + 1;
    }
  } else if (lj.is_array()) {
    for (size_t i = 0; i < lj.size(); ++i) {
      if (!lj[i].is_string() || lj[i].get<std::string>().empty())
        bad_request(cat("labels[", i, "]"), "each label must be a non-empty string");
      labels.push_back(lj[i].get<std::string>());
    }
  }
  if (labels.empty())
    bad_request("labels", "'labels' is required: a list of strings or \"a cat,a dog\"");
  if (static_cast<int>(labels.size()) > options_.max_inputs)
    bad_request("labels", cat("at most ", options_.max_inputs, " labels, got ", labels.size()));
  std::string tmpl = "a photo of {}";
  if (multipart ? req.form.count("template") > 0
                : body.contains("template") && !body.at("template").is_null())
    tmpl = multipart ? form_text(req, "template") : string_field(body, "template");
  std::vector<std::string> texts;
  for (const auto& l : labels) {
    const size_t at = tmpl.find("{}");
    texts.push_back(tmpl.empty()              ? l
                    : at == std::string::npos ? tmpl + " " + l
                                              : tmpl.substr(0, at) + l + tmpl.substr(at + 2));
  }

  const std::vector<Tensor> pixels =
      request_pixels(req, multipart ? nullptr : &body, *model_, options_);
  json data = json::array();
  std::lock_guard lock(mutex_);
  const Tensor label_emb = model_->embed_texts(texts, pool_);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const Tensor emb = model_->embed_images(pixels[i].unsqueeze(0), pool_);
    const std::vector<float> p = clip::zero_shot_probabilities(
        *model_, emb.reshape({model_->config().projection_dim}), label_emb);
    std::vector<size_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    json ls = json::array();
    for (size_t j : order) ls.push_back({{"label", labels[j]}, {"probability", p[j]}});
    data.push_back({{"object", "classification"}, {"index", i}, {"labels", ls}});
  }
  return json_ok({{"object", "list"}, {"model", options_.model_id}, {"data", data}});
}

}  // namespace eight::server
