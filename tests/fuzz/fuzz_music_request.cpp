// libFuzzer target for the /v1/audio/generations request checks (server/music_service.h): any
// body must parse into a request within the limits or throw ApiError (a 4xx naming the field):
// no crash, no sanitizer report, no other exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/api_error.h"
#include "server/music_service.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const eight::server::MusicLimits limits{
      .model_id = "magnet-small-10secs", .max_seconds = 10, .min_seconds = 0.06};
  try {
    const auto r = eight::server::parse_music_request(body, limits);
    if (r.prompt.empty() || !(r.duration >= limits.min_seconds - 1e-9) ||
        r.duration > limits.max_seconds + 1e-9 || (r.format != "wav" && r.format != "flac"))
      std::abort();  // a request the checks should have refused
  } catch (const eight::server::ApiError& e) {
    if (e.status < 400 || e.status >= 500) std::abort();
  }
  return 0;
}
