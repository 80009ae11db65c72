// Audio output through libsndfile (see audio.h): WAV (16-bit PCM or 32-bit float) and FLAC.
#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "formats/audio.h"

namespace eight::audio {

void write(const std::string& path, const Tensor& samples, int rate, bool float32) {
  check(samples.dtype() == DType::F32 && (samples.dim() == 1 || samples.dim() == 2),
        "[audio] writing needs F32 [n] or [channels, n] samples, got ", samples.str());
  const int channels = samples.dim() == 1 ? 1 : static_cast<int>(samples.size(0));
  const int64_t n = samples.size(-1);
  check(channels >= 1 && channels <= kMaxChannels, "[audio] cannot write ", channels, " channels");
  check(rate >= 1000 && rate <= 768000, "[audio] sample rate ", rate, " Hz is out of range");
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  if (ext == ".wav") {
    info.format = SF_FORMAT_WAV | (float32 ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16);
  } else if (ext == ".flac") {
    check(!float32, "[audio] ", path, ": FLAC stores integer samples only; write a .wav for ",
          "32-bit float output");
    info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  } else {
    fail("[audio] ", path, ": unknown output format '", ext, "' (.wav or .flac)");
  }
  check(sf_format_check(&info), "[audio] this libsndfile cannot write ", ext, " (", path, ")");
  // Interleaved frames; PCM clipped here, since libsndfile wraps out-of-range floats by default.
  const Tensor src = samples.contiguous();
  Tensor frames = Tensor::empty({n * channels}, DType::F32);
  const float* s = src.data<float>();
  float* f = frames.data<float>();
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < n; ++i) {
      const float v = s[c * n + i];
      f[i * channels + c] = float32 ? v : std::clamp(v, -1.f, 1.f);
    }
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  check(file != nullptr, "[audio] cannot write '", path, "': ", sf_strerror(nullptr));
  const sf_count_t wrote = sf_writef_float(file, f, n);
  const std::string err = sf_strerror(file);
  const int closed = sf_close(file);
  check(wrote == n && closed == 0, "[audio] writing '", path, "' failed after ", wrote, " of ", n,
        " frames: ", err);
}

}  // namespace eight::audio
