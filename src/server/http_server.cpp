#include "server/http_server.h"

#include <httplib.h>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <random>

#include "core/log.h"
#include "core/memory.h"
#include "server/api_error.h"
#include "server/metrics.h"
#include "server/openai_response.h"
#include "server/tools.h"
#include "server/web_ui.h"
#include "text/grammar.h"

namespace eight::server {

using nlohmann::json;

struct HttpServer::Impl {
  ServerOptions opt;
  TextBackend* text;  // null: no text model (chat/completions answer 404)
  std::vector<Service*> services;
  httplib::Server http;
  Metrics metrics;
  // Drain state, written by a signal handler: hence lock-free atomics and CLOCK_MONOTONIC
  // nanoseconds (clock_gettime is async-signal-safe; steady_clock::now() is not promised to be).
  std::atomic<bool> draining{false};
  std::atomic<int64_t> drain_deadline_ns{0};
  static_assert(std::atomic<int64_t>::is_always_lock_free);

  static int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
  bool drain_expired() const {
    return draining.load() && monotonic_ns() >= drain_deadline_ns.load();
  }

  Impl(ServerOptions o, TextBackend* t, std::vector<Service*> s)
      : opt(std::move(o)), text(t), services(std::move(s)) {}

  TextBackend& backend() {
    if (!text)
      throw ApiError(404, "invalid_request_error",
                     "this server has no text model loaded (start it with -m LLM)", "model",
                     "model_not_found");
    return *text;
  }

  std::vector<std::string> all_model_ids() const {
    std::vector<std::string> ids;
    if (text) ids.push_back(text->model_id());
    for (const Service* s : services)
      for (auto& id : s->model_ids()) ids.push_back(id);
    return ids;
  }

