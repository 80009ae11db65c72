// `eight tag -m MODEL IMAGE... [--threshold 0.35] [--character-threshold 0.85] [--json]`: the
// tags an image tagger (WD v3 ViT/ConvNeXt/SwinV2, DeepBooru) finds in each image, as the
// A1111-style prompt line with the rating apart. `eight tag -m MODEL DIR` writes NAME.txt beside
// every image of DIR (the dataset-captioning workflow).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "models/tagger/tagger.h"
#include "runtime/plan/planner.h"
#include "runtime/plan/tagger.h"
#include "runtime/store/store.h"
#include "runtime/vision/tags.h"

namespace eight::cli {
namespace {

namespace fs = std::filesystem;

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})
    if (ext == e) return true;
  return false;
}

// The images directly in `dir` (not its subfolders), sorted by name.
std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && is_image_name(e.path())) out.push_back(e.path().string());
  check(!ec, "cannot read the folder ", dir, ": ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string caption_path(const std::string& image) {
  return fs::path(image).replace_extension(".txt").string();
}

void print_result(const std::string& image, const vision::TagResult& r) {
  const vision::ScoredTag* rating = r.top_rating();
  if (rating)
    std::printf("%s  (rating: %s %.3f)\n", image.c_str(), rating->name.c_str(), rating->score);
  else
    std::printf("%s\n", image.c_str());
  std::printf("%s\n\n", r.text.c_str());
}

struct FolderCounts {
  int tagged = 0, kept = 0, same_name = 0;
};

