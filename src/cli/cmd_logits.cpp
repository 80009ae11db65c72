// `eight logits -m MODEL -p PROMPT -o OUT.npy`: the logits after every prompt position, as float32
// [n_tokens, n_vocab], for comparisons with reference implementations. BOS is added as the
// model's metadata says and special-token text is parsed as llama.cpp does (--no-parse-special:
// as plain text), or pass ids with --tokens.
// With --image and --mmproj (a vision LLM such as LLaVA 1.6): one row per position of the whole
// sequence as the model sees it, the image's positions included; the image goes where the
// prompt holds "<image>" (with --tokens: where the id -1 is), else before the text.
// With a whisper.cpp model: `eight logits -m WHISPER.bin --audio FILE --tokens IDS -o OUT.npy`,
// the decoder's logits after each forced token with the whole file (padded to 30 s) as the audio.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/llm_common.h"
#include "core/error.h"
#include "formats/audio.h"
#include "formats/mel.h"
#include "formats/npy.h"
#include "formats/whisper_ct2.h"
#include "models/llm/llm_hf.h"
#include "models/whisper/whisper.h"
#include "ops/device.h"
#include "runtime/llm/multimodal.h"
#include "text/tokenizer.h"

namespace eight::cli {
namespace {

// Logits of a Whisper decoder forced through `tokens` over one 30 s window of `audio_path`.
std::vector<float> whisper_logits(const std::string& path, const std::string& audio_path,
                                  const std::vector<int32_t>& tokens, int threads,
                                  const std::string& device, int64_t* V) {
  check(!audio_path.empty(), "a Whisper model needs the audio: --audio FILE");
  const auto model = whisper::Model::load(path, ops::choose_device(device));
  const int64_t n_ctx = model->hparams().n_text_ctx;
  check(static_cast<int64_t>(tokens.size()) <= n_ctx, "[logits] ", tokens.size(),
        " tokens exceed the decoder's context of ", n_ctx);
  const Tensor samples = audio::load_16k_mono(audio_path);
  const Tensor mel =
      mel::log_mel_spectrogram(samples.data<float>(), samples.numel(), model->file().mel_filters,
                               2 * model->hparams().n_audio_ctx);
  ThreadPool pool(threads > 0 ? threads : default_thread_count());
  whisper::WhisperState state(model, 1, static_cast<int>(tokens.size()), pool);
  state.encode(mel);
  *V = model->hparams().n_vocab;
  std::vector<float> logits(tokens.size() * static_cast<size_t>(*V));
  state.decode(0, tokens, logits.data());
  return logits;
}

int run(int argc, char** argv) {
  ArgParser p("logits", "-m MODEL (-p PROMPT | --tokens IDS) [--audio FILE] -o OUT.npy",
              "Write the logits of every prompt position as a float32 [n_tokens, n_vocab] .npy.");
  ModelArgs model;
  std::string prompt, tokens_arg, out, audio_path;
  VisionArgs vision;
  bool json = false, no_bos = false, no_special = false;
  model.add_to(p);
  p.option("-p,--prompt", &prompt, "TEXT", "prompt text (tokenized with the model's tokenizer)");
  p.option("--tokens", &tokens_arg, "IDS",
           "token ids instead of a prompt: \"1,450,4996\" (with --image, -1 marks its place)");
  p.option("-o,--output", &out, "FILE", "output .npy file (required)");
  p.option("--audio", &audio_path, "FILE", "with a Whisper model: the audio (padded to 30 s)");
  vision.add_to(p);
  p.flag("--no-bos", &no_bos, "do not add BOS even when the model's metadata asks for it");
  p.flag("--no-parse-special", &no_special,
         "tokenize special-token text (\"<|user|>\") as plain text instead of as tokens");
  p.flag("--json", &json,
         "print {\"tokens\": [...], \"shape\": [T, V], \"output\": FILE} (image positions "
         "are -1 in tokens)");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!out.empty(), "an output file is required (-o OUT.npy)");
  check(prompt.empty() != tokens_arg.empty(), "give exactly one of -p PROMPT and --tokens IDS");

