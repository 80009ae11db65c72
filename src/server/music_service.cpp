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

ServiceResponse MusicService::generate(const ServiceRequest& req) {
  const json j = parse_json_object(req);
  const std::string model = string_field(j, "model");
  if (!model.empty() && model != options_.model_id)
    throw ApiError(404, "invalid_request_error",
                   cat("the model '", model, "' does not exist; this server makes music with '",
                       options_.model_id, "'"),
                   "model", "model_not_found");
  const std::string prompt = string_field(j, "prompt");
  if (prompt.empty()) bad_request("prompt", "'prompt' is required and must not be empty");
  const double segment = pipeline_.segment_duration();
  const double duration = number_field(j, "duration", std::min(10.0, segment));
  if (!(duration > 0) || duration > segment + 1e-9)
    bad_request("duration", cat("'duration' must be more than 0 and at most ", segment,
                                " seconds (the length this model was trained on), not ", duration));
  // MAGNeT decodes whole spans of frames (60 ms at 50 frames/s): the audio is the duration cut
  // down to them, as audiocraft cuts its segment (10 s -> 9.96 s).
  const auto& lm = pipeline_.text_to_codes().lm().config();
  if (pipeline_.text_to_codes().frames(duration) < lm.span_len)
    bad_request("duration",
                cat("'duration' ", duration, " s is shorter than one span of ", lm.span_len,
                    " frames (", double(lm.span_len) / double(lm.frame_rate), " s)"));
  uint64_t seed = std::random_device{}();
  if (const json* s = field(j, "seed")) {
    if (!s->is_number_integer() || (!s->is_number_unsigned() && s->get<int64_t>() < 0))
      bad_request("seed", cat("'seed' must be a non-negative integer, not ", s->dump()));
    seed = s->get<uint64_t>();
  }
  const std::string format = string_field(j, "response_format");
  if (!format.empty() && format != "wav" && format != "flac")
    bad_request("response_format",
                cat("'response_format' must be \"wav\" or \"flac\", not \"", format, "\""));
  const std::string ext = format.empty() ? "wav" : format;

  return queue_.run([&] {
    const auto t0 = std::chrono::steady_clock::now();
    magnet::GenerateOptions opt;
    opt.seed = seed;
    const Tensor audio = pipeline_.decode(pipeline_.codes(prompt, duration, opt, pool_), pool_);
    const int rate = static_cast<int>(pipeline_.sample_rate());
    std::string bytes = encode_audio(audio, rate, ext);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_info("[music] ", double(audio.size(-1)) / rate, " s of audio (seed ", seed, ") in ", secs,
             " s");
    return ServiceResponse{.status = 200,
                           .body = std::move(bytes),
                           .content_type = ext == "wav" ? "audio/wav" : "audio/flac"};
  });
}

}  // namespace eight::server
