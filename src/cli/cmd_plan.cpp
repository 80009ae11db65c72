// `eight plan MODEL`: what goes where for a request and a budget, and whether it fits, from
// metadata alone (a GGUF file's header, a whisper.cpp file's headers, a diffusers image pipeline's
// safetensors headers, or the catalog's hyperparameters for NAME:QUANT).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "backend/vulkan/vulkan.h"
#include "cli/args.h"
#include "cli/llm_common.h"
#include "cli/t5_embed.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/storage.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/whisper_ct2.h"
#include "models/blip/blip.h"
#include "models/llava/llava.h"
#include "models/llm/llm_hf.h"
#include "models/tagger/tagger.h"
#include "runtime/diffusion/flux_parts.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/llm/multimodal.h"
#include "runtime/plan/bert.h"
#include "runtime/plan/blip.h"
#include "runtime/plan/diffusion.h"
#include "runtime/plan/planner.h"
#include "runtime/plan/report.h"
#include "runtime/plan/t5.h"
#include "runtime/plan/tagger.h"
#include "runtime/plan/whisper.h"

namespace eight::cli {
namespace {

bool is_whisper_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint32_t magic = 0;
  return in.read(reinterpret_cast<char*>(&magic), 4) && magic == whisper::kGgmlMagic;
}

// Encoder plans (bert, T5): their JSON object or table; exit status 1 when it does not fit.
nlohmann::json encoder_fields(const BertPlan& p) {
  return {{"architecture", "bert"}, {"pooling", p.pooling}};
}
nlohmann::json encoder_fields(const T5Plan& p) {
  return {{"architecture", p.config.model_type}};
}
template <class P>
int print_encoder_plan(const P& plan, bool json) {
  if (json) {
    nlohmann::json j = encoder_fields(plan);
    j.update({{"model", plan.model},
              {"tokens", plan.tokens},
              {"weight_bytes", plan.weight_bytes},
              {"activation_bytes", plan.activation_bytes},
              {"scratch_bytes", plan.scratch_bytes},
              {"host_peak_bytes", plan.host_peak()},
              {"ram_budget_bytes", plan.cpu.budget},
              {"fits", plan.fits()}});
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::fputs(render_plan(plan).c_str(), stdout);
  }
  return plan.fits() ? 0 : 1;
}

// A whisper.cpp file: weights, one window's encoder activations, cross K/V and per-hypothesis
// self caches, against the RAM budget (the CPU runs it).
int plan_whisper(const std::string& path, int beams, const DeviceBudget& budget, bool json) {
  check(beams >= 1 && beams <= 64, "--beams must be between 1 and 64 (got ", beams, ")");
  const whisper::ModelFile f =
      whisper::is_ct2_dir(path) ? whisper::load_ct2(path) : whisper::load(path);
  const WhisperMemory m =
      plan_whisper_file(path, beams, f.hparams.n_text_ctx, default_thread_count());
  const bool fits = budget.ram <= 0 || m.total() <= budget.ram;
  if (json) {
    const nlohmann::json out = {{"model", path},
                                {"architecture", "whisper"},
                                {"hypotheses", beams},
                                {"weights", m.weights},
                                {"file_overhead", m.file_overhead},
                                {"misaligned_copies", m.misaligned_copies},
                                {"encoder", m.encoder},
                                {"cross_kv", m.cross_kv},
                                {"self_kv", m.self_kv},
                                {"decoder", m.decoder},
                                {"total", m.total()},
                                {"ram_budget", budget.ram},
                                {"fits", fits}};
    std::printf("%s\n", out.dump(2).c_str());
    return fits ? 0 : 1;
  }
  const auto& h = f.hparams;
  std::printf("%s (whisper: %d+%d layers, width %d, %d mels, vocabulary %d, %s)\n", path.c_str(),
              h.n_audio_layer, h.n_text_layer, h.n_audio_state, h.n_mels, h.n_vocab,
              std::string(dtype_name(f.weight_type)).c_str());
  std::printf("  weights            %12s\n", format_bytes(m.weights).c_str());
  std::printf("  file + copies      %12s\n",
              format_bytes(m.file_overhead + m.misaligned_copies).c_str());
  std::printf("  encoder (30 s)     %12s\n", format_bytes(m.encoder).c_str());
  std::printf("  cross-attn K/V     %12s\n", format_bytes(m.cross_kv).c_str());
  std::printf("  self-attn K/V      %12s  (%d hypotheses x %d tokens)\n",
              format_bytes(m.self_kv).c_str(), beams, h.n_text_ctx);
  std::printf("  decoder            %12s\n", format_bytes(m.decoder).c_str());
  std::printf("  total (CPU RAM)    %12s of %s: %s\n", format_bytes(m.total()).c_str(),
              format_bytes(budget.ram).c_str(), fits ? "fits" : "does NOT fit");
  return fits ? 0 : 1;
}

// A Hugging Face BLIP directory (captioning or VQA): config.json names a Blip architecture.
bool is_blip_dir(const std::string& path) {
  const std::filesystem::path cfg = std::filesystem::path(path) / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(cfg, ec)) return false;
  const std::string text = read_small_file(cfg.string(), "[plan]");
  return text.find("\"BlipForConditionalGeneration\"") != std::string::npos ||
         text.find("\"BlipForQuestionAnswering\"") != std::string::npos;
}

