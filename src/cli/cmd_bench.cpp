// `eight bench`: benchmarks. --kernels runs the kernel roofline table (ops/kernel_bench.h); -m runs
// an LLM, Whisper or SDXL model; --sdxl-random an SDXL-shaped UNet with random weights
// (runtime/diffusion/bench.h).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "backend/vulkan/bench.h"
#include "backend/vulkan/vulkan.h"
#include "cli/args.h"
#include "cli/bench_llava.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/whisper_ct2.h"
#include "ops/kernel_bench.h"
#include "runtime/diffusion/bench.h"
#include "runtime/llm/bench.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/speech/bench.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

std::vector<DType> parse_types(const std::vector<std::string>& names) {
  std::vector<DType> out;
  for (const auto& name : names) {
    const auto t = dtype_from_name(name);
    check(t.has_value(), "[bench] unknown weight type '", name, "'");
    out.push_back(*t);
  }
  return out;
}

// The same table measured on a Vulkan device (backend/vulkan/bench.h).
int run_device_kernels(const std::string& device, const std::vector<std::string>& types,
                       double seconds) {
  vulkan::BenchOptions o;
  o.types = parse_types(types);
  if (seconds > 0) o.min_seconds = seconds;
  const auto report = vulkan::benchmark(vulkan::select_device(device), o);
  std::fputs(vulkan::format_bench(report).c_str(), stdout);
  return 0;
}

int run_kernels(int threads, const std::vector<std::string>& types, double seconds) {
  ops::KernelBenchOptions o;
  o.types = parse_types(types);
  if (seconds > 0) o.min_seconds = seconds;
  ThreadPool pool(threads > 0 ? threads : default_thread_count());
  const auto report = ops::run_kernel_bench(o, pool);
  std::fputs(ops::format_kernel_bench(report).c_str(), stdout);
  return 0;
}

// "1,2,4,8" → {1, 2, 4, 8}; each a stream count in 1..64 (empty: none).
std::vector<int> parse_streams(const std::string& text) {
  std::vector<int> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, comma - at);
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && v >= 1 && v <= 64, "[bench] --streams takes ",
          "stream counts in 1..64 separated by commas, got '", item, "' in '", text, "'");
    out.push_back(v);
    at = comma + 1;
  }
  return out;
}

// An SDXL checkpoint: a diffusers folder with unet/, or a .safetensors single file.
bool is_sdxl_model(const std::string& path) {
  if (std::ifstream(path + "/model_index.json").good()) return true;
  return path.size() > 12 && path.substr(path.size() - 12) == ".safetensors";
}

// "512,1024" → {512, 1024}.
std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, comma - at);
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && v >= 64 && v % 8 == 0, "[bench] --size takes ",
          "image sides (multiples of 8 from 64) separated by commas, got '", item, "'");
    out.push_back(v);
    at = comma + 1;
  }
  return out;
}

