// `eight serve`: the OpenAI-compatible HTTP server over one LLM, with continuous batching, and/or
// a Whisper model for /v1/audio/transcriptions and /v1/audio/translations.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "cli/args.h"
#include "cli/llm_common.h"
#include "cli/music_generation.h"
#include "core/log.h"
#include "core/memory.h"
#include "models/blip/blip.h"
#include "models/llava/llava.h"
#include "models/llm/llm.h"
#include "ops/device.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/llm/multimodal.h"
#include "runtime/llm/scheduler.h"
#include "runtime/plan/planner.h"
#include "runtime/store/store.h"
#include "server/caption_service.h"
#include "server/clip_service.h"
#include "server/embedding_service.h"
#include "server/http_server.h"
#include "server/image_service.h"
#include "server/llm_backend.h"
#include "server/music_service.h"
#include "server/tag_service.h"
#include "server/whisper_service.h"
#include "text/chat_template.h"
#include "text/tool_calls.h"

namespace eight::cli {
namespace {

// The server a signal drains: the loading placeholder, then the real one.
std::atomic<server::HttpServer*> g_server = nullptr;
std::atomic<int> g_signals = 0;
int g_drain_seconds = 10;

// Marks a rendered chat prompt on its way from render_chat to encode (U+10FFFE, the noncharacter
// protect_special uses, then bytes no template writes).
constexpr std::string_view kChatPrompt = "\xf4\x8f\xbf\xbe\x01chat\x01";

void on_signal(int) {
  // The first signal drains (streams get the grace period), a second one cuts them now. drain()
  // only sets atomics and closes the listening socket: safe in a handler.
  const int n = ++g_signals;
  if (server::HttpServer* s = g_server.load()) s->drain(n == 1 ? g_drain_seconds : 0);
}

// Holds the port while the models load, answering 503 {"status":"loading"} to everything, so an
// orchestrator or balancer can probe /health from the first second. The real server takes the
// same port over when it closes (SO_REUSEADDR); a connection in that gap of a few microseconds
// is refused, which a balancer retries elsewhere.
struct LoadingListener {
  explicit LoadingListener(server::ServerOptions o)
      : http((o.loading = true, o.log_requests = false, o.handler_threads = 4, std::move(o)),
             nullptr, {}) {
    http.bind();
    g_server = &http;
    thread = std::thread([this] {
      http.serve();
      done = true;
    });
  }
  ~LoadingListener() {
    g_server = nullptr;
    // stop() is a no-op until serve() has started listening: repeat it until serve() returns.
    while (!done) {
      http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    thread.join();
  }
  server::HttpServer http;
  std::atomic<bool> done = false;
  std::thread thread;
};

// The text side: the LLM, its planned slots and the scheduler behind /v1/chat/completions.
struct LLMStack {
  LLMStack(const ModelArgs& model, int parallel, int queue, std::string name,
           const std::string& mmproj)
      : path(model.resolve(/*allow_default=*/true)),
        vision(mmproj.empty() ? nullptr : llava::VisionEncoder::load(mmproj)),
        llm(llm::LLM::load(path)),
        so(model.session_options()),
        gpu(gpu_target(so)),
        plan(make_plan(*llm, so, gpu, parallel, vision.get())),
        text(llm->file()),
        chat(model_chat(llm->file())),
        kv_type(so.kv_type),
        scheduler(
            llm,
            {.n_slots = parallel,
             .n_ctx = plan.request.ctx,
             .kv_type = so.kv_type,
             .max_batch = std::max<int64_t>(so.ubatch, parallel),
             .queue_limit = queue},
            [this](int32_t id) { return text.piece(id); }, eog_tokens(llm->file()),
            global_thread_pool(so.n_threads)),
        alias(name.empty() ? default_alias(path) : std::move(name)),
        backend(alias, scheduler, functions()) {}

