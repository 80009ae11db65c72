// The tagger memory plan (runtime/plan/tagger.h) against the tracked allocators, for each tagger
// architecture on its tiny fixture (tests/data/wd, tests/data/deepbooru): in a fresh child process
// (fresh thread pool and kernel scratch), the bytes the load leaves resident (the file mapping and
// the loader's copies) against the planned weights, and the peak of a real `eight tag` pass
// (vision::tag_images: decode, preprocess, stack, predict) over the resident bytes against the
// planned run (inputs, activations, kernel scratch). Both must be covered and within 5 %, at two
// batch sizes and two thread counts, so no constant can pass.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "child_process.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "models/tagger/tagger.h"
#include "plan_check.h"
#include "runtime/plan/tagger.h"
#include "runtime/vision/tags.h"
#include "test_util.h"

namespace eight {
namespace {

const std::string kData = std::string(EIGHT_SOURCE_DIR) + "/tests/data/";

struct Case {
  std::string model, image;
};

// {planned, measured} for the weights (run == false) or for a tag_images pass over 2 · batch
// copies of the image (run == true): the second batch runs with the kernels' scratch already
// grown, the steady state of a folder of images, which is what the plan bills.
std::pair<int64_t, int64_t> measure(const Case& c, int64_t batch, int threads, bool run) {
  return testing::in_child([&] {
    MemoryTracker& tr = memory_tracker();
    ThreadPool pool(threads);
    const int64_t base = tr.stats().current;
    const auto model = tagger::open(kData + c.model);
    int w = 0, h = 0;
    if (!image::read_size(kData + c.image, &w, &h)) throw Error("cannot read " + c.image);
    const TaggerPlan plan = plan_tagger(
        *model, {.batch = batch, .n_threads = pool.size(), .image_width = w, .image_height = h});
    const int64_t loaded = tr.stats().current - base;
    if (!run) return std::pair{plan.weight_bytes(), loaded};
    tr.reset_peak();
    const int64_t before = tr.stats().current;
    int results = 0;
    vision::tag_images(
        *model, static_cast<size_t>(2 * batch), static_cast<int>(batch), pool,
        [&](size_t) { return image::load(kData + c.image); },
        [&](size_t, const float*) { ++results; },
        [&](size_t, const std::string& e) { throw Error(e); });
    const int64_t measured = results == 2 * batch ? tr.stats().peak - before : -1;
    return std::pair{plan.host_peak() - plan.weight_bytes(), measured};
  });
}

TEST(PlannerTagger, MeasuredPeakWithinFivePercent) {
  const Case cases[] = {{"wd/vit", "wd/images/c.png"},
                        {"wd/vit_cls", "wd/images/a.png"},
                        {"wd/convnext", "wd/images/c.png"},
                        {"wd/swinv2", "wd/images/b.png"},
                        {"deepbooru/model-tiny.pt", "deepbooru/wide.png"}};
  for (const Case& c : cases) {
    const auto w = measure(c, 1, 1, false);
    testing::expect_plan_tight(c.model + " weights", w, w.first);
    for (int64_t batch : {1, 3}) {
      const std::string b = c.model + " batch " + std::to_string(batch);
      const auto one = measure(c, batch, 1, true);
      testing::expect_plan_tight(b + " threads 1", one, one.first);
      testing::expect_plan_tight(b + " threads 2", measure(c, batch, 2, true), one.first);
    }
  }
}

// Decoding a large image is billed as a bound (formats/image.h decode_bytes plus the file): random
// pixels (which do not compress) in an RGB PNG, an RGBA PNG (stb's worst case) and a JPEG, each
// decoded and preprocessed in a fresh process, stay under it for a WD tagger (whose white square
// is the largest buffer) and DeepBooru.
TEST(PlannerTagger, LargeImageDecodingIsCovered) {
  testing::TempDir dir;
  const std::string cmd = testing::python_with("numpy,PIL") + " -c \"import numpy as np, sys; " +
                          "from PIL import Image; a = (np.random.RandomState(0).rand(450, 600, " +
                          "4) * 255).astype('uint8'); d = sys.argv[1]; " +
                          "Image.fromarray(a[:, :, :3]).save(d + '/rgb.png'); " +
                          "Image.fromarray(a).save(d + '/rgba.png'); " +
                          "Image.fromarray(a[:, :, :3]).save(d + '/rgb.jpg', quality=95)\" " +
                          dir.path();
  if (testing::run_command(cmd) != 0)
    throw std::runtime_error("could not write the images: " + cmd);
  for (const char* model : {"wd/vit", "deepbooru/model-tiny.pt"})
    for (const char* name : {"rgb.png", "rgba.png", "rgb.jpg"}) {
      const std::string img = dir.file(name);
      const auto [planned, measured] = testing::in_child([&] {
        MemoryTracker& tr = memory_tracker();
        const auto m = tagger::open(kData + model);
        const int64_t file = static_cast<int64_t>(std::filesystem::file_size(img));
        const int64_t plan = m->memory(1, 1, 600, 450).preprocess_bytes + file;
        tr.reset_peak();
        const int64_t before = tr.stats().current;
        const Tensor px = m->preprocess(image::load(img));
        return std::pair{plan, tr.stats().peak - before};
      });
      std::printf("%s %s: planned %lld, measured %lld\n", model, name,
                  static_cast<long long>(planned), static_cast<long long>(measured));
      EXPECT_GT(measured, 0) << model << " " << name;
      EXPECT_LE(measured, planned) << model << " " << name;
    }
}

}  // namespace
}  // namespace eight
