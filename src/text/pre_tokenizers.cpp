// The byte-level BPE pre-tokenizers by their tokenizer.ggml.pre name: the names llama.cpp's
// convert_hf_to_gguf.py writes (it recognizes a model's tokenizer by hashing its output and names
// it), each with the regex sequence of that model's tokenizer.json (Split/ByteLevel/Digits
// pre-tokenizers written as regexes, applied in order; matches and gaps both kept).
//
// A name whose tokenizer needs more than regexes over GPT-2's byte alphabet (raw UTF-8 BPE,
// custom character classes) is refused by name: guessing GPT-2's split for it would give wrong
// ids with no sign of it. Only names nobody has registered fall back to GPT-2, with a warning.
#include <algorithm>
#include <array>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "text/tokenizer_impl.h"

namespace eight::text {
namespace {

// GPT-2's ByteLevel split (tiktoken r50k/p50k; tokenizers' ByteLevel(use_regex=true)).
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 (tiktoken cl100k_base): contractions in any case, 1-3 digit groups.
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: cl100k's split with single digits.
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-4o (tiktoken o200k_base): case-aware words with trailing contractions, '/' kept with
// punctuation.
constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Mistral's Tekken (Nemo, Pixtral): o200k's word split without contractions, single digits.
constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// BLOOM, Poro, GPT-3 Finnish, Viking: runs of anything but whitespace and sentence punctuation.
constexpr std::string_view kBloom = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
// DeepSeek V3 (and Hunyuan dense, JoyAI, HY v4): 1-3 digits, CJK runs, then words and marks.
constexpr std::string_view kDeepseek3Words =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Family {
  std::vector<std::string_view> names;
  std::vector<std::string_view> patterns;
  bool ignore_merges = false;  // a pre-token that is itself in the vocabulary is one token
};

const std::vector<Family>& families() {
  static const std::vector<Family> table = {
      {{"gpt-2",      "gpt2",        "default",         "phi-2",       "olmo",     "mpt",
        "jais",       "trillion",    "granite-docling", "jina-es",     "jina-de",  "jina-v2-es",
        "jina-v2-de", "jina-v1-en",  "jina-v2-code",    "roberta-bpe", "gigachat", "a.x-4.0",
        "mellum",     "modern-bert", "exaone4"},
       {kGpt2}},
      {{"llama3", "llama-bpe", "llama-v3", "falcon3", "falcon-h1", "midm-2.0", "lfm2",
        "jina-v5-nano"},
       {kLlama3},
       true},
      {{"dbrx", "smaug-bpe", "chatglm-bpe"}, {kLlama3}},
      {{"glm4", "glm5"}, {kLlama3}, true},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan", "solar-open", "kormo",
        "f2llmv2"},
       {kQwen2}},
      {{"grok-2"}, {kQwen2}},
      // Digits one by one, then GPT-2's split (tokenizer.json: Digits(individual_digits) +
      // ByteLevel).
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b",
        "mellum2"},
       {R"(\p{N})", kGpt2}},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}},
      {{"tekken", "pixtral"}, {kTekken}, true},
      {{"bloom", "poro-chat", "gpt3-finnish"}, {kBloom}},
      {{"viking"}, {kBloom, R"(\p{N})"}},
      {{"qwen35"},
       {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {{"seed-coder"},
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"},
       {R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"}},
      {{"ufakzeka"},
       {R"([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {{"jais-2"},
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})"}},
      {{"tiny_aya", "cohere2moe"}, {R"(\d{1,3}(?=(?:\d{3})*\b))", kGpt4o}},
      {{"minicpm5"},
       {R"(\p{N}{1,3})",
        R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       true},
      {{"exaone-moe"},
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)"}},
      {{"laguna"}, {R"([^\n]+|[\n]+)", kQwen2}},
      {{"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
       {R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)", kDeepseek3Words}},
      {{"spark2_5"},
       {R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)",
        R"(\p{N})"}},
      {{"youtu"},
       {R"([가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+)",
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       true},
      // Falcon: Punctuation(contiguous), ByteLevel, Digits, then 3-digit groups.
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}},
      {{"chameleon"},
       {R"(<sentinel:[0-9]+>)", R"((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)", R"(([\t\n]|    |  ))",
        R"(\p{N})", R"([\p{P}!-/:-@\[-`{-~])", kGpt2}},
      {{"deepseek-coder"},
       {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N})"}},
      {{"deepseek-llm"},
       {R"([\r\n])",
        // Letters of the cased scripts, as DeepSeek's tokenizer.json lists them; the Greek range
        // ends PCRE2 would see out of order are written as escapes.
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-"
        "ᏽᲐ-"
        "ᲺᲽ-"
        "Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-"
        "ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-"
        "ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-"
        "𐑏𐒰-"
        "𐓓𐓘-"
        "𐓻𐲀-𐲲𐳀-"
        "𐳲𑢠-𑣟𞤀-𞥃]+",
        R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+$)", R"([一-龥ࠀ-一가-퟿]+)",
        R"(\p{N}+)"}},
  };
  return table;
}

// seed-coder, jais-2, minicpm5 and exaone-moe spell their contractions case by case (ASCII only),
// as llama.cpp's copies of their tokenizer.json regexes do.

// Registered names whose tokenizers are not regexes over GPT-2's byte alphabet.
constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kUnsupported = {{
    {"gemma4", "BPE over raw UTF-8 with escaped whitespace, not byte-level"},
    {"granite-embed-multi-311m", "BPE over raw UTF-8 with escaped whitespace, not byte-level"},
    {"sarvam-moe", "BPE over raw UTF-8 with escaped whitespace, not byte-level"},
    {"whitespace", "a whitespace split over raw UTF-8, not byte-level"},
    {"kimi-k2", "tiktoken with a Han-script split eight does not implement"},
    {"afmoe", "a custom digit class (\\p{AFMoE_digits}) outside any regex engine"},
    {"superbpe", "zero-width digit-group splits eight's splitter does not make"},
    {"granite-embed-multi-97m", "a pre-tokenizer eight has not checked against its tokenizer"},
}};

const Family* find_family(std::string_view pre) {
  for (const Family& f : families())
    if (std::find(f.names.begin(), f.names.end(), pre) != f.names.end()) return &f;
  return nullptr;
}

}  // namespace

std::vector<std::string> pre_tokenizer_patterns(const std::string& pre) {
  if (const Family* f = find_family(pre)) return {f->patterns.begin(), f->patterns.end()};
  for (const auto& [name, why] : kUnsupported)
    if (pre == name)
      fail("[tokenizer] tokenizer.ggml.pre '", pre, "' is not supported: ", why,
           "; GPT-2's split would give wrong token ids");
  log_warn("[tokenizer] unknown tokenizer.ggml.pre '", pre,
           "': using GPT-2's pre-tokenizer regex (ids may differ from the model's tokenizer)");
  return {std::string(kGpt2)};
}

bool pre_tokenizer_ignores_merges(const std::string& pre) {
  const Family* f = find_family(pre);
  return f != nullptr && f->ignore_merges;
}

std::vector<std::string_view> pre_tokenize(const std::string& pre, std::string_view text) {
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& pat : pre_tokenizer_patterns(pre)) {
    const Regex re(pat);
    next.clear();
    for (auto p : pieces) re.split(p, next);
    pieces.swap(next);
  }
  return pieces;
}

std::vector<std::string> known_pre_tokenizers() {
  std::vector<std::string> out;
  for (const Family& f : families())
    for (std::string_view n : f.names) out.emplace_back(n);
  return out;
}

}  // namespace eight::text