int run(int argc, char** argv) {
  ArgParser p("tag", "-m MODEL IMAGE... | -m MODEL DIR",
              "Tag images with an image tagger (SmilingWolf's WD v3 taggers, DeepBooru): the "
              "A1111-style prompt line (general tags best first, then character tags) and the "
              "rating apart. Given a folder, writes NAME.txt beside each image in it.");
  std::string model_arg, ram;
  vision::TagThresholds th;
  int threads = 0, batch = 4;
  bool json = false, overwrite = false;
  p.option("-m,--model", &model_arg, "MODEL",
           "tagger: a WD v3 folder (model.safetensors, config.json, selected_tags.csv), "
           "DeepBooru's model-resnet_custom_v3.pt, or a store name (required)");
  p.option("--threshold", &th.general, "P",
           "general tags with a probability above P are kept (default 0.35)");
  p.option("--character-threshold", &th.character, "P",
           "character tags with a probability above P are kept (default 0.85)");
  p.flag("--json", &json,
         "print [{\"image\", \"rating\": {tag: p}, \"general\": [{\"name\", \"score\"}], "
         "\"character\": [...], \"text\"}]");
  p.flag("--overwrite", &overwrite,
         "folder mode: replace existing NAME.txt files (default: keep them and skip the image)");
  p.option("-t,--threads", &threads, "N", "CPU threads (default: all cores)");
  p.option("--batch", &batch, "N", "images run together (default 4)");
  p.option("--ram", &ram, "SIZE",
           "RAM budget the run must fit, checked before it starts (default: this machine's RAM "
           "minus 1 GiB; eight plan MODEL --batch N shows the bill)");
  p.positional_count(1, -1);
  p.epilog(
      "examples:\n  eight tag -m wd-vit-tagger-v3 a.png b.jpg\n"
      "  eight tag -m wd-vit-tagger-v3 dataset/          # writes dataset/NAME.txt per image\n\n"
      "In the prompt line '_' becomes a space (kaomoji such as ^_^ kept) and \\ ( ) are escaped\n"
      "with a backslash, as the WD tagger tools write it. Folder mode reads the images directly\n"
      "in DIR (jpg, jpeg, png, webp, bmp, gif), skips unreadable ones with a warning, and exits\n"
      "0 when the folder was processed; file mode exits 1 when some image could not be read.");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!model_arg.empty(), "a tagger model is required (-m MODEL)");
  vision::check_thresholds(th, "--threshold", "--character-threshold");
  check(batch >= 1 && batch <= 1024, "--batch must be in [1, 1024], got ", batch);
  check(threads >= 0 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);

  const auto& args = p.positionals();
  std::error_code ec;
  const auto n_dirs = std::count_if(args.begin(), args.end(),
                                    [&](const std::string& a) { return fs::is_directory(a, ec); });
  check(n_dirs == 0 || n_dirs == static_cast<long>(args.size()),
        "give either image files or folders, not both");
  const bool folder_mode = n_dirs > 0;
  std::vector<std::string> images;
  for (const std::string& a : args) {
    if (!folder_mode) {
      images.push_back(a);
      continue;
    }
    for (std::string& f : list_images(a)) images.push_back(std::move(f));
  }
  check(!folder_mode || !images.empty(), "no images (jpg, jpeg, png, webp, bmp, gif) in ", args[0]);

  const auto model = tagger::open(resolve_model_path(model_arg));
  ThreadPool& pool = global_thread_pool(threads);
  // The plan (weights, one batch, the network's activations or one image's decoding, kernel
  // scratch) against the RAM budget before the first image is decoded.
  // Images are decoded one at a time: the largest width and height (from the headers) bound it.
  TaggerPlanRequest rq{.batch = std::min<int64_t>(batch, std::max<size_t>(1, images.size())),
                       .n_threads = pool.size()};
  for (const std::string& img : images) {
    int w = 0, h = 0;
    if (!image::read_size(img, &w, &h)) continue;  // reported when it is decoded
    rq.image_width = std::max<int64_t>(rq.image_width, w);
    rq.image_height = std::max<int64_t>(rq.image_height, h);
    rq.image_file_bytes =
        std::max(rq.image_file_bytes, static_cast<int64_t>(fs::file_size(img, ec)));
  }
  if (!ram.empty()) rq.ram = parse_bytes(ram);
  plan_tagger(*model, rq).check_host_budget();

  FolderCounts counts;
  std::vector<std::string> todo;
  std::set<std::string> captions;  // a.png and a.jpg would both write a.txt: the first one wins
  for (const std::string& img : images) {
    if (!folder_mode) {
      todo.push_back(img);
      continue;
    }
    const std::string txt = caption_path(img);
    if (!captions.insert(txt).second) {
      std::fprintf(stderr, "eight tag: warning: skipping %s: %s is written for another image\n",
                   img.c_str(), txt.c_str());
      ++counts.same_name;
    } else if (!overwrite && fs::exists(txt, ec)) {
      ++counts.kept;
    } else {
      todo.push_back(img);
    }
  }
  int failures = 0, done = 0;
  nlohmann::json out = nlohmann::json::array();
  vision::tag_images(
      *model, todo.size(), batch, pool, [&](size_t i) { return image::load(todo[i]); },
      [&](size_t i, const float* probs) {
        const vision::TagResult r = vision::select_tags(model->tags(), probs, th);
        if (json) out.push_back(vision::tag_result_json(todo[i], r));
        if (folder_mode) {
          const std::string txt = caption_path(todo[i]);
          std::ofstream f(txt, std::ios::binary | std::ios::trunc);
          f << r.text;
          check(static_cast<bool>(f), "cannot write ", txt);
          ++counts.tagged;
          std::fprintf(stderr, "[%d/%zu] %s\n", ++done, todo.size(), txt.c_str());
        } else if (!json) {
          print_result(todo[i], r);
        }
      },
      [&](size_t i, const std::string& msg) {
        if (folder_mode)
          std::fprintf(stderr, "[%d/%zu] warning: skipping %s: %s\n", ++done, todo.size(),
                       todo[i].c_str(), msg.c_str());
        else
          std::fprintf(stderr, "eight tag: warning: skipping %s: %s\n", todo[i].c_str(),
                       msg.c_str());
        ++failures;
      });
  if (json) std::printf("%s\n", out.dump(2).c_str());
  if (folder_mode) {
    std::fprintf(stderr, "eight tag: %d tagged, %d unreadable skipped", counts.tagged, failures);
    if (counts.kept > 0)
      std::fprintf(stderr, ", %d kept their existing .txt (--overwrite replaces them)",
                   counts.kept);
    if (counts.same_name > 0)
      std::fprintf(stderr, ", %d skipped for sharing a name with another image", counts.same_name);
    std::fprintf(stderr, "\n");
    return 0;
  }
  return failures == 0 ? 0 : 1;
}

const Registration reg({.name = "tag",
                        .summary = "tag images with a WD tagger or DeepBooru (A1111 prompt tags)",
                        .run = run,
                        .order = 54});

}  // namespace
}  // namespace eight::cli
