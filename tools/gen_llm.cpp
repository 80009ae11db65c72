// gen_llm: writes a random-weight GGUF LLM with real shapes and metadata (llama, phi3, qwen2), for
// tests and benchmarks: e.g. a TinyLlama-1.1B-shaped Q4_K_M, or a Mistral-7B-shaped file for the
// planner. Weights are N(0, 0.02) (norms 1.0), seeded and reproducible; the vocabulary comes from
// an existing GGUF (--vocab) or is a built-in byte vocabulary. Tensors are generated and quantized
// a chunk of rows at a time through the project's quantizer and GGUF writer, so a 7B-shaped file
// never needs 7B floats in memory.
//
//   gen_llm --preset tinyllama-1.1b --type Q4_K_M --out tiny.gguf
//   gen_llm --arch qwen2 --layers 2 --embd 256 --heads 4 --kv-heads 2 --ffn 512 --out q.gguf
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/quantize_model.h"

using namespace eight;

namespace {

struct Shape {
  std::string arch = "llama";
  int layers = 2, embd = 256, heads = 4, kv_heads = 0, ffn = 512, vocab = 0,
      ctx = 2048;  // kv 0: = heads
  float rope_base = 10000, eps = 1e-5f, rope_linear = 0;
};

struct Preset {
  const char* name;
  Shape shape;
};

// Dimensions from ../shared/reference/models.md (HF configs).
const Preset kPresets[] = {
    {"tinyllama-1.1b", {"llama", 22, 2048, 32, 4, 5632, 32000, 2048, 10000, 1e-5f, 0}},
    {"mistral-7b", {"llama", 32, 4096, 32, 8, 14336, 32000, 32768, 1e6f, 1e-5f, 0}},
    {"llama3-8b", {"llama", 32, 4096, 32, 8, 14336, 128256, 8192, 500000, 1e-5f, 0}},
    {"phi3-mini", {"phi3", 32, 3072, 32, 32, 8192, 32064, 4096, 10000, 1e-5f, 0}},
    {"qwen2-7b", {"qwen2", 28, 3584, 28, 4, 18944, 152064, 32768, 1e6f, 1e-6f, 0}},
    {"deepseek-coder-6.7b", {"llama", 32, 4096, 32, 32, 11008, 32256, 16384, 100000, 1e-6f, 4}},
};

void usage() {
  std::printf(
      "usage: gen_llm --out FILE [--preset NAME | --arch A --layers N --embd N --heads N\n"
      "               --kv-heads N --ffn N --ctx N --vocab-size N] [--type MIX] [--seed N]\n"
      "               [--vocab FILE.gguf] [--chat-template FILE.jinja] [--tied] [--pure]\n"
      "               [-t N]\n\n"
      "presets: ");
  for (const auto& p : kPresets) std::printf("%s ", p.name);
  std::printf("\narchs: llama phi3 qwen2\nmixes: %s\n", quant_mix_names().c_str());
}

// Deterministic per-row random stream (splitmix64), so the output does not depend on chunking
// or thread count.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>((next() >> 40) + 1) * (1.0f / 16777217.0f); }
};

// Box-Muller normal samples, sigma `std`, into y[0..n).
void fill_normal(uint64_t seed, float std, float* y, int64_t n) {
  Rng r{seed};
  for (int64_t i = 0; i < n; i += 2) {
    const float u1 = r.uniform(), u2 = r.uniform();
    const float rad = std * std::sqrt(-2.0f * std::log(u1));
    y[i] = rad * std::cos(6.2831853f * u2);
    if (i + 1 < n) y[i + 1] = rad * std::sin(6.2831853f * u2);
  }
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  float fill;               // > 0: constant (norms); 0: N(0, 0.02)
};

std::vector<TensorSpec> tensor_specs(const Shape& s, bool tied) {
  const int64_t hd = s.embd / s.heads, q = int64_t{s.heads} * hd, kv = int64_t{s.kv_heads} * hd;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", {s.embd, s.vocab}, 0});
  for (int i = 0; i < s.layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {s.embd}, 1});
    if (s.arch == "phi3") {
      t.push_back({b + "attn_qkv.weight", {s.embd, q + 2 * kv}, 0});  // q ‖ k ‖ v
    } else {
      t.push_back({b + "attn_q.weight", {s.embd, q}, 0});
      t.push_back({b + "attn_k.weight", {s.embd, kv}, 0});
      t.push_back({b + "attn_v.weight", {s.embd, kv}, 0});
      if (s.arch == "qwen2") {
        t.push_back({b + "attn_q.bias", {q}, 0});
        t.push_back({b + "attn_k.bias", {kv}, 0});
        t.push_back({b + "attn_v.bias", {kv}, 0});
      }
    }
    t.push_back({b + "attn_output.weight", {q, s.embd}, 0});
    t.push_back({b + "ffn_norm.weight", {s.embd}, 1});
    if (s.arch == "phi3") {
      t.push_back({b + "ffn_up.weight", {s.embd, 2 * int64_t{s.ffn}}, 0});  // gate ‖ up
    } else {
      t.push_back({b + "ffn_gate.weight", {s.embd, s.ffn}, 0});
      t.push_back({b + "ffn_up.weight", {s.embd, s.ffn}, 0});
    }
    t.push_back({b + "ffn_down.weight", {s.ffn, s.embd}, 0});
  }
  t.push_back({"output_norm.weight", {s.embd}, 1});
  if (!tied) t.push_back({"output.weight", {s.embd, s.vocab}, 0});
  return t;
}

