#pragma once
// Audio input for speech models: decode a file (WAV, FLAC, OGG/Vorbis, MP3 — whatever libsndfile
// reads), mix down to mono and resample to 16 kHz float samples in [-1, 1] with libsamplerate's
// best sinc converter, which is what Whisper's front end expects.
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace eight::audio {

inline constexpr int kWhisperRate = 16000;
// Refuse absurd inputs before allocating: 12 hours of 16 kHz audio, 64 channels.
inline constexpr int64_t kMaxFrames = int64_t{12} * 3600 * 192000;
inline constexpr int kMaxChannels = 64;

struct Decoded {
  Tensor samples;  // F32 [frames], mono (channels averaged)
  int rate = 0;    // the file's sample rate
  int channels = 0;
};

// Decodes `path` to mono at its own rate. Throws Error naming the path and libsndfile's reason.
Decoded decode(const std::string& path);

// Resamples mono F32 [n] from `from_rate` to `to_rate` (a copy when the rates are equal).
Tensor resample(const Tensor& mono, int from_rate, int to_rate);

// decode + resample to 16 kHz: F32 [n] mono.
Tensor load_16k_mono(const std::string& path);

// Audio output (audio_write.cpp), chosen by the file name: .wav as 16-bit PCM (or 32-bit float
// with `float32`), .flac as 16-bit FLAC (float32 is an Error: FLAC stores integers only).
// samples: F32 [n] mono or [channels, n]; PCM values are clipped to [-1, 1]. Throws Error naming
// the path for an unknown extension or a failed write.
void write(const std::string& path, const Tensor& samples, int rate, bool float32 = false);

}  // namespace eight::audio