  void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.status == 503) res.set_header("Retry-After", "1");
    res.set_content(e.body(), "application/json");
  }

  void check_model(const std::string& model) {
    if (!model.empty() && model != backend().model_id())
      throw ApiError(404, "invalid_request_error",
                     cat("the model '", model, "' does not exist; this server serves '",
                         backend().model_id(), "'"),
                     "model", "model_not_found");
  }

  // Runs a request handler, turning ApiError / Error into OpenAI-shaped responses.
  template <class F>
  void guarded(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, ApiError(500, "server_error", e.what()));
    }
  }

  void handle_chat(const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      ChatRequest r = parse_chat_request(parse_body(req.body));
      for (Service* s : services)
        if (s->answers_chat(r.model, text != nullptr)) {
          const ServiceResponse out = s->chat(req.body);
          res.status = out.status;
          res.set_content(out.body, out.content_type);
          return;
        }
      check_model(r.model);
      TextBackend& b = backend();
      const nlohmann::ordered_json tools =
          tools_for_template(r.tools, b.template_uses_tools(), req.body, r.messages);
      const std::string prompt = b.render_chat(r.messages, tools);
      if (r.tools.forced()) {
        if (r.gen.grammar)
          bad_request("response_format",
                      "'response_format' cannot be combined with 'tool_choice' required or a "
                      "named function (the call's format is the constraint)");
        r.gen.grammar = text::Grammar::parse(forced_call_gbnf(r.tools, b.tool_format()));
      }
      run_generation(res, prompt, r.gen, true, r.tools.active());
    });
  }

  void handle_completion(const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      CompletionRequest r = parse_completion_request(parse_body(req.body));
      check_model(r.model);
      run_generation(res, r.prompt, r.gen, false);
    });
  }

  // `tools`: chat output is parsed for tool calls in the model's format.
  void run_generation(httplib::Response& res, const std::string& prompt,
                      const GenerationParams& gen, bool chat, bool tools = false) {
    ResponseShape shape{.chat = chat,
                        .id = new_id(chat ? "chatcmpl-" : "cmpl-"),
                        .model = backend().model_id(),
                        .created = static_cast<int64_t>(std::time(nullptr)),
                        .echo_prompt = gen.echo ? prompt : std::string(),
                        .top_logprobs = gen.top_logprobs,
                        .include_usage = gen.include_usage,
                        .tools = tools,
                        .tool_format = backend().tool_format()};
    if (!gen.stream) {
      const auto t0 = std::chrono::steady_clock::now();
      GenerationResult out =
          backend().generate(prompt, gen, [](const TokenEvent&) { return true; });
      metrics.record_generation(out, seconds_since(t0));
      send_json(res, 200, full_response(shape, out));
      return;
    }
    // Stream: the whole generation runs inside the content provider, writing one SSE event per
    // token; a failed write means the client left, which cancels the request.
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, prompt, gen, shape](size_t, httplib::DataSink& sink) {
          auto write = [&sink](const std::string& event) {
            return sink.is_writable() && sink.write(event.data(), event.size());
          };
          bool open = write(sse(first_chunk(shape)));
          const auto t0 = std::chrono::steady_clock::now();
          // With tools, the text goes through the call parser: deltas carry only what is
          // certain to be content or a call (no per-token logprobs then).
          ToolStream calls(shape.tool_format);
          bool cut = false;  // the drain's grace period ran out mid-stream
          auto send_deltas = [&](const std::vector<json>& deltas) {
            for (const json& d : deltas) open = open && write(sse(delta_chunk(shape, d)));
          };
          try {
            GenerationResult out = text->generate(prompt, gen, [&](const TokenEvent& t) {
              if (drain_expired()) cut = true;
              if (cut) return false;
              if (shape.tools)
                send_deltas(calls.feed(t.text));
              else
                open = open && write(sse(token_chunk(shape, t)));
              return open;
            });
            metrics.record_generation(out, seconds_since(t0));
            if (shape.tools) send_deltas(calls.finish());
            if (cut) {
              // Never end a stream silently: a client (or a proxy's client) must be able to
              // tell a cut answer from a finished one.
              write("data: " +
                    ApiError(503, "server_error",
                             cat("the server is shutting down; this stream was cut after ",
                                 out.completion_tokens, " tokens"),
                             "", "server_shutting_down")
                        .body() +
                    "\n\n");
            } else if (open) {
              write(sse(final_chunk(shape, out, calls.has_calls())));
              if (shape.include_usage) write(sse(usage_chunk(shape, out)));
              write("data: [DONE]\n\n");
            } else {
              metrics.record_disconnect();
            }
          } catch (const ApiError& e) {
            // Headers are gone already: report the error as an event, as OpenAI does mid-stream.
            write("data: " + e.body() + "\n\n");
          } catch (const std::exception& e) {
            write("data: " + ApiError(500, "server_error", e.what()).body() + "\n\n");
          }
          sink.done();
          return true;
        });
  }

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  static std::string new_id(const char* prefix) {
    static std::mutex m;
    static std::mt19937_64 gen{std::random_device{}()};
    std::lock_guard lock(m);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
    return std::string(prefix) + buf;
  }

  void install_service_route(Route route) {
    auto handler = [this, fn = std::move(route.handler)](const httplib::Request& req,
                                                         httplib::Response& res) {
      guarded(res, [&] {
        ServiceRequest sr{.method = req.method,
                          .path = req.path,
                          .content_type = req.get_header_value("Content-Type"),
                          .body = req.is_multipart_form_data() ? std::string() : req.body,
                          .form = {},
                          .query = {}};
        for (const auto& [name, file] : req.files)
          sr.form.emplace(name,
                          FormPart{file.name, file.filename, file.content_type, file.content});
        for (const auto& [k, v] : req.params) sr.query.emplace(k, v);
        ServiceResponse out = fn(sr);
        res.status = out.status;
        res.set_content(out.body, out.content_type);
      });
    };
    if (route.method == "GET")
      http.Get(route.path, handler);
    else
      http.Post(route.path, handler);
  }

  bool authorized(const httplib::Request& req) const {
    if (opt.api_key.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    return auth == "Bearer " + opt.api_key;
  }

  // A web UI file, revalidated on every load (no-cache + ETag): a new binary's page is never
  // mixed with an old one's script, and an unchanged file costs a 304.
  void send_web(const httplib::Request& req, httplib::Response& res) {
    const WebFile* f = find_web_file(req.path);
    if (!f) {
      send_error(res, ApiError(404, "invalid_request_error", cat("no UI file ", req.path), "",
                               "unknown_url"));
      return;
    }
    res.set_header("ETag", f->etag);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Content-Type-Options", "nosniff");
    if (req.get_header_value("If-None-Match") == f->etag) {
      res.status = 304;
      return;
    }
    res.set_content(f->body.data(), f->body.size(), f->content_type);
  }

  // /v1/eight/status: what is loaded, for what, and the memory it was planned and uses.
  json status() const {
    json models = json::array();
    for (const ModelStatus& m : opt.models)
      models.push_back(
          {{"id", m.id}, {"task", m.task}, {"vision", m.vision}, {"memory", m.memory}});
    const MemoryStats mem = memory_tracker().stats();
    json body = {{"object", "eight.status"},
                 {"version", eight_version()},
                 {"models", models},
                 {"auth", !opt.api_key.empty()},
                 {"memory",
                  {{"host_current_bytes", mem.current},
                   {"host_peak_bytes", mem.peak},
                   {"heap_bytes", mem.heap_current},
                   {"mapped_bytes", mem.mapped_current}}}};
    if (text) {
      const BackendStats st = text->stats();
      body["text"] = {{"slots", st.slots},
                      {"active_slots", st.active_slots},
                      {"queue_depth", st.queue_depth},
                      {"kv_used_cells", st.kv_used_cells},
                      {"kv_total_cells", st.kv_total_cells}};
    }
    return body;
  }

  void install_routes() {
    http.set_payload_max_length(opt.max_body_bytes);
    http.set_read_timeout(opt.read_timeout_s, 0);
    http.set_write_timeout(opt.read_timeout_s, 0);
    // The placeholder closes each connection after its answer: an idle keep-alive connection
    // would hold its stop() for httplib's keep-alive timeout (5 s) with the port closed.
    if (opt.loading) http.set_keep_alive_max_count(1);
    const int threads = opt.handler_threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      // Loading or draining: nothing new is started here. /health says which, for balancers.
      if (opt.loading || draining.load()) {
        const char* state = opt.loading ? "loading" : "draining";
        if (req.path == "/health") {
          send_json(res, 503, {{"status", state}});
          res.set_header("Retry-After", "1");
        } else {
          send_error(res, ApiError(503, "server_error",
                                   opt.loading ? "the models are still loading; retry shortly"
                                               : "the server is shutting down",
                                   "", opt.loading ? "model_loading" : "server_shutting_down"));
        }
        if (draining.load()) res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (!opt.cors_origin.empty()) {
        res.set_header("Access-Control-Allow-Origin", opt.cors_origin);
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        if (req.method == "OPTIONS") {
          res.status = 204;
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      // The page and its files carry no secrets: the browser must load them to ask for the key.
      const bool open = req.path == "/health" || (req.method == "GET" && find_web_file(req.path));
      if (!open && !authorized(req)) {
        send_error(res, ApiError(401, "authentication_error",
                                 "missing or wrong API key: send 'Authorization: Bearer KEY'", "",
                                 "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const auto ids = all_model_ids();
      send_json(res, 200,
                {{"status", "ok"}, {"model", ids.empty() ? "" : ids.front()}, {"models", ids}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.prometheus(text ? text->stats() : BackendStats{}),
                      "text/plain; version=0.0.4");
    });
    http.Get("/", [this](const httplib::Request& q, httplib::Response& r) { send_web(q, r); });
    http.Get("/ui/.*", [this](const httplib::Request& q, httplib::Response& r) { send_web(q, r); });
    http.Get("/v1/eight/status", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, status());
    });
    auto models = [this](const httplib::Request&, httplib::Response& res) {
      json body = models_response(text ? text->model_id() : std::string(),
                                  text ? text->context_length() : 0);
      if (!text) body["data"] = json::array();
      for (const Service* s : services)
        for (const auto& id : s->model_ids())
          body["data"].push_back({{"id", id},
                                  {"object", "model"},
                                  {"created", static_cast<int64_t>(std::time(nullptr))},
                                  {"owned_by", "eight"}});
      send_json(res, 200, body);
    };
    http.Get("/v1/models", models);
    http.Get("/models", models);
    auto chat = [this](const httplib::Request& q, httplib::Response& r) { handle_chat(q, r); };
    auto completion = [this](const httplib::Request& q, httplib::Response& r) {
      handle_completion(q, r);
    };
    http.Post("/v1/chat/completions", chat);
    http.Post("/chat/completions", chat);
    http.Post("/v1/completions", completion);
    http.Post("/completions", completion);
    for (Service* s : services)
      for (Route& r : s->routes()) install_service_route(std::move(r));

    // Anything httplib answered on its own (unknown path, body too large, bad request line) gets
    // an OpenAI-shaped body.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404)
        send_error(
            res, ApiError(404, "invalid_request_error",
                          cat("unknown endpoint ", req.method, " ", req.path), "", "unknown_url"));
      else if (res.status == 413)
        send_error(res, ApiError(413, "invalid_request_error",
                                 cat("the request body is larger than the limit of ",
                                     opt.max_body_bytes, " bytes"),
                                 "", "request_too_large"));
      else if (res.status == 405)
        send_error(res, ApiError(405, "invalid_request_error",
                                 cat("method ", req.method, " is not allowed on ", req.path)));
      else
        send_error(res, ApiError(res.status, "invalid_request_error",
                                 cat("request rejected with status ", res.status)));
    });
    http.set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          send_error(res, ApiError(500, "server_error", what));
        });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      metrics.record_request(req.path, res.status);
      if (!opt.log_requests) return;
      // The response's size: its body, or "streamed" for server-sent events, whose chunks are
      // written after this logger runs.
      const std::string out = res.is_chunked_content_provider_
                                  ? std::string("streamed")
                                  : std::to_string(res.body.size()) + " bytes";
      std::fprintf(stderr, "%s %s %d %s (request %zu bytes)\n", req.method.c_str(),
                   req.path.c_str(), res.status, out.c_str(), req.body.size());
    });
  }
};

