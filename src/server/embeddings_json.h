#pragma once
// OpenAI's embeddings request/response pieces shared by the embedding services (CLIP, GGUF text
// embedders): {"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
// "model", "usage"} with float or base64 (little-endian float32) vectors.
#include <nlohmann/json.hpp>
#include <string>

#include "core/tensor.h"
#include "server/service.h"

namespace eight::server {

// The request body as a JSON object (400 otherwise).
nlohmann::json parse_json_object(const ServiceRequest& req);
// body[name] as a string; "" when absent or null; 400 naming it when not a string.
std::string string_field(const nlohmann::json& body, const char* name);
// "float" (default) or "base64"; 400 for anything else.
std::string encoding_format(const nlohmann::json& body);
// emb: F32 [n, d], one row per input.
nlohmann::json embeddings_response(const Tensor& emb, const std::string& model,
                                   const std::string& format, const nlohmann::json& usage);
ServiceResponse json_ok(const nlohmann::json& body);

}  // namespace eight::server
