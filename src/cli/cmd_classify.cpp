// `eight classify -m CLIP IMAGE... --labels "a cat,a dog,a car"`: zero-shot labels. Each label
// goes through the template ("a photo of {}" by default, as in the CLIP paper), the image and the
// label texts are embedded, and the probabilities are the softmax over logit_scale × cosine.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "cli/clip_common.h"
#include "core/error.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("classify", "-m CLIP IMAGE... --labels \"a cat,a dog\"",
              "Zero-shot image classification: the probability of each label for each image.");
  ClipArgs clip_args;
  std::string labels_arg, tmpl = "a photo of {}";
  int top = 5;
  bool json = false;
  clip_args.add_to(p);
  p.option("--labels", &labels_arg, "LIST", "comma-separated labels (required)");
  p.option("--template", &tmpl, "TEXT",
           "text around each label, {} marks the label (default \"a photo of {}\"; \"\" = none)");
  p.option("-k,--top", &top, "K", "labels shown per image, best first (default 5)");
  p.flag("--json", &json, "print [{\"image\", \"labels\": [{\"label\", \"probability\"}]}]");
  p.positional_count(1, -1);
  p.epilog(
      "example:\n  eight classify -m openai/clip-vit-large-patch14 cat.jpg --labels \"a cat,a "
      "dog,a car\"");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!labels_arg.empty(), "--labels is required, e.g. --labels \"a cat,a dog\"");
  check(top >= 1, "--top must be at least 1, got ", top);
  const std::vector<std::string> labels = split_labels(labels_arg);
  std::vector<std::string> texts;
  for (const auto& l : labels) texts.push_back(apply_template(tmpl, l));

  const auto model = clip_args.load();
  check(model->config().has_text, "[classify] ", model->name(),
        " has no text tower (a vision-only mmproj file): classification needs both");
  ThreadPool& pool = clip_args.pool();
  const Tensor label_emb = model->embed_texts(texts, pool);  // [L, d]

  const auto& images = p.positionals();
  std::vector<bool> ok;
  int failures = 0;
  const Tensor image_emb = embed_image_files(
      *model, images, clip_args.batch, pool, &ok, [&](const std::string&, const std::string& msg) {
        std::fprintf(stderr, "eight classify: %s\n", msg.c_str());
        ++failures;
      });
  nlohmann::json out = nlohmann::json::array();
  const int64_t d = model->config().projection_dim;
  int64_t row = 0;
  const size_t k = std::min<size_t>(static_cast<size_t>(top), labels.size());
  for (size_t i = 0; i < images.size(); ++i) {
    if (!ok[i]) continue;
    const Tensor emb = image_emb.slice(0, row, row + 1).reshape({d});
    ++row;
    const std::vector<float> prob = clip::zero_shot_probabilities(*model, emb, label_emb);
    std::vector<size_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return prob[a] > prob[b]; });
    if (json) {
      nlohmann::json ls = nlohmann::json::array();
      for (size_t j = 0; j < k; ++j)
        ls.push_back({{"label", labels[order[j]]}, {"probability", prob[order[j]]}});
      out.push_back({{"image", images[i]}, {"labels", ls}});
    } else {
      std::printf("%s\n", images[i].c_str());
      for (size_t j = 0; j < k; ++j)
        std::printf("  %6.2f%%  %s\n", 100.0 * prob[order[j]], labels[order[j]].c_str());
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  // Some images unreadable: still print the others, but say so in the exit code.
  return failures == 0 ? 0 : 1;
}

const Registration reg({.name = "classify",
                        .summary = "zero-shot image classification with a CLIP model",
                        .run = run,
                        .order = 50});

}  // namespace
}  // namespace eight::cli
