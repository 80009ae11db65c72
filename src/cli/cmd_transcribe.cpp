// `eight transcribe`: speech to text with a whisper.cpp model file or a CTranslate2
// (faster-whisper) directory, OpenAI's algorithm.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/audio.h"
#include "models/whisper/whisper.h"
#include "ops/device.h"
#include "runtime/speech/transcribe.h"
#include "runtime/speech/transcript_format.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Progress on stderr for long files: one rewritten line on a terminal, else a line per 10%.
class Progress {
 public:
  explicit Progress(double duration) : enabled_(duration >= 60), tty_(::isatty(2) != 0) {}
  void update(double done, double total, double elapsed) {
    if (!enabled_ || total <= 0) return;
    const int pct = static_cast<int>(100 * done / total);
    if (!tty_ && pct / 10 == last_ / 10) return;
    last_ = pct;
    std::fprintf(stderr, "%s[progress] %3d%%  %.0f / %.0f s of audio, %.1fx real time%s",
                 tty_ ? "\r" : "", pct, done, total, elapsed > 0 ? done / elapsed : 0.0,
                 tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_, tty_;
  int last_ = -10;
};

int run(int argc, char** argv) {
  ArgParser p("transcribe", "-m MODEL AUDIO...",
              "Transcribe (or translate to English) speech with a Whisper model (whisper.cpp "
              "ggml-*.bin, or a CTranslate2/faster-whisper directory).");
  std::string model_path, language, formats, basename, prompt;
  bool translate = false, words = false, vad = false, no_fallback = false, json = false;
  bool quiet = false, no_timestamps = false;
  int beam_size = 5, best_of = 5, threads = 0, max_tokens = 0;
  double temperature = 0.0;
  p.option("-m,--model", &model_path, "MODEL",
           "whisper.cpp model file (ggml-*.bin) or CTranslate2 directory (model.bin, config.json)");
  std::string device = "auto";
  p.option("--device", &device, "DEV",
           "where the encoder's layers run: auto (default: the best GPU, else the CPU), cpu, "
           "vulkan or vulkan:N (see eight devices)");
  p.option("--language,-l", &language, "CODE",
           "spoken language: auto (detect; the default unless a CT2 directory's config.json names "
           "a language), en, ...");
  p.flag("--translate", &translate,
         "translate to English instead of transcribing (also when a CT2 config.json says task "
         "\"translate\")");
  p.flag("--no-timestamps,-nt", &no_timestamps,
         "decode without timestamp tokens (<|notimestamps|> in the prompt, whisper.cpp's -nt): "
         "one segment per 30 s window, printed as text only");
  p.option("--output-format,-f", &formats, "LIST",
           "files to write: txt,srt,vtt,json,verbose_json (comma-separated)");
  p.option("-o,--output", &basename, "BASENAME",
           "output path without extension (default: the audio file's name, in this directory)");
  p.option("--beam-size", &beam_size, "N", "beams at temperature 0 (default 5; 1 = greedy)");
  p.option("--best-of", &best_of, "N", "samples per window at temperature > 0 (default 5)");
  p.option("--temperature", &temperature, "T",
           "first temperature; fallback then tries T+0.2, ... up to 1.0 (default 0)");
  p.flag("--no-fallback", &no_fallback, "decode each window once, at --temperature");
  p.flag("--word-timestamps", &words, "word-level timestamps (cross-attention alignment)");
  p.option("--prompt", &prompt, "TEXT", "initial prompt: spelling, names, style to follow");
  p.flag("--vad", &vad, "skip silences longer than 2 s (energy-based voice detection)");
  p.option("--max-tokens", &max_tokens, "N", "tokens sampled per 30 s window (default 224)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)");
  p.flag("--json", &json, "print the result as JSON on stdout instead of segment lines");
  p.flag("-q,--quiet", &quiet, "print no segments (files are still written)");
  p.epilog(
      "Segments print as they are decoded: [hh:mm:ss.mmm --> hh:mm:ss.mmm] text.\n"
      "--vad cuts the file into speech regions by loudness (20 ms frames louder than the\n"
      "95th-percentile level minus 35 dB); silences over 2 s between them are never decoded.\n\n"
      "example:\n  eight transcribe -m ggml-base.en.bin talk.wav -f srt,json --word-timestamps");
  p.positional_count(1, -1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!model_path.empty(),
        "-m MODEL is required (a whisper.cpp ggml-*.bin file or a CTranslate2 directory)");
  model_path = resolve_model_path(model_path);  // a file, or a name in the model store
  check(temperature >= 0 && temperature <= 1, "--temperature must be in [0, 1], got ", temperature);
  std::vector<whisper::TranscriptFormat> outputs;
  for (const auto& f : split_list(formats)) outputs.push_back(whisper::parse_transcript_format(f));
  const auto& audio_files = p.positionals();
  for (const auto& a : audio_files)
    check(std::filesystem::is_regular_file(a), "audio file '", a, "' does not exist");

  whisper::TranscribeOptions o;
  o.translate = translate;
  o.without_timestamps = no_timestamps;
  o.beam_size = beam_size;
  o.best_of = best_of;
  o.word_timestamps = words;
  o.initial_prompt = prompt;
  o.vad = vad;
  o.max_tokens_per_window = max_tokens;
  o.temperatures.clear();
  for (int k = 0;; ++k) {
    const double t = temperature + 0.2 * k;
    if (t > 1.0 + 1e-6 || (no_fallback && k > 0)) break;
    o.temperatures.push_back(static_cast<float>(std::round(t * 100) / 100));
  }

  auto model = whisper::Model::load(model_path, ops::choose_device(device));
  // A CT2 directory's config.json may name the language and task; flags given win.
  const whisper::ModelFile& mf = model->file();
  o.language = !language.empty() ? language : (mf.language.empty() ? "auto" : mf.language);
  if (mf.task == "translate") o.translate = translate = true;
  ThreadPool& pool = global_thread_pool(threads);
  whisper::Transcriber transcriber(model, pool);
  whisper::validate_transcribe_options(o, model->special());

  for (const auto& audio_path : audio_files) {
    const Tensor samples = audio::load_16k_mono(audio_path);
    const std::span<const float> pcm(samples.data<float>(), static_cast<size_t>(samples.numel()));
    const double duration = static_cast<double>(pcm.size()) / whisper::kSampleRate;
    if (audio_files.size() > 1 && !quiet && !json) std::printf("%s:\n", audio_path.c_str());
    Progress progress(duration);
    const auto t0 = std::chrono::steady_clock::now();
    whisper::TranscribeCallbacks cb;
    cb.on_segment = [&](const whisper::Segment& s) {
      if (quiet || json || s.text.empty()) return;
      if (no_timestamps) {  // whisper.cpp's -nt prints the text alone
        std::printf("%s\n", s.text.c_str());
        std::fflush(stdout);
        return;
      }
      std::printf("[%s --> %s] %s\n", whisper::format_timestamp(s.start).c_str(),
                  whisper::format_timestamp(s.end).c_str(), s.text.c_str());
      std::fflush(stdout);
    };
    cb.on_progress = [&](double done, double total) {
      progress.update(done, total,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    const whisper::TranscribeResult r = transcriber.run(pcm, o, cb);
    progress.finish();
    if (json)
      std::printf("%s", whisper::format_transcript(r, whisper::TranscriptFormat::Json).c_str());

    std::string base = basename;
    const std::string stem = std::filesystem::path(audio_path).stem().string();
    if (base.empty())
      base = stem;
    else if (audio_files.size() > 1)
      base += "_" + stem;
    for (const auto f : outputs) {
      std::string path = base + "." + whisper::transcript_format_extension(f);
      if (f == whisper::TranscriptFormat::VerboseJson) path = base + ".verbose.json";
      std::ofstream out(path, std::ios::binary);
      check(out.good(), "cannot write '", path, "'");
      out << whisper::format_transcript(r, f, translate ? "translate" : "transcribe");
      check(out.good(), "failed writing '", path, "'");
      std::fprintf(stderr, "eight transcribe: wrote %s\n", path.c_str());
    }
    std::fprintf(stderr,
                 "eight transcribe: %s: %.1f s of audio in %.2f s (real-time factor %.3f; encode "
                 "%.2f s, decode %.2f s), language %s, %zu segments, %d windows, %d fallbacks, "
                 "%d threads\n",
                 audio_path.c_str(), r.duration, r.total_seconds,
                 r.duration > 0 ? r.total_seconds / r.duration : 0.0, r.encode_seconds,
                 r.decode_seconds, r.language.c_str(), r.segments.size(), r.windows, r.fallbacks,
                 pool.size());
  }
  return 0;
}

const Registration reg({.name = "transcribe",
                        .summary = "speech to text (or English translation) with a Whisper model",
                        .run = run,
                        .order = 40});

}  // namespace
}  // namespace eight::cli
