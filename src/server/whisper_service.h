#pragma once
// OpenAI's audio endpoints over a Whisper model:
//   POST /v1/audio/transcriptions   multipart: file, model, language, prompt, response_format
//                                   (json | text | srt | vtt | verbose_json), temperature,
//                                   timestamp_granularities[] (segment | word)
//   POST /v1/audio/translations     the same without language and granularities; English text
// The upload is written to a private temporary file and decoded with libsndfile (WAV, FLAC, OGG,
// MP3), then resampled to 16 kHz mono. Requests are served one at a time on the model (one
// WhisperState, created per request); concurrent requests wait their turn.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/whisper/whisper.h"
#include "runtime/speech/transcribe.h"
#include "server/service.h"

namespace eight::server {

struct WhisperServiceOptions {
  std::string model_id;  // reported by /v1/models; "whisper-1" is accepted as an alias
  int beam_size = 5;
  int max_tokens_per_window = 0;  // 0: n_text_ctx / 2
};

class WhisperService final : public Service {
 public:
  WhisperService(std::shared_ptr<const whisper::Model> model, ThreadPool& pool,
                 WhisperServiceOptions options);
  std::vector<std::string> model_ids() const override;
  std::vector<Route> routes() override;

  // One request; translate selects /v1/audio/translations. Throws ApiError for client errors.
  ServiceResponse handle(const ServiceRequest& req, bool translate);

 private:
  std::shared_ptr<const whisper::Model> model_;
  ThreadPool& pool_;
  WhisperServiceOptions options_;
  whisper::Transcriber transcriber_;
  std::mutex mutex_;  // one transcription at a time
};

}  // namespace eight::server
