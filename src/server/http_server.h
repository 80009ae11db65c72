#pragma once
// The OpenAI-compatible HTTP server: /v1/models, /v1/chat/completions, /v1/completions, /health,
// /metrics, plus the routes of any extra Service (speech, vision), the web UI at "/" and its status
// endpoint /v1/eight/status. Binds to loopback unless told otherwise; logs one line per request;
// answers every error in OpenAI's JSON shape.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <vector>

#include "server/backend.h"
#include "server/service.h"

namespace eight::server {

// One loaded model as /v1/eight/status lists it (the web UI shows tabs and the status line from
// it).
struct ModelStatus {
  std::string id;
  std::string task;     // "chat", "caption", "speech", "images", "clip", "embeddings", "tags"
  bool vision = false;  // chat requests may carry image_url parts
  // The LLM: the planner's numbers for it; a service's model: {"loaded_bytes"}, the tracked host
  // memory its loading took (null when neither is known).
  nlohmann::json memory;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: pick a free port (see HttpServer::port())
  std::string api_key;      // empty: no authentication
  std::string cors_origin;  // empty: no CORS headers
  size_t max_body_bytes = 8u << 20;
  int read_timeout_s = 30;   // a client that sends nothing for this long is dropped
  int handler_threads = 32;  // concurrent connections served (waiting ones queue in the kernel)
  bool log_requests = true;
  std::vector<ModelStatus> models;  // for /v1/eight/status
  // A placeholder that holds the port while the models load: every request, /health included,
  // gets 503 with Retry-After, so a load balancer sends nothing here until the real server is up.
  bool loading = false;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, TextBackend& backend);
  // text may be null (a server for a Whisper or CLIP model alone); services add their routes.
  HttpServer(ServerOptions options, TextBackend* text, std::vector<Service*> services);
  ~HttpServer();
  // Binds the socket (throws Error when the address is taken or invalid).
  void bind();
  int port() const { return port_; }
  // Serves until stop() is called from another thread (or a signal handler thread).
  void serve();
  void stop();
  // SIGTERM: stop accepting (the listener closes, so a balancer's next connection fails over),
  // let streams in flight run for grace_seconds, then end each with an SSE error event and close.
  // Async-signal-safe: it sets atomics, reads CLOCK_MONOTONIC and closes the listening socket.
  void drain(int grace_seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace eight::server