// Image-to-text models (BLIP captioning / VQA, WD taggers, DeepBooru), planned as `eight caption`,
// `eight ask` and `eight tag` check them: the common fields of the encoder plans plus their own.
int print_vision_plan(const DevicePlan& cpu, const std::string& text, nlohmann::json j, bool json) {
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::fputs(text.c_str(), stdout);
  }
  return cpu.fits() ? 0 : 1;
}

int plan_blip_dir(const std::string& dir, int beams, int64_t max_tokens, int threads, int64_t ram,
                  bool json) {
  const auto m = blip::Model::load(dir);  // maps the weights; nothing runs
  const blip::GenerationConfig& g = m->config().generation;
  const int b = beams > 0 ? beams : g.num_beams;
  check(b >= 1 && b <= 64, "--beams must be in [1, 64], got ", b);
  // As `eight caption` bounds it: [DEC] and the prompt, then the new tokens.
  const int max_length = static_cast<int>(max_tokens > 0 ? 1 + max_tokens : g.max_length);
  BlipPlan plan = plan_blip(m->config(), m->name(), m->file_bytes(), m->matrix_type(), b,
                            max_length, threads > 0 ? threads : default_thread_count());
  if (ram > 0) plan.cpu.budget = ram;
  nlohmann::json j = {{"architecture", m->is_vqa() ? "blip-vqa" : "blip"},
                      {"model", plan.model},
                      {"beams", plan.beams},
                      {"max_length", plan.max_length},
                      {"weight_bytes", plan.weight_bytes},
                      {"activation_bytes", plan.vision_bytes + plan.decoder_bytes},
                      {"vision_bytes", plan.vision_bytes},
                      {"decoder_bytes", plan.decoder_bytes},
                      {"scratch_bytes", plan.scratch_bytes},
                      {"host_peak_bytes", plan.host_peak()},
                      {"ram_budget_bytes", plan.cpu.budget},
                      {"fits", plan.cpu.fits()}};
  const std::string text =
      cat(plan.model, " (BLIP ", m->is_vqa() ? "question answering" : "captioning", ", ", b,
          " beam(s), up to ", max_length, " tokens)\n", render_cpu_items(plan.cpu, "CPU only"));
  return print_vision_plan(plan.cpu, text, j, json);
}

