// `eight tokenize`: prints the token ids a model's tokenizer gives a text.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "models/llm/llm_hf.h"
#include "text/tokenizer.h"
#include "text/unigram.h"

namespace eight::cli {
namespace {

std::string read_text(const ArgParser& p) {
  if (p.positionals().empty() || p.positionals()[0] == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    return s.str();
  }
  return p.positionals()[0];
}

std::vector<std::string> read_batch(const std::string& batch) {
  std::ifstream in(batch, std::ios::binary);
  check(in.good(), "[tokenize] cannot open '", batch, "'");
  nlohmann::json texts;
  try {
    texts = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("[tokenize] ", batch, " is not valid JSON: ", e.what());
  }
  check(texts.is_array(), "[tokenize] ", batch, " must hold a JSON array of strings");
  std::vector<std::string> out;
  for (const auto& t : texts) {
    check(t.is_string(), "[tokenize] ", batch, ": every entry must be a string");
    out.push_back(t.get<std::string>());
  }
  return out;
}

void print_json(const nlohmann::json& j) {
  // A piece can be part of a UTF-8 character; show such bytes as U+FFFD rather than fail.
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", s.c_str());
}

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += cat(i ? " " : "", ids[i]);
  std::printf("%s\n", line.c_str());
}

// T5-family tokenizers: spiece.model / tokenizer.json; add_eos appends </s> as T5 does.
int run_unigram(const std::string& model, const std::string& batch, bool json, bool add_eos,
                const ArgParser& p) {
  const auto tok = text::UnigramTokenizer::open(model);
  if (!batch.empty()) {
    for (const std::string& t : read_batch(batch)) {
      const std::vector<int32_t> ids = tok.encode(t, add_eos);
      print_json({{"ids", ids}, {"text", tok.decode(ids)}});
    }
    return 0;
  }
  const std::vector<int32_t> ids = tok.encode(read_text(p), add_eos);
  if (json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok.piece(id));
    print_json({{"ids", ids}, {"pieces", pieces}});
    return 0;
  }
  print_ids(ids);
  return 0;
}

int run(int argc, char** argv) {
  ArgParser p("tokenize", "-m FILE [TEXT | -]",
              "Tokenize a text with a model's tokenizer and print the ids on one line.");
  std::string model, batch;
  bool no_bos = false, special = true, no_special = false, json = false;
  p.option("-m,--model", &model, "FILE",
           "GGUF model (or vocabulary-only GGUF), or a unigram SentencePiece tokenizer: "
           "spiece.model, a Unigram tokenizer.json or a T5 directory holding either");
  p.flag("--no-bos", &no_bos, "do not add BOS/EOS even when the model asks for them");
  p.flag("--special", &special,
         "parse special-token text (e.g. <|im_end|>) as llama.cpp does (the default)");
  p.flag("--no-parse-special", &no_special, "tokenize special-token text as plain text");
  p.flag("--json", &json, "print {\"ids\": [...], \"pieces\": [...]} instead");
  p.option("--batch", &batch, "FILE",
           "tokenize each string of a JSON array; print one JSON line per string with its ids "
           "and the decoded text");
  p.positional_count(0, 1);
  p.epilog("TEXT '-' or no TEXT reads standard input (bytes as they are, no newline stripped).");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!model.empty(), "[tokenize] -m FILE is required");
  special = !no_special;
  if (text::UnigramTokenizer::handles(model)) return run_unigram(model, batch, json, !no_bos, p);
  if (!batch.empty()) {
    auto tok = text::Tokenizer::from_gguf(llm::open_llm_file(model));
    for (const std::string& t : read_batch(batch)) {
      const std::vector<int32_t> ids = tok.encode(t, !no_bos, special);
      print_json({{"ids", ids}, {"text", tok.decode(ids, special)}});
    }
    return 0;
  }
  const std::string text = read_text(p);
  auto tok = text::Tokenizer::from_gguf(llm::open_llm_file(model));
  const std::vector<int32_t> ids = tok.encode(text, !no_bos, special);
  if (json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok.token_to_piece(id, true));
    print_json({{"ids", ids}, {"pieces", pieces}});
    return 0;
  }
  print_ids(ids);
  return 0;
}

const Registration reg(
    {.name = "tokenize", .summary = "print the token ids of a text", .run = run, .order = 600});

}  // namespace
}  // namespace eight::cli
