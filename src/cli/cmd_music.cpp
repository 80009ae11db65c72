// `eight music`: text-to-music with MAGNeT (music_generation.cpp), or with --codes the EnCodec
// decoding of given codes alone, so the language model and the codec can be checked apart.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/args.h"
#include "cli/music_generation.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "formats/audio.h"
#include "formats/npy.h"
#include "models/encodec/encodec.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

// "20,10,10,10" -> its numbers; Error naming the flag for anything else.
std::vector<double> number_list(const std::string& s, const char* flag, size_t count) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      check(used == item.size(), "");
    } catch (const std::exception&) {
      fail(flag, " must be ", count, " comma-separated numbers, got '", s, "'");
    }
  }
  check(out.size() == count, flag, " must be ", count, " comma-separated numbers, got '", s, "'");
  for (double v : out) check(std::isfinite(v), flag, " values must be finite, got '", s, "'");
  return out;
}

void validate_generation(const MusicGenerationArgs& g) {
  check(!g.prompt.empty(), "a prompt is required (-p PROMPT), or --codes FILE.npy to decode codes");
  check(g.duration > 0 && g.duration <= 600, "--duration must be in (0, 600] seconds, got ",
        g.duration);
  for (double v : number_list(g.steps, "--steps", 4))
    check(v >= 1 && v <= 1000 && v == std::floor(v), "--steps values must be integers 1..1000, ",
          "got '", g.steps, "'");
  for (double v : number_list(g.cfg, "--cfg", 2))
    check(v >= 0 && v <= 100, "--cfg values must be in [0, 100], got '", g.cfg, "'");
}

Tensor read_codes(const std::string& path) {
  Tensor codes;
  try {
    codes = npy::read(path);
  } catch (const Error& e) {
    fail("--codes ", path, ": ", e.what(),
         " (codes must be an int32 [4, T] .npy: ", "np.save(path, codes.astype(np.int32)))");
  }
  check(codes.dtype() == DType::I32, "--codes ", path, " holds ", dtype_name(codes.dtype()),
        " values; codes must be int32 [4, T] (np.int32)");
  return codes;
}

