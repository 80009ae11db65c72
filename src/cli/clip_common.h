#pragma once
// What the CLIP commands (classify, embed, index, search) share: the model option, loading by
// path or store name, decoding + preprocessing image files in batches (unreadable files reported,
// not fatal), label lists, and embeddings as JSON.
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/clip/clip.h"

namespace eight::cli {

struct ClipArgs {
  std::string model;
  int threads = 0;
  int batch = 8;
  std::string device = "auto";
  // `model_help` replaces the -m description (eight embed also takes text embedding GGUFs).
  void add_to(ArgParser& p, bool model_required = true, const char* model_help = nullptr);
  // -m as a path or a store name (Error when missing and required).
  std::string resolve() const;
  std::shared_ptr<const clip::Model> load() const;
  ThreadPool& pool() const;
};

// Embeds image files `batch` at a time: F32 [n_ok, dim] rows in the order of the files that
// decoded. `ok[i]` says whether paths[i] made a row; failures go to on_error(path, message).
// on_done(i) is called after each file (for progress).
Tensor embed_image_files(
    const clip::Model& model, const std::vector<std::string>& paths, int batch, ThreadPool& pool,
    std::vector<bool>* ok,
    const std::function<void(const std::string&, const std::string&)>& on_error,
    const std::function<void(size_t)>& on_done = {});

// "a cat, a dog,a car" → {"a cat", "a dog", "a car"} (trimmed; empty items are an Error).
std::vector<std::string> split_labels(const std::string& text);
// "a photo of {}" with {} replaced by the label (appended after a space when there is no {}).
std::string apply_template(const std::string& tmpl, const std::string& label);

// Row i of an F32 [n, d] tensor as a JSON array.
nlohmann::json row_json(const Tensor& t, int64_t i);

}  // namespace eight::cli
