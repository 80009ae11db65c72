// libFuzzer target for BERT embedding GGUFs (models/bert) and the tokenizer paths they and chat
// prompts take: any input must load or throw eight::Error — no crash, no sanitizer report, no
// allocation beyond what the input justifies. A file that loads is run on a few tokens and its
// tokenizer on text taken from the input itself: raw encoding with and without special-token
// parsing, and the chat path (protect_special, then encode_chat).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "models/bert/bert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    auto f = eight::gguf::File::parse(bytes, "fuzz.gguf");
    const auto m = eight::bert::Model::from_file(std::move(f));
    const auto& tok = m->tokenizer();
    const std::string text(reinterpret_cast<const char*>(data) + size / 2, size - size / 2);
    for (bool special : {false, true}) (void)tok.encode(text.substr(0, 512), true, special);
    (void)tok.encode_chat(tok.protect_special(text.substr(0, 512)), true);
    static eight::ThreadPool pool(1);
    std::vector<int32_t> ids = tok.encode("hello world", true, false);
    if (static_cast<int64_t>(ids.size()) > m->config().n_ctx) ids.resize(m->config().n_ctx);
    if (!ids.empty() && m->config().n_embd * m->config().n_ff < (int64_t{1} << 24))
      (void)m->embed(ids, pool);
  } catch (const eight::Error&) {
  }
  return 0;
}