// tokenizer.* from a GGUF, padded with unused tokens up to n_vocab (as converters pad); returns
// the vocabulary size to use.
int copy_vocab(const std::string& path, int n_vocab, gguf::Writer& w) {
  const gguf::File f = gguf::File::open(path);
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  check(tokens && tokens->is_array(), "[gen_llm] '", path, "' has no tokenizer.ggml.tokens");
  const int n_tok = static_cast<int>(tokens->size());
  const int n = std::max(n_vocab, n_tok);
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    if (n == n_tok || !value.is_array() || value.size() != static_cast<size_t>(n_tok)) {
      w.set(key, value);
      continue;
    }
    if (key == "tokenizer.ggml.tokens") {
      std::vector<std::string> v = value.as_strings();
      for (int i = n_tok; i < n; ++i) v.push_back("[PAD" + std::to_string(i) + "]");
      w.set(key, gguf::Value::string_array(v));
    } else if (key == "tokenizer.ggml.scores") {
      std::vector<float> v = value.as_f32s();
      v.resize(n, 0.f);
      w.set(key, gguf::Value::f32_array(v));
    } else if (key == "tokenizer.ggml.token_type") {
      std::vector<int32_t> v;
      for (int64_t x : value.as_i64s()) v.push_back(static_cast<int32_t>(x));
      v.resize(n, 5);  // UNUSED
      w.set(key, gguf::Value::i32_array(v));
    } else {
      w.set(key, value);
    }
  }
  return n;
}

// A SentencePiece-style vocabulary of <unk>, <s>, </s> and the 256 byte tokens, padded with
// unused tokens to n_vocab.
void builtin_vocab(int n_vocab, gguf::Writer& w) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);  // BYTE
  }
  for (int i = static_cast<int>(tokens.size()); i < n_vocab; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(5);
  }
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(std::vector<float>(tokens.size(), 0.f)));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
}

int parse_int(const char* flag, const char* v) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  check(end && *end == 0 && x >= 0 && x < (1L << 31), "[gen_llm] ", flag,
        " needs a non-negative integer, got '", v, "'");
  return static_cast<int>(x);
}

