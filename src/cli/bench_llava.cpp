#include "cli/bench_llava.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "cli/llm_common.h"
#include "core/error.h"
#include "formats/image.h"
#include "formats/image_anyres.h"
#include "models/llava/llava.h"
#include "runtime/llm/multimodal.h"
#include "runtime/llm/session.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int bench_llava(const LlavaBenchArgs& a) {
  check(a.reps >= 1 && a.reps <= 1000, "[bench] --reps must be in [1, 1000], got ", a.reps);
  const std::string path = resolve_model_path(a.model);
  const std::string mmproj = VisionArgs::default_mmproj(path, a.mmproj);
  check(!mmproj.empty(), "[bench] --image needs the model's vision encoder: --mmproj FILE");
  const auto encoder = llava::VisionEncoder::load(mmproj);
  SessionOptions so{.n_ctx = a.ctx, .n_threads = a.threads};
  so.extras.push_back(vision_component(*encoder));
  const image::Image img = image::load(a.image);
  // The context holds the prompt and the image (and the first token).
  if (so.n_ctx == 0) so.n_ctx = encoder->count_tokens(img.height, img.width) + int64_t{256};
  auto session = LLMSession::open(path, so);
  const int64_t n_embd = session->config().n_embd;
  check(encoder->config().text_hidden == n_embd, "[bench] ", mmproj, " projects images to ",
        encoder->config().text_hidden, " dims, the LLM takes ", n_embd);
  const auto tok = text::Tokenizer::from_gguf(session->model().file());
  ThreadPool& pool = session->pool();

  std::vector<double> encode_ms, prefill_ms, ttft_ms;
  int64_t n_tokens = 0, n_image = 0;
  for (int r = 0; r < a.reps; ++r) {
    session->reset();
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor features[] = {encoder->encode(img, pool)};
    encode_ms.push_back(ms_since(t0));
    const auto t1 = std::chrono::steady_clock::now();
    const MultimodalPrompt mp =
        build_multimodal_prompt(tok, a.prompt, tok.add_bos(), true, features, n_embd);
    const float* logits = session->eval(mp.tokens, mp.embeddings.data());
    const int64_t first = std::max_element(logits, logits + session->n_vocab()) - logits;
    (void)first;  // the first token is chosen; its id does not matter here
    prefill_ms.push_back(ms_since(t1));
    ttft_ms.push_back(ms_since(t0));
    n_tokens = static_cast<int64_t>(mp.tokens.size());
    n_image = features[0].size(0);
  }
  // The tiles: the whole image plus the selected pinpoint's grid (five for 672 x 672 at 336).
  const auto best =
      image::select_best_resolution(img.height, img.width, encoder->config().preprocess.pinpoints);
  const int tile = encoder->config().image_size;
  const double enc = median(encode_ms), pre = median(prefill_ms), ttft = median(ttft_ms);
  const int threads = static_cast<int>(pool.size());
  if (a.json) {
    const nlohmann::ordered_json j = {
        {"model", path},
        {"mmproj", mmproj},
        {"image", a.image},
        {"image_tokens", n_image},
        {"prompt_tokens", n_tokens},
        {"tiles", 1 + static_cast<int64_t>(best[0] / tile) * (best[1] / tile)},
        {"threads", threads},
        {"reps", a.reps},
        {"encode_ms", enc},
        {"prefill_ms", pre},
        {"ttft_ms", ttft},
        {"prefill_tokens_per_s", pre > 0 ? 1000.0 * static_cast<double>(n_tokens) / pre : 0.0}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("image %s: %lld image tokens of %lld in the prompt, %d threads, median of %d\n",
                a.image.c_str(), static_cast<long long>(n_image), static_cast<long long>(n_tokens),
                threads, a.reps);
    std::printf("  image encode       %10.1f ms\n", enc);
    std::printf("  prompt prefill     %10.1f ms  (%.1f tokens/s)\n", pre,
                pre > 0 ? 1000.0 * static_cast<double>(n_tokens) / pre : 0.0);
    std::printf("  time to 1st token  %10.1f ms\n", ttft);
  }
  return 0;
}

}  // namespace eight::cli