void print_progress(int done, int total, void*) {
  std::fprintf(stderr, "\reight music: decoding %d/%d", done, total);
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

int run(int argc, char** argv) {
  ArgParser p("music", "-m MODEL (-p PROMPT | --codes FILE.npy) [-o OUT.wav|OUT.flac]",
              "Generate music from a text prompt with MAGNeT, or decode given EnCodec codes "
              "(--codes) to audio: 32 kHz mono, WAV 16-bit PCM (--float: 32-bit float) or FLAC.");
  MusicGenerationArgs g;
  std::string codes_path, out = "music.wav", save_codes;
  bool float32 = false, json = false;
  p.option("-m,--model", &g.model, "MODEL",
           "a MAGNeT directory as on Hugging Face (state_dict.bin, compression_state_dict.bin), "
           "an EnCodec directory (facebook/encodec_32khz: config.json, model.safetensors), a "
           "compression_state_dict.bin, or a store name (required)");
  p.option("-p,--prompt", &g.prompt, "PROMPT", "the music to generate, in words");
  p.option("--t5", &g.t5, "DIR",
           "the t5-base directory for the text encoder (default: the "
           "store's, pulled on first use)");
  p.option("--duration", &g.duration, "SECONDS", "length of the music (default 10)");
  p.option("--seed", &g.seed, "N", "random seed (default: a random one)");
  p.option("--steps", &g.steps, "A,B,C,D",
           "decoding steps for each of the 4 codebooks (default 20,10,10,10)");
  p.option("--cfg", &g.cfg, "FROM,TO",
           "classifier-free guidance, annealed from FROM to TO over the steps (default 10,1)");
  p.option("--save-codes", &save_codes, "FILE.npy",
           "also write the generated codes (int32 [4, T], 50 frames/s)");
  p.option("--codes", &codes_path, "FILE.npy",
           "decode these codes (int32 [4, T], 50 frames/s, values 0..2047) without the language "
           "model or T5");
  p.option("-o,--output", &out, "OUT", "output file: .wav or .flac (default music.wav)");
  p.flag("--float", &float32, "write 32-bit float WAV instead of 16-bit PCM");
  p.flag("--json", &json,
         "print {\"output\", \"sample_rate\", \"channels\", \"frames\", \"samples\", "
         "\"seconds\", \"format\", \"model\", \"layout\", \"decode_seconds\", "
         "\"realtime_factor\"} on stdout");
  p.option("-t,--threads", &g.threads, "N", "CPU threads (default: all cores)");
  p.positional_count(0, 0);
  p.epilog(
      "examples:\n"
      "  eight music -m magnet-small-10secs -p \"80s synth pop with a driving beat\" -o pop.wav\n"
      "  eight music -m facebook/encodec_32khz --codes codes.npy -o out.flac\n\n"
      "realtime_factor is the decoded audio's duration over the decoding time (above 1: faster\n"
      "than real time).");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!g.model.empty(), "a model is required (-m MODEL)");
  check(g.threads >= 0 && g.threads <= 1024, "--threads must be in [1, 1024], got ", g.threads);
  check(!float32 || out.size() < 5 || out.substr(out.size() - 5) != ".flac",
        "--float writes 32-bit float WAV; FLAC stores integers only (use -o OUT.wav)");
  ThreadPool& pool = global_thread_pool(g.threads);
  const std::string model_path = resolve_model_path(g.model);

  Tensor codes;
  std::optional<magnet::MusicPipeline> music;  // generation: the LM and its codec, loaded once
  std::optional<encodec::Decoder> codec;       // --codes: the codec alone
  if (!codes_path.empty()) {
    check(!p.given("-p") && !p.given("--save-codes"),
          "--codes decodes given codes: -p and --save-codes are for generation");
    codes = read_codes(codes_path);
    codec.emplace(encodec::Decoder::open(model_path));
  } else {
    validate_generation(g);
    music.emplace(load_music_pipeline(model_path, g.t5));
    const double segment = music->segment_duration();
    if (g.duration > segment + 1e-9)
      log_warn("[magnet] ", g.duration, " s is longer than the ", segment,
               " s this model was trained on (audiocraft generates exactly that length); the "
               "music may degrade past it");
    const int n_q = static_cast<int>(music->text_to_codes().lm().config().n_q);
    codes = music->codes(g.prompt, g.duration, music_generate_options(g, n_q), pool);
    if (!save_codes.empty()) npy::write(save_codes, codes.contiguous());
  }

  const encodec::Decoder& decoder = music ? music->decoder() : *codec;
  const encodec::Config& cfg = decoder.config();
  check(cfg.channels == 1, "[encodec] ", decoder.path(), " is a ", cfg.channels,
        "-channel model; eight music writes mono");
  decoder.check_codes(codes);
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor audio = decoder.decode(codes, pool, print_progress);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  audio::write(out, audio, static_cast<int>(cfg.sample_rate), float32);

  const double seconds = double(audio.size(1)) / double(cfg.sample_rate);
  const bool flac = out.size() >= 5 && out.substr(out.size() - 5) == ".flac";
  const std::string format = flac ? "flac-pcm16" : float32 ? "wav-float32" : "wav-pcm16";
  if (json) {
    nlohmann::json j{{"output", out},
                     {"sample_rate", cfg.sample_rate},
                     {"channels", cfg.channels},
                     {"frames", codes.size(1)},
                     {"samples", audio.size(1)},
                     {"seconds", seconds},
                     {"format", format},
                     {"model", decoder.path()},
                     {"layout", decoder.layout()},
                     {"decode_seconds", secs},
                     {"realtime_factor", secs > 0 ? seconds / secs : 0.0}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("wrote %s: %.2f s of %lld Hz audio (%s), decoded in %.2f s (%.1fx real time)\n",
                out.c_str(), seconds, static_cast<long long>(cfg.sample_rate), format.c_str(), secs,
                secs > 0 ? seconds / secs : 0.0);
  }
  return 0;
}

const Registration reg({.name = "music",
                        .summary = "generate music from text (MAGNeT) or decode EnCodec codes",
                        .run = run,
                        .order = 46});

}  // namespace
}  // namespace eight::cli
