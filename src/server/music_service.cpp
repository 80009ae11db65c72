// /v1/audio/generations over MAGNeT.
#include "server/music_service.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "formats/audio.h"
#include "server/api_error.h"
#include "server/embeddings_json.h"
#include "server/json_fields.h"

namespace eight::server {

using json = nlohmann::json;

namespace {

// The encoded file's bytes: audio::write chooses the format by the name, so the audio goes
// through a private temporary directory that is removed again.
std::string encode_audio(const Tensor& audio, int rate, const std::string& ext) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "eight-music-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    fail("[music service] cannot create a temporary directory: ", std::strerror(errno));
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } remove{tmpl};
  const std::string path = tmpl + "/music." + ext;
  audio::write(path, audio, rate);
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  check(in.good() || in.eof(), "[music service] cannot read back ", path);
  return bytes.str();
}

double number_field(const json& body, const char* name, double fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad_request(name, cat("'", name, "' must be a number, not ", kind(*v)));
  return v->get<double>();
}

}  // namespace

MusicService::MusicService(magnet::MusicPipeline pipeline, ThreadPool& pool,
                           MusicServiceOptions options)
    : pipeline_(std::move(pipeline)),
      pool_(pool),
      options_(std::move(options)),
      queue_(options_.queue, "music") {}

std::vector<std::string> MusicService::model_ids() const {
  return {options_.model_id};
}

std::vector<Route> MusicService::routes() {
  std::vector<Route> r;
  for (const char* prefix : {"/v1", ""})
    r.push_back({"POST", std::string(prefix) + "/audio/generations",
                 [this](const ServiceRequest& q) { return generate(q); }});
  return r;
}

MusicRequest parse_music_request(const std::string& body, const MusicLimits& limits) {
  ServiceRequest req;
  req.body = body;
  const json j = parse_json_object(req);
  const std::string model = string_field(j, "model");
  if (!model.empty() && model != limits.model_id)
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this server makes music with '",
                       limits.model_id, "'"),
                   "model", "model_not_found");
  MusicRequest r;
  r.prompt = string_field(j, "prompt");
  if (r.prompt.empty()) bad_request("prompt", "'prompt' is required and must not be empty");
  r.duration = number_field(j, "duration", std::min(10.0, limits.max_seconds));
  if (!(r.duration > 0) || r.duration > limits.max_seconds + 1e-9)
    bad_request("duration",
                cat("'duration' must be more than 0 and at most ", limits.max_seconds,
                    " seconds (the length this model was trained on), not ", r.duration));
  // MAGNeT decodes whole spans of frames (60 ms at 50 frames/s): the audio is the duration cut
  // down to them, as audiocraft cuts its segment (10 s -> 9.96 s).
  if (r.duration < limits.min_seconds - 1e-9)
    bad_request("duration",
                cat("'duration' ", r.duration, " s is shorter than one span of frames (",
                    limits.min_seconds, " s)"));
  r.seed = std::random_device{}();
  if (const json* s = field(j, "seed")) {
    if (!s->is_number_integer() || (!s->is_number_unsigned() && s->get<int64_t>() < 0))
      bad_request("seed", cat("'seed' must be a non-negative integer, not ", s->dump()));
    r.seed = s->get<uint64_t>();
  }
  const std::string format = string_field(j, "response_format");
  if (!format.empty() && format != "wav" && format != "flac")
    bad_request("response_format",
                cat("'response_format' must be \"wav\" or \"flac\", not \"", format, "\""));
  if (!format.empty()) r.format = format;
  return r;
}

ServiceResponse MusicService::generate(const ServiceRequest& req) {
  const auto& lm = pipeline_.text_to_codes().lm().config();
  const MusicRequest r =
      parse_music_request(req.body, {.model_id = options_.model_id,
                                     .max_seconds = pipeline_.segment_duration(),
                                     .min_seconds = double(lm.span_len) / double(lm.frame_rate)});
  return queue_.run([&] {
    const auto t0 = std::chrono::steady_clock::now();
    magnet::GenerateOptions opt;
    opt.seed = r.seed;
    const Tensor audio = pipeline_.decode(pipeline_.codes(r.prompt, r.duration, opt, pool_), pool_);
    const int rate = static_cast<int>(pipeline_.sample_rate());
    std::string bytes = encode_audio(audio, rate, r.format);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_info("[music] ", double(audio.size(-1)) / rate, " s of audio (seed ", r.seed, ") in ", secs,
             " s");
    return ServiceResponse{.status = 200,
                           .body = std::move(bytes),
                           .content_type = r.format == "wav" ? "audio/wav" : "audio/flac"};
  });
}

}  // namespace eight::server
