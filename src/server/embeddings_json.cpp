#include "server/embeddings_json.h"

#include "server/api_error.h"
#include "server/base64.h"
#include "server/openai_request.h"

namespace eight::server {

using nlohmann::json;

json parse_json_object(const ServiceRequest& req) {
  json body = parse_body(req.body);
  if (!body.is_object()) bad_request("", "the request body must be a JSON object");
  return body;
}

std::string string_field(const json& body, const char* name) {
  if (!body.contains(name) || body.at(name).is_null()) return {};
  if (!body.at(name).is_string()) bad_request(name, cat("'", name, "' must be a string"));
  return body.at(name).get<std::string>();
}

std::string encoding_format(const json& body) {
  const std::string f = string_field(body, "encoding_format");
  if (!f.empty() && f != "float" && f != "base64")
    bad_request("encoding_format",
                cat("encoding_format must be \"float\" or \"base64\", got \"", f, "\""));
  return f.empty() ? "float" : f;
}

namespace {

json embedding_value(const Tensor& emb, int64_t row, const std::string& format) {
  const int64_t d = emb.size(1);
  const float* r = emb.data<const float>() + row * d;
  // base64 of the little-endian float32 bytes, as OpenAI returns them.
  if (format == "base64") return base64_encode(r, static_cast<size_t>(d) * sizeof(float));
  return std::vector<float>(r, r + d);
}

}  // namespace

json embeddings_response(const Tensor& emb, const std::string& model, const std::string& format,
                         const json& usage) {
  json data = json::array();
  for (int64_t i = 0; i < emb.size(0); ++i)
    data.push_back(
        {{"object", "embedding"}, {"index", i}, {"embedding", embedding_value(emb, i, format)}});
  return {{"object", "list"}, {"data", data}, {"model", model}, {"usage", usage}};
}

ServiceResponse json_ok(const json& body) {
  return {.status = 200,
          .body = body.dump(-1, ' ', false, json::error_handler_t::replace),
          .content_type = "application/json"};
}

}  // namespace eight::server