  // Plan the slots' KV cache and check the RAM budget before allocating it.
  static Plan make_plan(llm::LLM& llm, const SessionOptions& so, const GpuTarget& gpu, int parallel,
                        const llava::VisionEncoder* vision) {
    LLMDesc desc = describe_gguf(llm.file());
    if (vision) {
      check(vision->config().text_hidden == llm.config().n_embd, "[serve] the --mmproj projects ",
            "images to ", vision->config().text_hidden, " dims, the LLM takes ",
            llm.config().n_embd);
      desc.extras.push_back(vision_component(*vision));
    }
    PlanRequest req{
        .ctx = so.n_ctx > 0 ? so.n_ctx : std::min<int64_t>(llm.config().n_ctx_train, 4096),
        .kv_type = so.kv_type,
        .parallel = parallel,
        .ubatch = so.ubatch};
    Plan plan = plan_llm(desc, req, gpu.budget);
    plan.check_host_budget();
    place_model(llm, plan, gpu, so);
    return plan;
  }
  static std::string default_alias(const std::string& path) {
    std::string a = path.substr(path.find_last_of('/') + 1);
    if (a.size() > 5 && a.ends_with(".gguf")) a.resize(a.size() - 5);
    return a;
  }
  server::LLMTextFunctions functions() {
    server::LLMTextFunctions fns;
    // A chat prompt carries kChatPrompt in front: its message content was marked by
    // protect_special and only the template's special tokens may become tokens. A raw
    // /v1/completions prompt has its special-token text parsed, as llama.cpp does.
    fns.encode = [this](const std::string& prompt) {
      const bool is_chat = prompt.rfind(kChatPrompt, 0) == 0;
      const std::string_view p =
          is_chat ? std::string_view(prompt).substr(kChatPrompt.size()) : std::string_view(prompt);
      const bool has_bos = !chat.bos_token.empty() && p.rfind(chat.bos_token, 0) == 0;
      const bool add_bos = text.add_bos() && !has_bos;
      return is_chat ? text.tokenizer().encode_chat(p, add_bos)
                     : text.encode(std::string(p), add_bos, /*parse_special=*/true);
    };
    fns.piece = [this](int32_t id) { return text.piece(id); };
    fns.vision = vision;
    // Images come only in chat requests: the text after one is chat text too.
    fns.encode_piece = [this](const std::string& piece) {
      return text.tokenizer().encode_chat(piece, /*add_special=*/false);
    };
    fns.render_chat = [this](const ChatJson& messages, const ChatJson& tools) {
      ChatOptions o;
      o.bos_token = chat.bos_token;
      o.eos_token = chat.eos_token;
      o.tools = tools;
      // Image parts' marks (server::kImagePart) pass as they are; the text around them is
      // protected, so a user's own "<image>" stays text even where the vocabulary has it as a
      // special token (llava-hf's tokenizers do).
      const ChatJson protected_messages = map_contents(messages, [&](std::string_view s) {
        std::string p;
        for (size_t pos = 0;;) {
          const size_t at = s.find(server::kImagePart, pos);
          p += text.tokenizer().protect_special(s.substr(pos, at - pos));
          if (at == s.npos) break;
          p += server::kImagePart;
          pos = at + server::kImagePart.size();
        }
        return p;
      });
      return std::string(kChatPrompt) + render_chat(chat.template_src, protected_messages, o);
    };
    fns.tool_format = detect_tool_format(chat.template_src, [this](std::string_view t) {
      return text.find_token(std::string(t)) >= 0;
    });
    fns.template_uses_tools = template_uses_tools(chat.template_src);
    fns.grammar_vocab =
        text::GrammarVocab::from_tokenizer(text.tokenizer(), eog_tokens(llm->file()));
    return fns;
  }

