#pragma once
// Extra model services the HTTP server hosts next to (or instead of) a text model: Whisper's
// /v1/audio/* endpoints, CLIP's embeddings and classification. A service names its models and
// its routes; the server does authentication, CORS, logging, metrics and error shapes for it.
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace eight::server {

// One part of a multipart/form-data body.
struct FormPart {
  std::string name;
  std::string filename;  // empty for plain fields
  std::string content_type;
  std::string content;
};

struct ServiceRequest {
  std::string method;
  std::string path;
  std::string content_type;                   // the Content-Type header
  std::string body;                           // raw body (empty for multipart requests: see `form`)
  std::multimap<std::string, FormPart> form;  // multipart fields by name (repeatable)
  std::map<std::string, std::string> query;   // URL query parameters
};

struct ServiceResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

struct Route {
  std::string method;  // "GET" or "POST"
  std::string path;    // exact path, e.g. "/v1/audio/transcriptions"
  // Throws ApiError for client errors (answered in OpenAI's shape) or Error (answered as 500).
  std::function<ServiceResponse(const ServiceRequest&)> handler;
};

class Service {
 public:
  virtual ~Service() = default;
  // Model ids this service answers to (listed by /v1/models).
  virtual std::vector<std::string> model_ids() const = 0;
  virtual std::vector<Route> routes() = 0;
  // Chat completions this service answers itself (BLIP captions and answers): those naming one of
  // its models, or naming none when no text model is loaded. `body` is the raw JSON request.
  virtual bool answers_chat(const std::string& /*model*/, bool /*text_model_loaded*/) const {
    return false;
  }
  virtual ServiceResponse chat(const std::string& /*body*/) { return {}; }
};

}  // namespace eight::server