int plan_tagger_model(const std::string& path, int64_t batch, int threads, int64_t width,
                      int64_t height, int64_t ram, bool json) {
  const auto model = tagger::open(path);  // maps the weights; nothing runs
  const TaggerPlan plan = plan_tagger(*model, {.batch = batch,
                                               .n_threads = threads,
                                               .image_width = width,
                                               .image_height = height,
                                               .ram = ram});
  const tagger::MemoryEstimate& m = plan.memory;
  const nlohmann::json j = {{"architecture", plan.architecture},
                            {"model", plan.model},
                            {"batch", plan.request.batch},
                            {"weight_bytes", m.weight_bytes},
                            {"input_bytes", m.input_bytes},
                            {"activation_bytes", m.activation_bytes},
                            {"preprocess_bytes", m.preprocess_bytes},
                            {"scratch_bytes", m.scratch_bytes},
                            {"host_peak_bytes", plan.host_peak()},
                            {"ram_budget_bytes", plan.cpu.budget},
                            {"fits", plan.fits()}};
  return print_vision_plan(plan.cpu, render_plan(plan), j, json);
}

bool is_tagger(const std::string& path) {
  for (const tagger::Format& f : tagger::formats())
    if (f.recognizes(path)) return true;
  return false;
}

int run(int argc, char** argv) {
  ArgParser p("plan", "MODEL",
              "Plan memory for a model before loading it: which layers and buffers go on the GPU "
              "and the CPU, the largest context that fits, and a verdict. MODEL is a GGUF file, "
              "a Hugging Face LLM directory (LLaVA-NeXT, Llama, Mistral), a whisper.cpp file or "
              "CTranslate2 Whisper directory, a BLIP directory, a WD tagger folder or DeepBooru "
              ".pt, or a catalog name with an "
              "optional quant (eight models lists them).");
  std::string vram = "8GiB", ram, kv_type = "f16", reserve;
  int64_t ctx = 0, parallel = 1, ubatch = 512, batch = 2048;
  bool json = false, no_fa = false, cpu = false;
  int beams = 5;
  p.option("--vram", &vram, "SIZE", "GPU memory budget (default 8GiB; 0 = no GPU)");
  p.option("--ram", &ram, "SIZE", "RAM budget (default: this machine's RAM minus 1 GiB)");
  p.option("--ctx,-c", &ctx, "N", "context tokens per slot (default min(trained, 8192))");
  p.option("--kv-type", &kv_type, "TYPE", "KV cache type: f16 (default), q8_0, f32");
  p.option("--parallel,-np", &parallel, "P", "parallel slots, each with its own context");
  p.option("--ubatch", &ubatch, "N", "tokens per forward pass (default 512)");
  p.option("--batch", &batch, "N",
           "prompt tokens handed to the model at once (default 2048); taggers: images per pass "
           "(default 4, as eight tag)");
  p.option("--gpu-reserve", &reserve, "SIZE", "VRAM kept for the GPU driver (default 512MiB)");
  p.flag("--no-flash-attn", &no_fa, "plan full attention score matrices");
  p.flag("--cpu", &cpu, "plan for the CPU only (same as --vram 0)");
  p.option("--beams", &beams, "N",
           "Whisper: hypotheses decoded together (default 5, the beam size); BLIP: beams "
           "(default: the model's)");
  int64_t max_tokens = 0;
  p.option("--max-tokens", &max_tokens, "N",
           "BLIP: tokens generated at most (default: the model's max_length)");
  int64_t width = 1024, height = 1024, vae_tile = -1;
  double cfg = 5.0;
  int threads = 0;
  std::string base;
  p.option("--base", &base, "MODEL",
           "image models: for a GGUF holding only a UNet, the SDXL file or folder that brings the "
           "text encoders and VAE");
  p.option("-W,--width", &width, "N",
           "image models: width in pixels (default 1024); taggers: the largest image decoded "
           "(default: the model's input size)");
  p.option("-H,--height", &height, "N",
           "image models: height in pixels (default 1024); taggers: as --width");
  p.option("--cfg-scale", &cfg, "F",
           "image models: guidance scale; above 1 the UNet runs on 2 samples (default 5)");
  p.option(
      "--vae-tile", &vae_tile, "N",
      "image models: VAE decode tile in latent pixels (default: as the plan chooses; 0 whole)");
  p.option("-t,--threads", &threads, "N", "threads (kernel scratch is per thread)");
  std::string mmproj;
  p.option("--mmproj", &mmproj, "PATH",
           "LLMs: bill a LLaVA 1.6 vision encoder too (llama.cpp mmproj GGUF or Hugging Face "
           "LLaVA-NeXT directory; default: MODEL when it is such a directory): its weights, one "
           "image's activations, and the image tokens in the context");
  p.flag("--json", &json, "print JSON");
  p.positional_count(1, 1);
  p.epilog(
      "examples:\n  eight plan mistral-7b-instruct:Q4_K_M\n"
      "  eight plan deepseek-coder:Q4_K_M --ctx 16384 --kv-type q8_0\n"
      "  eight plan ./model.gguf --vram 6GiB --ram 16GiB\n  eight plan flux-1-schnell:Q4_0\n"
      "  eight plan ggml-large-v3.bin --beams 5\n"
      "  eight plan llava-v1.6-mistral.Q4_K_M.gguf --mmproj mmproj-model-f16.gguf\n"
      "  eight plan ./stable-diffusion-xl-base-1.0 -W 1024 -H 1024 --ram 16GiB\n"
      "  eight plan ./blip-image-captioning-base --beams 3 --max-tokens 30\n"
      "  eight plan ./wd-vit-tagger-v3 --batch 8 --json");
  if (auto rc = p.parse(argc, argv)) return *rc;

  DeviceBudget budget;
  budget.vram = cpu ? 0 : parse_bytes(vram);
  if (!ram.empty()) {
    budget.ram = parse_bytes(ram);
    check(budget.ram > 0, "--ram must be more than 0");
  }
  if (!reserve.empty()) budget.gpu_reserve = parse_bytes(reserve);
  check(!p.given("--ctx") || ctx > 0, "--ctx must be at least 1 (got ", ctx, ")");
  PlanRequest request;
  request.ctx = ctx;
  request.kv_type = parse_kv_type_name(kv_type);
  request.parallel = parallel;
  request.ubatch = ubatch;
  request.batch = std::max(batch, ubatch);
  request.flash_attention = !no_fa;

  const std::string& model = p.positionals()[0];
  std::string text;
  nlohmann::json out;
  const bool image_folder =
      std::filesystem::is_directory(model) &&
      std::filesystem::exists(std::filesystem::path(model) / "model_index.json");
  if (diffusion::is_flux_model(model)) {
    // FLUX: the pipeline is opened (weights mapped, not read) and plans from its parts' shapes.
    diffusion::ImageLoadOptions load;
    load.path = model;
    auto pipe = diffusion::ImagePipeline::load(load);
    diffusion::ImageRequest rq;
    rq.width = width;
    rq.height = height;
    rq.vae_tile = vae_tile;
    rq.ram_budget = budget.ram;
    const ImagePlan plan = pipe->plan(rq, threads);
    std::printf("%s\n", json ? plan_to_json(plan).dump(2).c_str() : render_plan(plan).c_str());
    return plan.fits() ? 0 : 1;
  }
  if (image_folder || diffusion::is_sdxl_file(model)) {
    ImagePlanRequest rq;
    rq.width = width;
    rq.height = height;
    rq.guided = cfg > 1.0;
    rq.n_threads = threads;
    rq.vae_tile = vae_tile;
    rq.ram = budget.ram;
    // A GPU is billed when --vram is given (the default plan of an image pipeline is the CPU's).
    if (p.given("--vram") && !cpu) {
      rq.vram = budget.vram;
      rq.gpu_reserve = budget.gpu_reserve;
    }
    // Folders from their headers alone; single files and GGUFs mapped and renamed (nothing read).
    const ImagePlan plan = plan_image(
        image_folder ? describe_image_model(model) : diffusion::describe_sdxl(model, base), rq);
    if (json) {
      std::printf("%s\n", plan_to_json(plan).dump(2).c_str());
    } else {
      std::fputs(render_plan(plan).c_str(), stdout);
    }
    return plan.fits() ? 0 : 1;
  }
  if (is_blip_dir(model)) {
    check(!p.given("--max-tokens") || (max_tokens >= 1 && max_tokens <= 4096),
          "--max-tokens must be in [1, 4096], got ", max_tokens);
    check(!p.given("--beams") || (beams >= 1 && beams <= 64), "--beams must be in [1, 64], got ",
          beams);
    return plan_blip_dir(model, p.given("--beams") ? beams : 0, max_tokens, threads, budget.ram,
                         json);
  }
  if (is_tagger(model))  // WD tagger folders, DeepBooru's .pt: --batch images per pass
    return plan_tagger_model(model, p.given("--batch") ? batch : 4, threads,
                             p.given("--width") ? width : 0, p.given("--height") ? height : 0,
                             budget.ram, json);
  if ((std::filesystem::is_regular_file(model) && is_whisper_file(model)) ||
      whisper::is_ct2_dir(model)) {
    if (budget.ram <= 0) budget.ram = system_ram_budget();
    return plan_whisper(model, beams, budget, json);
  }
  if (is_t5_encoder(model))  // a text encoder: weights, one input's activations
    return print_encoder_plan(plan_t5(model, ctx, threads, budget.ram), json);
  mmproj = VisionArgs::default_mmproj(model, mmproj);
  check(mmproj.empty() || std::filesystem::is_regular_file(model) || llm::is_hf_llm_dir(model),
        "--mmproj applies to an LLM file or directory");
  if (std::filesystem::is_regular_file(model) || llm::is_hf_llm_dir(model)) {
    const gguf::File file = llm::open_llm_file(model);
    if (file.architecture() == "bert") {  // an encoder: weights, one input's activations
      return print_encoder_plan(plan_bert(file, ctx, threads, budget.ram), json);
    }
    LLMDesc desc = describe_gguf(file);
    std::shared_ptr<const llava::VisionEncoder> vision;
    if (!mmproj.empty()) {
      // The tower and projector are loaded (their weights are what is billed), nothing runs.
      vision = llava::VisionEncoder::load(mmproj);
      check(vision->config().text_hidden == desc.hp.n_embd, "[plan] ", mmproj,
            " projects images to ", vision->config().text_hidden, " dims, the LLM takes ",
            desc.hp.n_embd);
      desc.extras.push_back(vision_component(*vision));
      desc.min_ctx = std::max(desc.min_ctx, vision->max_tokens());  // one image fits the context
    }
    const Plan plan = plan_llm(desc, request, budget);
    json ? void(out = plan_to_json(plan)) : void(text = render_plan(plan));
    if (vision && json) {
      const ExtraComponent& e = desc.extras.back();
      out["vision"] = {{"mmproj", mmproj},
                       {"weight_bytes", e.bytes},
                       {"work_bytes", e.work_bytes},
                       {"max_image_tokens", vision->max_tokens()},
                       {"max_tiles", vision->max_tiles()},
                       {"device", plan.extras_on_gpu ? "vulkan:0" : "cpu"}};
    }
  } else {
    const ModelRef ref = resolve_model(model);
    if (ref.variant->hparams) {
      const Plan plan = plan_llm(describe_catalog_llm(ref), request, budget);
      json ? void(out = plan_to_json(plan)) : void(text = render_plan(plan));
    } else {
      check(!p.given("--ctx") && !p.given("--kv-type") && !p.given("--parallel"), ref.entry->id,
            " is not an LLM: --ctx, --kv-type and --parallel do not apply");
      const PipelinePlan plan = plan_pipeline(ref, budget);
      json ? void(out = plan_to_json(plan)) : void(text = render_plan(plan));
    }
  }
  if (json) {
    out["vulkan_built"] = vulkan::built();
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::fputs(text.c_str(), stdout);
  if (!vulkan::built() && budget.vram > 0)
    std::printf(
        "\nThis build has no Vulkan backend: runs happen on the CPU, where the RAM plan applies "
        "(see it with --cpu).\n");
  return 0;
}

const Registration reg({.name = "plan",
                        .summary = "plan memory for a model: what fits where, and the verdict",
                        .run = run,
                        .order = 20});

}  // namespace
}  // namespace eight::cli
