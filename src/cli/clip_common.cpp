#include "cli/clip_common.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "formats/image.h"
#include "ops/device.h"
#include "runtime/plan/clip.h"
#include "runtime/store/store.h"

namespace eight::cli {

void ClipArgs::add_to(ArgParser& p, bool model_required, const char* model_help) {
  p.option("-m,--model", &model, "MODEL",
           std::string(model_help ? model_help
                                  : "CLIP model: a Hugging Face checkpoint folder, a CLIP GGUF "
                                    "or a store name") +
               (model_required ? " (required)" : ""));
  p.option("-t,--threads", &threads, "N", "CPU threads (default: all cores)");
  p.option("--batch", &batch, "N", "images embedded together (default 8)");
  p.option("--device", &device, "DEV",
           "where the encoders' layers run: auto (default: the best GPU, else the CPU), cpu, "
           "vulkan or vulkan:N (see eight devices)");
}

std::string ClipArgs::resolve() const {
  check(!model.empty(), "a CLIP model is required (-m CLIP)");
  return resolve_model_path(model);
}

namespace {

// The checkpoint's bytes as mapped: the safetensors shards of a folder, or the file itself.
int64_t checkpoint_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return static_cast<int64_t>(fs::file_size(path, ec));
  int64_t total = 0;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors") total += static_cast<int64_t>(e.file_size(ec));
  return total;
}

// The matrices' type from bytes per parameter (the model does not expose its tensors' types).
DType matrix_type(const clip::Config& c, int64_t bytes) {
  auto tower = [](const clip::TowerConfig& t) {
    return t.layers * (4 * t.hidden * t.hidden + 2 * t.hidden * t.intermediate);
  };
  int64_t params = tower(c.vision) + c.vision.hidden * (3 * c.patch_size * c.patch_size + 1);
  if (c.has_text) params += tower(c.text) + int64_t{c.vocab_size} * c.text.hidden;
  const double per = params > 0 ? static_cast<double>(bytes) / static_cast<double>(params) : 4;
  return per > 3 ? DType::F32 : per > 1.5 ? DType::F16 : DType::Q8_0;
}

}  // namespace

std::shared_ptr<const clip::Model> ClipArgs::load() const {
  check(batch >= 1 && batch <= 1024, "--batch must be in [1, 1024], got ", batch);
  check(threads >= 0 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);
  const std::string path = resolve();
  auto model = clip::Model::load(path, ops::choose_device(device));
  // The memory of one batch of images (or of the label texts, whichever is larger) against the
  // RAM budget, before the first forward pass allocates it.
  const int64_t bytes = checkpoint_bytes(path);
  const ClipPlan plan = plan_clip(
      model->config(), model->name(), bytes, matrix_type(model->config(), bytes),
      {.images = batch, .texts = model->config().has_text ? batch : 0, .n_threads = pool().size()});
  plan.check_host_budget();
  return model;
}

ThreadPool& ClipArgs::pool() const {
  return global_thread_pool(threads);
}

Tensor embed_image_files(
    const clip::Model& model, const std::vector<std::string>& paths, int batch, ThreadPool& pool,
    std::vector<bool>* ok,
    const std::function<void(const std::string&, const std::string&)>& on_error,
    const std::function<void(size_t)>& on_done) {
  const image::PreprocessConfig& pc = model.config().preprocess;
  const int64_t d = model.config().projection_dim;
  ok->assign(paths.size(), false);
  std::vector<Tensor> pixels;  // each [3, H, W]
  std::vector<Tensor> parts;   // each [b, d]
  int64_t rows = 0;
  std::vector<size_t> pending;  // file indices waiting in `pixels`
  auto flush = [&] {
    if (pixels.empty()) return;
    const Dims one = pixels[0].shape();
    Tensor stacked =
        Tensor::empty({static_cast<int64_t>(pixels.size()), one[0], one[1], one[2]}, DType::F32);
    const size_t bytes = pixels[0].nbytes();
    for (size_t i = 0; i < pixels.size(); ++i)
      std::memcpy(static_cast<char*>(stacked.raw()) + i * bytes, pixels[i].raw(), bytes);
    parts.push_back(model.embed_images(stacked, pool));
    rows += static_cast<int64_t>(pixels.size());
    for (size_t i : pending) {
      (*ok)[i] = true;
      if (on_done) on_done(i);
    }
    pixels.clear();
    pending.clear();
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      pixels.push_back(image::preprocess(image::load(paths[i]), pc));
      pending.push_back(i);
    } catch (const Error& e) {
      on_error(paths[i], e.what());
      if (on_done) on_done(i);
    }
    if (static_cast<int>(pixels.size()) >= batch) flush();
  }
  flush();
  Tensor out = Tensor::empty({rows, d}, DType::F32);
  int64_t at = 0;
  for (const Tensor& p : parts) {
    std::memcpy(out.data<float>() + at * d, p.contiguous().raw(), p.size(0) * d * sizeof(float));
    at += p.size(0);
  }
  return out;
}

std::vector<std::string> split_labels(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    const auto b = item.find_first_not_of(" \t\n"), e = item.find_last_not_of(" \t\n");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    check(!item.empty(), "--labels has an empty label (in \"", text, "\")");
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string apply_template(const std::string& tmpl, const std::string& label) {
  if (tmpl.empty()) return label;
  const size_t at = tmpl.find("{}");
  if (at == std::string::npos) return tmpl + " " + label;
  return tmpl.substr(0, at) + label + tmpl.substr(at + 2);
}

nlohmann::json row_json(const Tensor& t, int64_t i) {
  const int64_t d = t.size(1);
  const float* r = t.data<const float>() + i * d;
  return nlohmann::json(std::vector<float>(r, r + d));
}

}  // namespace eight::cli