int run(int argc, char** argv) {
  ArgParser p("bench", "--kernels", "Measure the machine and eight's kernels.");
  bool kernels = false;
  int threads = 0;
  double seconds = 0;
  std::vector<std::string> types;
  p.flag("--kernels", &kernels,
         "memory read bandwidth, matrix-vector GB/s and matrix-matrix GFLOP/s per weight type");
  p.option("-t,--threads", &threads, "N", "threads (default: EIGHT_THREADS or all cores)");
  p.option("--type", &types, "TYPE", "only this weight type (repeatable), e.g. q4_K");
  p.option("--seconds", &seconds, "S", "minimum time per measurement (default 0.4)");
  std::string device = "cpu";
  p.option("--device", &device, "DEV",
           "cpu (default) or a GPU: vulkan:N, vulkan or auto (see eight devices); with -m the "
           "model's layers run there");
  int64_t gpu_layers = -1;
  p.option("-ngl,--gpu-layers", &gpu_layers, "N",
           "with -m and a GPU: decoder layers on it (default: as many as the planner fits)");
  // A model benchmark (runtime/llm/bench.h): eight bench -m MODEL [-p 512] [-n 128].
  std::string model, kv_type = "f16";
  int64_t n_prompt = 512, n_gen = 128;
  int reps = 3;
  bool json = false;
  p.option("-m,--model", &model, "MODEL",
           "benchmark an LLM (prompt processing, generation) or a Whisper model (encode, decode)");
  p.option("-p,--n-prompt", &n_prompt, "N", "prompt tokens for pp (default 512; 0 = skip)");
  p.option("-n,--n-gen", &n_gen, "N", "generated tokens for tg (default 128; 0 = skip)");
  p.option("-r,--reps", &reps, "N", "repetitions; the median is reported (default 3)");
  p.option("--kv-type", &kv_type, "TYPE", "KV cache type for -m (f16, q8_0)");
  std::string streams;
  p.option("-s,--streams", &streams, "N,N,...",
           "with -m: also decode N sequences at once (the server's batching), e.g. 1,2,4,8");
  p.flag("--json", &json, "with -m: one JSON object");
  bool sdxl_random = false;
  std::string sizes, random_type = "f16";
  int64_t width = 0, height = 0;
  int steps = 1;
  p.flag("--sdxl-random", &sdxl_random,
         "an SDXL-shaped UNet with random weights (no download): s/step and GFLOP/s");
  p.option("--dtype", &random_type, "TYPE",
           "with --sdxl-random: linear weight type (f16 default, q8_0, q4_K)");
  p.option("--size", &sizes, "N,N,...", "SDXL image sides to measure (default 512,1024)");
  p.option("-W,--width", &width, "N", "SDXL: one square size N (as --size N)");
  p.option("-H,--height", &height, "N", "SDXL: must equal -W (square sizes only)");
  p.option("--steps", &steps, "N", "SDXL: UNet steps timed per size (default 1; median)");
  LlavaBenchArgs llava;
  p.option("--image", &llava.image, "FILE",
           "with -m: LLaVA image encode and time to first token for this image (see --mmproj)");
  p.option("--mmproj", &llava.mmproj, "PATH",
           "with --image: the vision encoder (mmproj GGUF or LLaVA-NeXT directory; default: -m "
           "when it is such a directory)");
  p.option("--prompt", &llava.prompt, "TEXT",
           "with --image: the prompt, <image> marking the image (default \"<image>\\nDescribe "
           "this image in detail.\")");
  p.positional_count(0, 0);
  if (auto rc = p.parse(argc, argv)) return *rc;
  if (!llava.image.empty()) {
    check(!model.empty(), "[bench] --image needs -m LLM");
    llava.model = model;
    llava.reps = reps;
    llava.threads = threads;
    llava.json = json;
    return bench_llava(llava);
  }
  check(llava.mmproj.empty(), "[bench] --mmproj needs --image");
  if (sdxl_random || (!model.empty() && is_sdxl_model(resolve_model_path(model)))) {
    check(width == height, "[bench] -W and -H must be equal (square sizes), got ", width, " and ",
          height);
    diffusion::DiffusionBenchParams d;
    if (!sdxl_random) d.model = resolve_model_path(model);
    const auto t = dtype_from_name(random_type);
    check(t.has_value(), "[bench] unknown --dtype '", random_type, "'");
    d.random_type = *t;
    if (!sizes.empty()) d.sizes = parse_sizes(sizes);
    if (width > 0) d.sizes = {width};
    d.steps = steps;
    d.n_threads = threads;
    std::fputs(diffusion::format_sdxl_bench(diffusion::bench_sdxl(d), json).c_str(), stdout);
    return 0;
  }
  if (!model.empty() && whisper::is_whisper_model(resolve_model_path(model))) {
    const auto r = bench_whisper({.model = resolve_model_path(model),
                                  .reps = reps,
                                  .n_gen = n_gen,
                                  .beams = 5,
                                  .n_threads = threads});
    std::fputs(format_whisper_bench(r, json).c_str(), stdout);
    return 0;
  }
  if (!model.empty()) {
    const auto r = bench_llm({.model = resolve_model_path(model),
                              .n_prompt = n_prompt,
                              .n_gen = n_gen,
                              .reps = reps,
                              .n_threads = threads,
                              .kv_type = parse_kv_type(kv_type),
                              .streams = parse_streams(streams),
                              .device = device,
                              .n_gpu_layers = gpu_layers});
    std::fputs(format_llm_bench(r, json).c_str(), stdout);
    return 0;
  }
  if (!kernels) {
    std::fprintf(
        stderr,
        "eight bench: say what to measure (--kernels or -m MODEL); see eight bench --help\n");
    return 2;
  }
  if (device != "cpu") return run_device_kernels(device, types, seconds);
  return run_kernels(threads, types, seconds);
}

const Registration reg(
    {.name = "bench", .summary = "benchmark the kernels", .run = run, .order = 800});

}  // namespace
}  // namespace eight::cli