  std::string path;
  std::shared_ptr<const llava::VisionEncoder> vision;
  std::shared_ptr<llm::LLM> llm;
  SessionOptions so;
  GpuTarget gpu;
  Plan plan;
  ModelText text;
  ModelChat chat;
  DType kv_type;
  Scheduler scheduler;
  std::string alias;
  server::LLMBackend backend;
};

// The LLM's memory plan as the web UI's status line shows it.
nlohmann::json plan_memory(const Plan& p) {
  return {{"verdict", verdict_name(p.verdict)},
          {"summary", p.summary},
          {"ctx", p.request.ctx},
          {"parallel", p.request.parallel},
          {"weight_bytes", p.weight_bytes},
          {"kv_bytes", p.kv_bytes},
          {"compute_bytes", p.compute_bytes},
          {"host_bytes", p.host_peak()},
          {"gpu_bytes", p.gpu.total()},
          {"gpu_device", p.gpu.device}};
}

int run(int argc, char** argv) {
  ArgParser p("serve", "[-m MODEL] [--whisper WHISPER_MODEL]",
              "Serve a model through the OpenAI API (/v1/chat/completions, /v1/completions, "
              "/v1/models, /health, /metrics) and a web UI at / (see docs/web-ui.md).");
  ModelArgs model;
  model.add_to(p, /*model_required=*/false);
  std::string host = "127.0.0.1", api_key, cors, alias;
  int port = 8080, parallel = 4, queue = 64;
  int64_t max_body = 8 << 20;
  p.option("--host", &host, "ADDR", "address to bind (default 127.0.0.1: this machine only)");
  p.option("--port", &port, "PORT", "port (default 8080; 0 picks a free one and prints it)");
  p.option("--parallel,-np", &parallel, "N", "requests decoded together (default 4)");
  p.option("--queue", &queue, "N", "requests waiting beyond the slots before 503 (default 64)");
  p.option("--api-key", &api_key, "KEY", "require 'Authorization: Bearer KEY' (or EIGHT_API_KEY)");
  p.option("--cors-origin", &cors, "ORIGIN", "allow browser requests from ORIGIN ('*' for any)");
  p.option("--alias", &alias, "NAME", "model id reported by /v1/models (default: file name)");
  p.option("--drain-timeout", &g_drain_seconds, "SECONDS",
           "on SIGTERM/SIGINT stop accepting and let streams run this long, then end each with "
           "an SSE error event (default 10; a second signal ends them at once)");
  p.option("--max-body", &max_body, "BYTES",
           "largest request body accepted (default 8 MiB; 25 MiB with --whisper)");
  std::string mmproj;
  p.option("--mmproj", &mmproj, "PATH",
           "the LLM's vision encoder (llama.cpp mmproj GGUF of LLaVA 1.6, or a Hugging Face "
           "LLaVA-NeXT directory; default: -m when it is one): chat completions then take "
           "image_url parts (data: URLs)");
  std::string whisper_path;
  int whisper_beam = 5;
  p.option("--whisper", &whisper_path, "MODEL",
           "also serve a Whisper model (whisper.cpp ggml-*.bin or a CTranslate2 directory) on "
           "/v1/audio/transcriptions and "
           "/v1/audio/translations; without -m only speech is served");
  int whisper_max_tokens = 0;
  std::string clip_model;
  p.option("--clip", &clip_model, "CLIP",
           "also serve a CLIP model (folder, GGUF or store name) on /v1/embeddings (text), "
           "/v1/images/embeddings and /v1/classify; without -m only those are served");
  std::string caption_model;
  p.option("--caption-model", &caption_model, "MODEL",
           "also serve a BLIP model (Hugging Face folder or store name): chat completions naming "
           "it, with an image_url part, get its caption (the text is the caption's prefix) or, "
           "for a VQA model, its answer to the text");
  std::string embedding_model;
  p.option("--embedding", &embedding_model, "MODEL",
           "also serve a GGUF text embedding model (bert: bge, all-MiniLM, ...; or a decoder LLM, "
           "last-token pooling) on /v1/embeddings; a bert GGUF given as -m is served this way");
  std::string tag_model;
  p.option("--tag-model", &tag_model, "MODEL",
           "also serve an image tagger (WD v3 folder, DeepBooru .pt or store name) on /v1/tags; "
           "without -m "
           "only tags are served");
  std::string image_model;
  int image_queue = 4;
  p.option("--image-model", &image_model, "MODEL",
           "also serve an SDXL model (diffusers folder or single file) on "
           "/v1/images/generations and /sdapi/v1/txt2img; without -m only images are served");
  p.option("--image-queue", &image_queue, "N",
           "image (and music) requests that may wait while one generates, before 503 (default "
           "4)");
  std::string music_model, music_t5;
  p.option("--music-model", &music_model, "DIR",
           "also serve a MAGNeT model (Hugging Face directory: state_dict.bin, "
           "compression_state_dict.bin) on /v1/audio/generations; without -m only music is "
           "served");
  p.option("--t5", &music_t5, "DIR",
           "the t5-base directory for --music-model (default: a t5-base/ folder in it, else the "
           "store's)");
  p.option("--whisper-beam-size", &whisper_beam, "N", "beams for speech decoding (default 5)");
  p.option("--whisper-max-tokens", &whisper_max_tokens, "N",
           "tokens sampled per 30 s window (default 224)");
  p.epilog(
      "--ctx is the context of each slot. The KV cache holds --parallel × --ctx tokens and is\n"
      "planned against the RAM budget before anything is loaded.\n\n"
      "example:\n  eight serve -m mistral-7b-instruct:Q4_K_M --parallel 4 --ctx 4096");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(parallel >= 1 && parallel <= 256, "--parallel must be between 1 and 256, got ", parallel);
  check(queue >= 0, "--queue must not be negative, got ", queue);
  check(max_body > 0, "--max-body must be positive");
  check(g_drain_seconds >= 0, "--drain-timeout must not be negative, got ", g_drain_seconds);
  if (api_key.empty())
    if (const char* env = std::getenv("EIGHT_API_KEY")) api_key = env;
  const server::ServerOptions listen_options{.host = host,
                                             .port = port,
                                             .api_key = api_key,
                                             .cors_origin = cors,
                                             .max_body_bytes = static_cast<size_t>(max_body),
                                             .handler_threads = parallel + queue + 8,
                                             .models = {}};
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto loading = std::make_unique<LoadingListener>(listen_options);
  // No "on http://" here: scripts wait for that line as the sign the models are served.
  std::fprintf(stderr, "eight serve: loading; %s:%d answers 503 until the models are ready\n",
               host.c_str(), loading->http.port());
  std::fflush(stderr);

  // A BERT GGUF as -m has no text generation: it is the embedding model.
  if (!model.model.empty() && embedding_model.empty()) {
    const std::string path = resolve_model_path(model.model);
    char magic[4] = {};
    if (std::filesystem::is_regular_file(path))
      std::ifstream(path, std::ios::binary).read(magic, 4);
    if (std::memcmp(magic, "GGUF", 4) == 0 && gguf::File::open(path).architecture() == "bert") {
      embedding_model = path;
      model.model.clear();
    }
  }
  // The text model: -m, or the bundled default unless only other services were asked for.
  std::unique_ptr<LLMStack> llm;
  if (!model.model.empty() || (whisper_path.empty() && clip_model.empty() && image_model.empty() &&
                               embedding_model.empty() && tag_model.empty() &&
                               caption_model.empty() && music_model.empty()))
    llm = std::make_unique<LLMStack>(model, parallel, queue, alias,
                                     VisionArgs::default_mmproj(model.model, mmproj));
  std::unique_ptr<server::WhisperService> speech;
  ThreadPool& pool = global_thread_pool(model.session_options().n_threads);
  const int64_t speech_before = memory_tracker().stats().current;
  if (!whisper_path.empty()) {
    // A file path, or a name in the model store.
    const std::string path = resolve_model_path(whisper_path);
    // The id: a file's stem ("ggml-base"), a directory's name ("faster-whisper-base.en").
    std::filesystem::path fp = std::filesystem::path(path).lexically_normal();
    if (fp.filename().empty()) fp = fp.parent_path();
    const std::string id =
        std::filesystem::is_directory(fp) ? fp.filename().string() : fp.stem().string();
    speech = std::make_unique<server::WhisperService>(
        whisper::Model::load(path, ops::choose_device(model.device)), pool,
        server::WhisperServiceOptions{.model_id = id,
                                      .beam_size = whisper_beam,
                                      .max_tokens_per_window = whisper_max_tokens});
    if (!p.given("--max-body")) max_body = int64_t{25} << 20;  // OpenAI's audio upload limit
  }
  // What each service's model holds in tracked host memory (mapped weights and copies), measured
  // around its loading, for the status endpoint (the LLM reports its plan instead).
  std::map<const server::Service*, int64_t> loaded_bytes;
  auto loaded = [&](const server::Service* s, int64_t before) {
    loaded_bytes[s] = memory_tracker().stats().current - before;
  };
  std::vector<server::Service*> services;
  if (speech) {
    services.push_back(speech.get());
    loaded(speech.get(), speech_before);
  }
  std::unique_ptr<server::ClipService> vision;
  if (!clip_model.empty()) {
    const int64_t before = memory_tracker().stats().current;
    server::ClipServiceOptions clip_options;
    clip_options.n_threads = model.session_options().n_threads;
    vision = std::make_unique<server::ClipService>(
        clip::Model::load(resolve_model_path(clip_model), ops::choose_device(model.device)),
        clip_options);
    services.push_back(vision.get());
    loaded(vision.get(), before);
    // Images arrive base64-encoded in JSON (4/3 of their size).
    if (!p.given("--max-body")) max_body = std::max<int64_t>(max_body, int64_t{32} << 20);
  }
  std::unique_ptr<server::EmbeddingService> text_embeddings;
  if (!embedding_model.empty()) {
    check(!vision, "--embedding and --clip both serve /v1/embeddings: give one of them");
    const std::string path = resolve_model_path(embedding_model);
    const int64_t before = memory_tracker().stats().current;
    text_embeddings = std::make_unique<server::EmbeddingService>(
        TextEmbedder::load(path),
        server::EmbeddingServiceOptions{
            .model_id =
                !alias.empty() && !llm ? alias : std::filesystem::path(path).stem().string(),
            .n_threads = model.session_options().n_threads,
            .max_inputs = 256});
    services.push_back(text_embeddings.get());
    loaded(text_embeddings.get(), before);
  }
  std::unique_ptr<server::ImageService> images;
  if (!image_model.empty()) {
    check(image_queue >= 0, "--image-queue must not be negative, got ", image_queue);
    const int64_t before = memory_tracker().stats().current;
    auto pipeline = diffusion::ImagePipeline::load({.path = resolve_model_path(image_model),
                                                    .vae_path = {},
                                                    .loras = {},
                                                    .base_path = {},
                                                    .device = ops::choose_device(model.device),
                                                    .separate = {}});
    images = std::make_unique<server::ImageService>(
        std::move(pipeline), pool,
        server::ImageServiceOptions{.model_id = {}, .queue = image_queue});
    services.push_back(images.get());
    loaded(images.get(), before);
  }
  std::unique_ptr<server::TagService> tagging;
  if (!tag_model.empty()) {
    const int64_t before = memory_tracker().stats().current;
    tagging = std::make_unique<server::TagService>(
        tagger::open(resolve_model_path(tag_model)),
        server::TagServiceOptions{.model_id = {}, .n_threads = model.session_options().n_threads});
    services.push_back(tagging.get());
    loaded(tagging.get(), before);
    if (!p.given("--max-body")) max_body = std::max<int64_t>(max_body, int64_t{32} << 20);
  }
  std::unique_ptr<server::CaptionService> captions;
  if (!caption_model.empty()) {
    const int64_t before = memory_tracker().stats().current;
    captions = std::make_unique<server::CaptionService>(
        blip::Model::load(resolve_model_path(caption_model)),
        server::CaptionServiceOptions{.model_id = {},
                                      .n_threads = model.session_options().n_threads});
    services.push_back(captions.get());
    loaded(captions.get(), before);
    if (!p.given("--max-body")) max_body = std::max<int64_t>(max_body, int64_t{32} << 20);
  }
  std::unique_ptr<server::MusicService> music;
  if (!music_model.empty()) {
    const int64_t before = memory_tracker().stats().current;
    const std::string path = resolve_model_path(music_model);
    std::filesystem::path fp = std::filesystem::path(path).lexically_normal();
    if (fp.filename().empty()) fp = fp.parent_path();
    music = std::make_unique<server::MusicService>(
        load_music_pipeline(path, music_t5), pool,
        server::MusicServiceOptions{.model_id = fp.filename().string(), .queue = image_queue});
    services.push_back(music.get());
    loaded(music.get(), before);
  } else {
    check(music_t5.empty(), "--t5 names the text encoder of --music-model, which is not given");
  }
  std::vector<server::ModelStatus> status;
  if (llm) status.push_back({llm->alias, "chat", llm->vision != nullptr, plan_memory(llm->plan)});
  const std::pair<server::Service*, const char*> kinds[] = {
      {speech.get(), "speech"}, {vision.get(), "clip"},  {text_embeddings.get(), "embeddings"},
      {images.get(), "images"}, {tagging.get(), "tags"}, {captions.get(), "caption"},
      {music.get(), "music"}};
  for (const auto& [service, task] : kinds)
    if (service)
      for (const std::string& id : service->model_ids())
        status.push_back({id, task, service == captions.get(),
                          nlohmann::json{{"loaded_bytes", loaded_bytes[service]}}});
  server::ServerOptions options = listen_options;
  options.port = loading->http.port();
  options.max_body_bytes = static_cast<size_t>(max_body);  // the services may have raised it
  options.models = std::move(status);
  // Everything is built before the placeholder closes: the port is free for as short as can be.
  server::HttpServer http(options, llm ? &llm->backend : nullptr, services);
  loading.reset();
  if (g_signals > 0) {
    std::fprintf(stderr, "eight serve: stopped before the models were served\n");
    return 0;
  }
  http.bind();
  g_server = &http;
  if (g_signals > 0) http.drain(0);  // a signal in the gap between the two listeners
  if (llm)
    std::fprintf(stderr,
                 "eight serve: %s on http://%s:%d (%d slots × %lld tokens, KV %s %s, %d "
                 "threads, tool calls: %s)%s\n",
                 llm->alias.c_str(), host.c_str(), http.port(), parallel,
                 static_cast<long long>(llm->plan.request.ctx), dtype_name(llm->kv_type).data(),
                 format_bytes(llm->plan.kv_bytes).c_str(), pool.size(),
                 tool_format_name(llm->backend.tool_format()),
                 api_key.empty() ? "" : ", API key required");
  else
    std::fprintf(stderr, "eight serve: %s on http://%s:%d (%s only, %d threads)%s\n",
                 services[0]->model_ids()[0].c_str(), host.c_str(), http.port(),
                 speech            ? "speech"
                 : vision          ? "vision"
                 : text_embeddings ? "embeddings"
                 : captions        ? "captions"
                 : music           ? "music"
                                   : "images",
                 pool.size(), api_key.empty() ? "" : ", API key required");
  if (vision && (llm || speech))
    std::fprintf(stderr,
                 "eight serve: vision model %s on /v1/embeddings, /v1/images/embeddings, "
                 "/v1/classify\n",
                 vision->model_ids()[0].c_str());
  if (text_embeddings && (llm || speech))
    std::fprintf(stderr, "eight serve: embedding model %s on /v1/embeddings\n",
                 text_embeddings->model_ids()[0].c_str());
  if (images && (llm || speech || vision || text_embeddings))
    std::fprintf(stderr,
                 "eight serve: image model %s on /v1/images/generations, /sdapi/v1/txt2img\n",
                 images->model_ids()[0].c_str());
  if (captions && (llm || speech || vision || text_embeddings || images))
    std::fprintf(stderr, "eight serve: caption model %s on /v1/chat/completions (by its id)\n",
                 captions->model_ids()[0].c_str());
  if (music && (llm || speech || vision || text_embeddings || images || captions))
    std::fprintf(stderr, "eight serve: music model %s on /v1/audio/generations\n",
                 music->model_ids()[0].c_str());
  if (llm && speech)
    std::fprintf(stderr, "eight serve: speech model %s on /v1/audio/*\n",
                 speech->model_ids()[0].c_str());
  std::fflush(stderr);
  http.serve();  // returns once a drain has finished every request in flight
  g_server = nullptr;
  std::fprintf(stderr, "eight serve: stopped\n");
  return 0;
}

const Registration reg({.name = "serve",
                        .summary = "serve a model through the OpenAI-compatible HTTP API",
                        .run = run,
                        .order = 30});

}  // namespace
}  // namespace eight::cli