int run(int argc, char** argv) {
  Shape s;
  std::string out, mix_name = "F16", vocab_path, template_path;
  uint64_t seed = 42;
  bool tied = false, pure = false;
  int threads = 0;
  // A preset sets every dimension, so it applies first and the other options refine it, in
  // whatever order they were given.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "--preset") continue;
    const Preset* p = nullptr;
    for (const auto& e : kPresets)
      if (e.name == std::string(argv[i + 1])) p = &e;
    check(p != nullptr, "[gen_llm] unknown preset '", argv[i + 1], "' (see --help)");
    s = p->shape;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage();
      return 0;
    }
    if (a == "--tied" || a == "--pure") {
      (a == "--tied" ? tied : pure) = true;
      continue;
    }
    check(i + 1 < argc, "[gen_llm] ", a, " needs a value");
    const char* v = argv[++i];
    if (a == "--out")
      out = v;
    else if (a == "--type")
      mix_name = v;
    else if (a == "--vocab")
      vocab_path = v;
    else if (a == "--chat-template")
      template_path = v;
    else if (a == "--seed")
      seed = static_cast<uint64_t>(parse_int("--seed", v));
    else if (a == "-t" || a == "--threads")
      threads = parse_int("--threads", v);
    else if (a == "--arch")
      s.arch = v;
    else if (a == "--layers")
      s.layers = parse_int("--layers", v);
    else if (a == "--embd")
      s.embd = parse_int("--embd", v);
    else if (a == "--heads")
      s.heads = parse_int("--heads", v);
    else if (a == "--kv-heads")
      s.kv_heads = parse_int("--kv-heads", v);
    else if (a == "--ffn")
      s.ffn = parse_int("--ffn", v);
    else if (a == "--ctx")
      s.ctx = parse_int("--ctx", v);
    else if (a == "--vocab-size")
      s.vocab = parse_int("--vocab-size", v);
    else if (a == "--preset")
      continue;  // applied above
    else
      fail("[gen_llm] unknown option '", a, "' (see --help)");
  }
  check(!out.empty(), "[gen_llm] --out FILE is required (see --help)");
  if (s.kv_heads == 0) s.kv_heads = s.heads;
  check(s.arch == "llama" || s.arch == "phi3" || s.arch == "qwen2", "[gen_llm] unknown arch '",
        s.arch, "'; expected llama, phi3 or qwen2");
  check(s.layers > 0 && s.embd > 0 && s.heads > 0 && s.kv_heads > 0 && s.ffn > 0,
        "[gen_llm] layers, embd, heads, kv-heads and ffn must be positive");
  check(s.embd % s.heads == 0 && s.heads % s.kv_heads == 0, "[gen_llm] embd ", s.embd,
        " must divide by heads ", s.heads, " and heads by kv-heads ", s.kv_heads);
  const QuantMix* mix = find_quant_mix(mix_name);
  check(mix != nullptr, "[gen_llm] unknown --type '", mix_name, "'; expected one of ",
        quant_mix_names());

  gguf::Writer w;
  const std::string p = s.arch + ".";
  w.set("general.architecture", gguf::Value::string(s.arch));
  w.set("general.name", gguf::Value::string("eight random " + s.arch));
  w.set("general.quantization_version", gguf::Value::u32(2));
  w.set("general.file_type", gguf::Value::u32(mix->file_type));
  if (!vocab_path.empty()) {
    s.vocab = copy_vocab(vocab_path, s.vocab, w);
  } else {
    s.vocab = std::max(s.vocab, 259);  // at least the specials and the byte tokens
    builtin_vocab(s.vocab, w);
  }
  if (!template_path.empty()) {  // a family's template over a vocabulary that lacks it
    std::ifstream in(template_path, std::ios::binary);
    check(in.good(), "[gen_llm] cannot open '", template_path, "'");
    std::ostringstream text;
    text << in.rdbuf();
    w.set("tokenizer.chat_template", gguf::Value::string(text.str()));
  }
  w.set(p + "vocab_size", gguf::Value::u32(s.vocab));
  w.set(p + "context_length", gguf::Value::u32(s.ctx));
  w.set(p + "embedding_length", gguf::Value::u32(s.embd));
  w.set(p + "block_count", gguf::Value::u32(s.layers));
  w.set(p + "feed_forward_length", gguf::Value::u32(s.ffn));
  w.set(p + "attention.head_count", gguf::Value::u32(s.heads));
  w.set(p + "attention.head_count_kv", gguf::Value::u32(s.kv_heads));
  w.set(p + "attention.layer_norm_rms_epsilon", gguf::Value::f32(s.eps));
  w.set(p + "rope.freq_base", gguf::Value::f32(s.rope_base));
  w.set(p + "rope.dimension_count", gguf::Value::u32(s.embd / s.heads));
  if (s.rope_linear > 0) {
    w.set(p + "rope.scaling.type", gguf::Value::string("linear"));
    w.set(p + "rope.scaling.factor", gguf::Value::f32(s.rope_linear));
  }

  const std::vector<TensorSpec> specs = tensor_specs(s, tied);
  std::vector<QuantTensorDesc> descs;
  for (const auto& t : specs) descs.push_back({t.name, t.ne, DType::F32});
  QuantModelInfo info{s.arch, s.layers, s.heads, s.kv_heads, 0, !tied};
  const auto plan = plan_quantization(*mix, info, descs, pure);

  ThreadPool pool(threads > 0 ? threads : default_thread_count());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& t = specs[i];
    const DType to = plan[i].to;
    Dims shape(t.ne.rbegin(), t.ne.rend());  // PyTorch order
    const int64_t n_per_row = t.ne[0], n_rows = shape.product() / n_per_row;
    const uint64_t tensor_seed = seed * 1000003ull + i;
    w.add_tensor(t.name, to, shape, [=, &pool](uint8_t* dst) {
      const RowSource rows = [&](int64_t row0, int64_t n, float* y) {
        if (t.fill > 0) {
          std::fill(y, y + n * n_per_row, t.fill);
          return;
        }
        pool.parallel_for(n, [&](int64_t r, int) {
          fill_normal((tensor_seed << 32) ^ static_cast<uint64_t>(row0 + r), 0.02f,
                      y + r * n_per_row, n_per_row);
        });
      };
      quantize_streaming(to, n_rows, n_per_row, rows, dst, &pool);
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  int64_t params = 0;
  for (const auto& t : descs) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    params += n;
  }
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  w.write(out, [&](size_t done, size_t total) {
    if (tty) std::fprintf(stderr, "\r[%zu/%zu] %-40s", done, total, specs[done - 1].name.c_str());
  });
  if (tty) std::fprintf(stderr, "\n");
  std::printf("wrote %s: %s, %d layers, %.3f B parameters, %s, %.1f s\n", out.c_str(),
              s.arch.c_str(), s.layers, params / 1e9, std::string(mix->name).c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "gen_llm: error: %s\n", e.what());
    return 1;
  }
}
