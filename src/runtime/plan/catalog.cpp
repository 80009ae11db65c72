#include "runtime/plan/catalog.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace eight {

namespace detail {
// Generated at build time from data/catalog.json (cmake/embed_file.cmake).
extern const unsigned char catalog_json_data[];
extern const size_t catalog_json_size;
}  // namespace detail

namespace {

using json = nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Field access with errors that name the place: "[catalog] <origin>: model 'x': field 'y' ...".
struct Reader {
  std::string where;

  const json& field(const json& j, const char* key) const {
    check(j.is_object(), "[catalog] ", where, ": expected an object");
    const auto it = j.find(key);
    check(it != j.end(), "[catalog] ", where, ": missing field '", key, "'");
    return *it;
  }
  std::string str(const json& j, const char* key) const {
    const json& v = field(j, key);
    check(v.is_string(), "[catalog] ", where, ": field '", key, "' must be a string");
    return v.get<std::string>();
  }
  std::string str_or(const json& j, const char* key, const std::string& fallback) const {
    return j.contains(key) ? str(j, key) : fallback;
  }
  int64_t integer(const json& j, const char* key) const {
    const json& v = field(j, key);
    check(v.is_number_integer() && v.get<int64_t>() >= 0, "[catalog] ", where, ": field '", key,
          "' must be a non-negative integer");
    return v.get<int64_t>();
  }
  int64_t integer_or(const json& j, const char* key, int64_t fallback) const {
    return j.contains(key) ? integer(j, key) : fallback;
  }
  bool boolean_or(const json& j, const char* key, bool fallback) const {
    if (!j.contains(key)) return fallback;
    check(j[key].is_boolean(), "[catalog] ", where, ": field '", key, "' must be true or false");
    return j[key].get<bool>();
  }
  // Decimal gigabytes to bytes.
  int64_t gb(const json& v, const std::string& key) const {
    check(v.is_number() && v.get<double>() >= 0 && v.get<double>() < 1e4, "[catalog] ", where,
          ": size '", key, "' must be a number of GB in [0, 10000)");
    return static_cast<int64_t>(v.get<double>() * 1e9 + 0.5);
  }
  std::vector<std::string> strings(const json& j, const char* key) const {
    std::vector<std::string> out;
    if (!j.contains(key)) return out;
    check(j[key].is_array(), "[catalog] ", where, ": field '", key, "' must be an array");
    for (const auto& v : j[key]) {
      check(v.is_string(), "[catalog] ", where, ": field '", key, "' must hold strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
};

std::string hf_url(const std::string& repo, const std::string& file) {
  return "https://huggingface.co/" + repo + "/resolve/main/" + file;
}

Source parse_source(const Reader& r, const json& j, const std::string& quant) {
  Source s;
  s.quant = r.str_or(j, "quant", quant);
  s.component = r.str_or(j, "component", "");
  s.repo = r.str_or(j, "repo", "");
  s.file = r.str(j, "file");
  s.url = r.str_or(j, "url", "");
  check(!s.repo.empty() || !s.url.empty(), "[catalog] ", r.where, ": source '", s.file,
        "' needs a repo or a url");
  if (s.url.empty()) s.url = hf_url(s.repo, s.file);
  s.verified = r.boolean_or(j, "verified", false);
  s.note = r.str_or(j, "note", "");
  s.pypi = r.str_or(j, "pypi", "");
  return s;
}

LLMHparams parse_hparams(const Reader& r, const json& j) {
  LLMHparams h;
  h.n_layer = r.integer(j, "n_layer");
  h.n_embd = r.integer(j, "n_embd");
  h.n_head = r.integer(j, "n_head");
  h.n_head_kv = r.integer(j, "n_head_kv");
  h.head_dim = r.integer(j, "head_dim");
  h.n_ff = r.integer(j, "n_ff");
  h.n_vocab = r.integer(j, "n_vocab");
  h.n_ctx_train = r.integer(j, "n_ctx_train");
  h.tied_embeddings = r.boolean_or(j, "tied_embeddings", false);
  h.qkv_bias = r.boolean_or(j, "qkv_bias", false);
  check(h.n_layer > 0 && h.n_embd > 0 && h.n_head > 0 && h.n_head_kv > 0 && h.head_dim > 0 &&
            h.n_ff > 0 && h.n_vocab > 0 && h.n_ctx_train > 0,
        "[catalog] ", r.where, ": every LLM hyperparameter must be positive");
  check(h.n_head % h.n_head_kv == 0, "[catalog] ", r.where, ": n_head ", h.n_head,
        " is not a multiple of n_head_kv ", h.n_head_kv);
  return h;
}

Component parse_component(const Reader& parent, const json& j) {
  Component c;
  Reader r{
      parent.where + " component '" +
      (j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : std::string("?")) +
      "'"};
  c.id = r.str(j, "id");
  c.role = r.str_or(j, "role", "");
  c.params = r.integer_or(j, "params", 0);
  const json& sizes = r.field(j, "gb");
  check(sizes.is_object() && !sizes.empty(), "[catalog] ", r.where,
        ": 'gb' must map precisions to sizes");
  for (const auto& [k, v] : sizes.items()) c.sizes.emplace_back(k, r.gb(v, k));
  c.default_precision = r.str_or(j, "default", c.sizes.front().first);
  check(c.size(c.default_precision).has_value(), "[catalog] ", r.where, ": default precision '",
        c.default_precision, "' has no size");
  if (j.contains("work_gb")) c.work_bytes = r.gb(j["work_gb"], "work_gb");
  c.work_note = r.str_or(j, "work_note", "");
  c.main = r.boolean_or(j, "main", false);
  c.offloadable = r.boolean_or(j, "offloadable", false);
  c.streamable = r.boolean_or(j, "streamable", false);
  c.optional = r.boolean_or(j, "optional", false);
  c.estimates = r.strings(j, "estimate");
  if (j.contains("source")) c.source = parse_source(r, j["source"], c.default_precision);
  if (c.source && c.source->component.empty()) c.source->component = c.id;
  return c;
}

Variant parse_variant(const Reader& parent, const json& j, ModelKind kind) {
  Variant v;
  Reader r{parent.where + " variant '" +
           (j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "?") + "'"};
  v.id = r.str(j, "id");
  v.params = r.integer_or(j, "params", 0);
  v.min_ctx = r.integer_or(j, "min_ctx", 0);
  if (j.contains("hparams")) v.hparams = parse_hparams(r, j["hparams"]);
  if (j.contains("quants")) {
    const json& q = j["quants"];
    check(q.is_object(), "[catalog] ", r.where, ": 'quants' must be an object");
    for (const auto& [name, spec] : q.items()) {
      QuantFile f;
      f.quant = name;
      f.bytes = r.gb(r.field(spec, "gb"), name);
      if (spec.contains("file")) f.source = parse_source(r, spec, name);
      f.note = r.str_or(spec, "note", "");
      v.quants.push_back(std::move(f));
    }
  }
  if (j.contains("components"))
    for (const auto& c : j["components"]) v.components.push_back(parse_component(r, c));
  if (j.contains("stages"))
    for (const auto& s : j["stages"]) {
      Stage st{r.str(s, "name"), r.strings(s, "components")};
      for (const auto& id : st.components)
        check(v.find_component(id) != nullptr, "[catalog] ", r.where, ": stage '", st.name,
              "' names unknown component '", id, "'");
      v.stages.push_back(std::move(st));
    }
  if (j.contains("sources"))
    for (const auto& s : j["sources"]) v.sources.push_back(parse_source(r, s, ""));
  if (kind == ModelKind::LLM) {
    check(v.hparams.has_value(), "[catalog] ", r.where, ": an LLM needs 'hparams'");
    check(!v.quants.empty(), "[catalog] ", r.where, ": an LLM needs 'quants'");
  } else {
    check(v.main_component() != nullptr, "[catalog] ", r.where,
          ": a pipeline needs one component marked main");
    check(!v.stages.empty(), "[catalog] ", r.where, ": a pipeline needs 'stages'");
  }
  return v;
}

CatalogEntry parse_entry(const std::string& origin, const json& j, size_t index,
                         const std::vector<Category>& categories) {
  CatalogEntry e;
  Reader r{origin + ": model #" + std::to_string(index)};
  e.id = r.str(j, "id");
  r.where = origin + ": model '" + e.id + "'";
  e.name = r.str(j, "name");
  e.aliases = r.strings(j, "aliases");
  const std::string kind = r.str(j, "kind");
  check(kind == "llm" || kind == "pipeline", "[catalog] ", r.where, ": kind '", kind,
        "' is not llm or pipeline");
  e.kind = kind == "llm" ? ModelKind::LLM : ModelKind::Pipeline;
  e.architecture = r.str(j, "architecture");
  e.tasks = r.strings(j, "tasks");
  const std::string support = r.str(j, "support");
  check(support == "supported" || support == "planned", "[catalog] ", r.where, ": support '",
        support, "' is not supported or planned");
  e.support = support == "supported" ? Support::Supported : Support::Planned;
  e.notes = r.str_or(j, "notes", "");
  for (const auto& row : r.field(j, "seed_rows")) {
    SeedRow s;
    s.category = r.str(row, "category");
    const auto cat = std::find_if(categories.begin(), categories.end(),
                                  [&](const Category& c) { return c.id == s.category; });
    check(cat != categories.end(), "[catalog] ", r.where, ": unknown category '", s.category, "'");
    s.task = cat->task;
    s.rank = r.str(row, "rank");
    check(s.rank == "must-have" || s.rank == "recommended", "[catalog] ", r.where, ": rank '",
          s.rank, "' is not must-have or recommended");
    s.variant = r.str(row, "variant");
    s.quants = r.strings(row, "quants");
    check(!s.quants.empty(), "[catalog] ", r.where, ": a seed row needs quants");
    s.plan_quant = r.str_or(row, "plan_quant", s.quants.front());
    s.recommended_text = r.str(row, "recommended_text");
    s.usage = r.str(row, "usage");
    s.comments = r.str(row, "comments");
    e.seed_rows.push_back(std::move(s));
  }
  e.role = r.str_or(j, "role", "");
  check(e.role.empty() || e.role == "tiny-default", "[catalog] ", r.where, ": role '", e.role,
        "' is not tiny-default");
  check(!e.seed_rows.empty() || !e.role.empty(), "[catalog] ", r.where,
        ": no seed rows (only a model with a role may be outside the seed list)");
  e.default_quant = r.str_or(j, "recommended_quant", "");
  check(!e.seed_rows.empty() || !e.default_quant.empty(), "[catalog] ", r.where,
        ": a model outside the seed list needs 'recommended_quant'");
  for (const auto& v : r.field(j, "variants")) e.variants.push_back(parse_variant(r, v, e.kind));
  check(!e.variants.empty(), "[catalog] ", r.where, ": no variants");
  e.default_variant = r.str_or(j, "default_variant", e.variants.front().id);
  check(e.find_variant(e.default_variant) != nullptr, "[catalog] ", r.where, ": default_variant '",
        e.default_variant, "' is not one of its variants");
  const auto names = e.variant().quant_names();
  const std::string rec = e.recommended_quant();
  check(std::find(names.begin(), names.end(), rec) != names.end(), "[catalog] ", r.where,
        ": the recommended quant '", rec, "' has no size in the default variant");
  return e;
}

// Edit distance, for "did you mean" suggestions.
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

const char* support_name(Support s) {
  return s == Support::Supported ? "supported" : "planned";
}

std::optional<int64_t> Component::size(std::string_view precision) const {
  for (const auto& [p, b] : sizes)
    if (p == precision) return b;
  return std::nullopt;
}

std::string Component::precision_for(std::string_view quant) const {
  return size(quant) ? std::string(quant) : default_precision;
}

const QuantFile* Variant::find_quant(std::string_view quant) const {
  for (const auto& q : quants)
    if (q.quant == quant) return &q;
  return nullptr;
}

const Component* Variant::find_component(std::string_view id) const {
  for (const auto& c : components)
    if (c.id == id) return &c;
  return nullptr;
}

const Component* Variant::main_component() const {
  for (const auto& c : components)
    if (c.main) return &c;
  return nullptr;
}

std::vector<std::string> Variant::quant_names() const {
  std::vector<std::string> out;
  if (hparams) {
    for (const auto& q : quants) out.push_back(q.quant);
  } else if (const Component* m = main_component()) {
    for (const auto& [p, b] : m->sizes) out.push_back(p);
  }
  return out;
}

bool CatalogEntry::has_task(std::string_view task) const {
  return task.empty() || std::find(tasks.begin(), tasks.end(), task) != tasks.end();
}

bool CatalogEntry::must_have() const {
  return std::any_of(seed_rows.begin(), seed_rows.end(),
                     [](const SeedRow& r) { return r.must_have(); });
}

const Variant& CatalogEntry::variant() const {
  const Variant* v = find_variant(default_variant);
  return v ? *v : variants.front();
}

const Variant* CatalogEntry::find_variant(std::string_view vid) const {
  for (const auto& v : variants)
    if (lower(v.id) == lower(vid)) return &v;
  return nullptr;
}

std::string CatalogEntry::recommended_quant() const {
  return seed_rows.empty() ? default_quant : seed_rows.front().plan_quant;
}

std::vector<const SeedRow*> CatalogEntry::rows_for(std::string_view task) const {
  std::vector<const SeedRow*> out;
  // "speech" is not a seed category: Whisper's row sits under audio generation.
  for (const auto& row : seed_rows)
    if (task.empty() || row.task == task || (task == "speech" && has_task("speech")))
      out.push_back(&row);
  return out;
}

Catalog Catalog::parse(std::string_view json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    fail("[catalog] ", origin, " is not valid JSON: ", e.what());
  }
  Catalog c;
  Reader r{origin};
  c.title_ = r.str_or(j, "title", "");
  for (const auto& cat : r.field(j, "categories")) {
    Category k{r.str(cat, "id"), r.str(cat, "task"), r.str(cat, "title"),
               r.str_or(cat, "note", "")};
    c.categories_.push_back(std::move(k));
  }
  size_t index = 0;
  for (const auto& m : r.field(j, "models"))
    c.models_.push_back(parse_entry(origin, m, index++, c.categories_));
  check(!c.models_.empty(), "[catalog] ", origin, ": no models");
  // Names must resolve to exactly one model.
  std::vector<std::pair<std::string, std::string>> names;
  for (const auto& e : c.models_) {
    names.emplace_back(lower(e.id), e.id);
    for (const auto& a : e.aliases) names.emplace_back(lower(a), e.id);
    for (const auto& v : e.variants) names.emplace_back(lower(v.id), e.id);
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 1; i < names.size(); ++i)
    check(names[i].first != names[i - 1].first || names[i].second == names[i - 1].second,
          "[catalog] ", origin, ": name '", names[i].first, "' is used by both '",
          names[i - 1].second, "' and '", names[i].second, "'");
  return c;
}

const Category* Catalog::find_category(std::string_view id) const {
  for (const auto& c : categories_)
    if (c.id == id) return &c;
  return nullptr;
}

const CatalogEntry* Catalog::find(std::string_view name, const Variant** variant) const {
  const std::string key = lower(name);
  for (const auto& e : models_) {
    const Variant* v = e.find_variant(key);
    bool match = v != nullptr || lower(e.id) == key;
    for (const auto& a : e.aliases) match = match || lower(a) == key;
    if (!match) continue;
    if (variant) *variant = v ? v : &e.variant();
    return &e;
  }
  return nullptr;
}

std::string_view embedded_catalog_json() {
  return {reinterpret_cast<const char*>(detail::catalog_json_data), detail::catalog_json_size};
}

const Catalog& catalog() {
  static const Catalog c = [] {
    const char* path = std::getenv("EIGHT_CATALOG");
    if (!path || !*path) return Catalog::parse(embedded_catalog_json(), "catalog.json (built in)");
    std::ifstream in(path, std::ios::binary);
    check(in.good(), "[catalog] cannot read EIGHT_CATALOG='", path, "'");
    std::stringstream text;
    text << in.rdbuf();
    return Catalog::parse(text.str(), path);
  }();
  return c;
}

std::string normalize_quant(std::string_view quant) {
  std::string q;
  for (char c : quant) q += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (q == "FP16") return "F16";
  if (q == "FP32") return "F32";
  if (q == "Q8") return "Q8_0";
  return q;
}

ModelRef resolve_model(std::string_view spec) {
  check(!spec.empty(), "[catalog] empty model name");
  std::string_view name = spec, quant;
  if (const auto colon = spec.rfind(':'); colon != std::string_view::npos) {
    name = spec.substr(0, colon);
    quant = spec.substr(colon + 1);
    check(!quant.empty(), "[catalog] '", spec, "' has an empty quant after ':'");
  }
  ModelRef ref;
  ref.entry = catalog().find(name, &ref.variant);
  if (!ref.entry) {
    std::vector<std::pair<size_t, std::string>> near;
    for (const auto& e : catalog().models()) {
      size_t best = distance(lower(name), lower(e.id));
      for (const auto& a : e.aliases) best = std::min(best, distance(lower(name), lower(a)));
      near.emplace_back(best, e.id);
    }
    std::sort(near.begin(), near.end());
    fail("[catalog] unknown model '", name, "'; closest: ", near[0].second, ", ", near[1].second,
         ", ", near[2].second, " (eight models lists them all)");
  }
  ref.quant = quant.empty() ? ref.entry->recommended_quant() : normalize_quant(quant);
  const auto names = ref.variant->quant_names();
  if (std::find(names.begin(), names.end(), ref.quant) == names.end()) {
    std::string have;
    for (const auto& n : names) {
      if (!have.empty()) have += ", ";
      have += n;
    }
    fail("[catalog] ", ref.variant->id, " has no quant '", ref.quant, "'; available: ", have);
  }
  return ref;
}

const CatalogEntry* find_model(std::string_view name) {
  const auto colon = name.rfind(':');
  return catalog().find(colon == std::string_view::npos ? name : name.substr(0, colon));
}

std::vector<Source> find_sources(std::string_view name, std::string_view quant) {
  std::string spec(name);
  if (!quant.empty()) {
    if (const auto colon = spec.rfind(':'); colon != std::string::npos) spec.resize(colon);
    spec += ':';
    spec += quant;
  }
  ModelRef ref;
  try {
    ref = resolve_model(spec);
  } catch (const Error&) {
    return {};
  }
  const Variant& v = *ref.variant;
  std::vector<Source> out;
  if (v.hparams) {
    const QuantFile* f = v.find_quant(ref.quant);
    if (!f || !f->source) return {};
    out.push_back(*f->source);
    for (const auto& c : v.components)
      if (c.source && !c.optional) out.push_back(*c.source);
    return out;
  }
  // Pipelines: the main component's file at the quant, then each other component's file at its
  // precision. A source without a component holds the whole model.
  const Component* main = v.main_component();
  auto pick = [&](const std::string& component, const std::string& precision) {
    for (const auto& s : v.sources)
      if (s.component == component && s.quant == precision) return &s;
    return static_cast<const Source*>(nullptr);
  };
  const Source* m = pick(main->id, ref.quant);
  if (!m) m = pick("", ref.quant);
  if (!m) return {};
  out.push_back(*m);
  if (m->component.empty()) return out;  // one file holds every component
  for (const auto& c : v.components) {
    if (c.main || c.optional) continue;
    if (const Source* s = pick(c.id, c.precision_for(ref.quant))) out.push_back(*s);
  }
  return out;
}

std::optional<Source> find_source(std::string_view name, std::string_view quant) {
  auto all = find_sources(name, quant);
  if (all.empty()) return std::nullopt;
  return all.front();
}

}  // namespace eight