HttpServer::HttpServer(ServerOptions options, TextBackend& backend)
    : HttpServer(std::move(options), &backend, {}) {}

HttpServer::HttpServer(ServerOptions options, TextBackend* text, std::vector<Service*> services)
    : impl_(std::make_unique<Impl>(std::move(options), text, std::move(services))) {
  impl_->install_routes();
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    port_ = impl_->http.bind_to_any_port(o.host.c_str());
    check(port_ > 0, "[serve] cannot bind to ", o.host, " on any port");
  } else {
    check(o.port > 0 && o.port < 65536, "[serve] port ", o.port, " is not between 1 and 65535");
    check(impl_->http.bind_to_port(o.host.c_str(), o.port), "[serve] cannot bind to ", o.host, ":",
          o.port, " (address in use or not available)");
    port_ = o.port;
  }
}

void HttpServer::serve() {
  impl_->http.listen_after_bind();
}

void HttpServer::stop() {
  if (impl_ && impl_->http.is_running()) impl_->http.stop();
}

void HttpServer::drain(int grace_seconds) {
  if (!impl_) return;
  const int64_t deadline =
      Impl::monotonic_ns() + int64_t{grace_seconds > 0 ? grace_seconds : 0} * 1'000'000'000;
  // The deadline is stored before the flag, so a stream never sees draining with no deadline. A
  // second signal shortens the grace period, never lengthens it.
  if (!impl_->draining.load()) {
    impl_->drain_deadline_ns.store(deadline);
    impl_->draining.store(true);
  } else if (deadline < impl_->drain_deadline_ns.load()) {
    impl_->drain_deadline_ns.store(deadline);
  }
  stop();
}

}  // namespace eight::server