  const std::string path = model.resolve(false);
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  int64_t T = 0, V = 0;
  if (whisper::is_whisper_model(path)) {
    check(!tokens_arg.empty(), "a Whisper model takes token ids (--tokens IDS), not a prompt");
    tokens = parse_token_list(tokens_arg);
    check(!tokens.empty(), "the token list is empty");
    logits = whisper_logits(path, audio_path, tokens, model.threads, model.device, &V);
    T = static_cast<int64_t>(tokens.size());
  } else {
    check(audio_path.empty(), "--audio needs a Whisper model");
    check(vision.any() || vision.mmproj.empty(), "--mmproj needs an --image");
    if (vision.any()) vision.from_model(model.model);
    SessionOptions so = model.session_options();
    vision.plan(so);
    std::vector<float> embeddings;
    if (vision.any()) {
      const int64_t n_embd = llm::LLM::load(path)->config().n_embd;
      const Tensor features[] = {vision.encode(vision.image, n_embd, model.threads)};
      MultimodalPrompt mp;
      if (!tokens_arg.empty()) {
        // -1 marks the image's place (as the JSON output shows image positions).
        std::vector<int32_t> ids;
        std::string list = tokens_arg;
        std::replace(list.begin(), list.end(), ',', ' ');
        std::istringstream items(list);
        for (std::string item; items >> item;)
          ids.push_back(item == "-1" ? llm::kEmbeddingToken : parse_token_list(item)[0]);
        mp = splice_images(ids, llm::kEmbeddingToken, -1, features, n_embd);
      } else {
        const auto tok = text::Tokenizer::from_gguf(llm::open_llm_file(path));
        mp = build_multimodal_prompt(tok, prompt, !no_bos && tok.add_bos(), !no_special, features,
                                     n_embd);
      }
      tokens = std::move(mp.tokens);
      embeddings = std::move(mp.embeddings);
    } else if (!tokens_arg.empty()) {
      tokens = parse_token_list(tokens_arg);
    } else {
      const auto tok = text::Tokenizer::from_gguf(llm::open_llm_file(path));
      tokens = tok.encode(prompt, /*add_special=*/!no_bos, /*parse_special=*/!no_special);
    }
    check(!tokens.empty(), "the prompt has no tokens");
    // The context only needs the prompt (unless asked for more, which must still hold it).
    if (so.n_ctx == 0) so.n_ctx = static_cast<int64_t>(tokens.size());
    auto session = LLMSession::open(path, so);
    T = static_cast<int64_t>(tokens.size());
    V = session->n_vocab();
    for (int32_t t : tokens)
      check(t < V && (t >= 0 || (t == llm::kEmbeddingToken && !embeddings.empty())), "token id ", t,
            " is outside the vocabulary of ", V);
    logits.resize(static_cast<size_t>(T * V));
    session->eval_all_logits(tokens, logits.data(),
                             embeddings.empty() ? nullptr : embeddings.data());
  }
  npy::write_f32(out, logits.data(), {T, V});
  if (json) {
    std::printf("{\"tokens\": [");
    for (int64_t i = 0; i < T; ++i) std::printf("%s%d", i ? ", " : "", tokens[i]);
    std::printf("], \"shape\": [%lld, %lld], \"output\": \"%s\"}\n", static_cast<long long>(T),
                static_cast<long long>(V), out.c_str());
  } else {
    std::printf("tokens:");
    for (int32_t t : tokens) std::printf(" %d", t);
    std::printf("\nwrote %s: float32 [%lld, %lld]\n", out.c_str(), static_cast<long long>(T),
                static_cast<long long>(V));
  }
  return 0;
}

const Registration reg(
    {.name = "logits",
     .summary = "write an LLM's (or Whisper decoder's) logits for tokens as .npy",
     .run = run,
     .order = 45});

}  // namespace
}  // namespace eight::cli
