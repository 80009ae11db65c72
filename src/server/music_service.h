#pragma once
// Text-to-music over MAGNeT + EnCodec (models/magnet/music_pipeline.h):
//   POST /v1/audio/generations   {"model"?, "prompt", "duration" (s, default 10, at most the
//                                model's trained segment), "seed"?, "response_format": "wav" |
//                                "flac"} -> the audio bytes (32 kHz mono 16-bit PCM)
// One generation runs at a time; up to `queue` more wait their turn, and past that a request gets
// 503 (as the image service does).
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/magnet/music_pipeline.h"
#include "server/generation_queue.h"
#include "server/service.h"

namespace eight::server {

// A request's fields, checked.
struct MusicRequest {
  std::string prompt;
  double duration = 10;
  uint64_t seed = 0;           // a random one when the request gives none
  std::string format = "wav";  // "wav" or "flac"
};

// What a request may ask of the loaded model.
struct MusicLimits {
  std::string model_id;       // "model", when given, must name it
  double max_seconds = 10;    // the trained segment
  double min_seconds = 0.06;  // one span of frames
};

// Parses a /v1/audio/generations body. Throws ApiError (400 naming the field, 404 for another
// model) for anything else.
MusicRequest parse_music_request(const std::string& body, const MusicLimits& limits);

struct MusicServiceOptions {
  std::string model_id;
  int queue = 4;  // requests that may wait while one generates
};

class MusicService final : public Service {
 public:
  MusicService(magnet::MusicPipeline pipeline, ThreadPool& pool, MusicServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;

  ServiceResponse generate(const ServiceRequest& req);

 private:
  magnet::MusicPipeline pipeline_;
  ThreadPool& pool_;
  MusicServiceOptions options_;
  GenerationQueue queue_;
};

}  // namespace eight::server
