#include "text/json_schema.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/grammar.h"
#include "text/json_schema_parts.h"

namespace eight::text {

namespace {

using nlohmann::json;

// Keywords that only describe a schema and never constrain the text.
const std::set<std::string> kAnnotations = {
    "title",    "description", "default",    "examples", "$schema",     "$id",    "$comment",
    "readOnly", "writeOnly",   "deprecated", "$defs",    "definitions", "strict", "name"};

// The keywords each type takes.
const std::map<std::string, std::set<std::string>> kTypeKeywords = {
    {"object", {"type", "properties", "required", "additionalProperties"}},
    {"array", {"type", "items", "prefixItems", "minItems", "maxItems"}},
    {"string", {"type", "minLength", "maxLength", "pattern", "format"}},
    {"integer", {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
    {"number", {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
    {"boolean", {"type"}},
    {"null", {"type"}},
};

class Compiler {
 public:
  Compiler(const json& root, std::string_view prefix) : root_(root), p_(prefix) {}

  std::string run() {
    const std::string body = visit(root_, "#");
    std::string out = cat(p_, " ::= ", body, "\n");
    for (const auto& [name, rule] : rules_) out += cat(name, " ::= ", rule, "\n");
    return out;
  }

  std::string any_object() { return use("object"); }

 private:
  [[noreturn]] static void bad(const std::string& path, const std::string& what) {
    fail("[json-schema] ", path, ": ", what);
  }

  std::string add(const std::string& hint, const std::string& body) {
    const std::string name = cat(p_, "-", hint, rules_.size());
    rules_[name] = body;
    return name;
  }

  // The shared building blocks, added on first use.
  std::string use(const std::string& what) {
    const std::string name = cat(p_, "-", what);
    if (rules_.count(name)) return name;
    static const std::map<std::string, std::string> kBlocks = {
        // One space, or one newline and a bounded indentation, between tokens.
        {"ws", "( \" \" | \"\\n\" [ \\t]{0,20} )?"},
        {"char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )"},
        {"string", "\"\\\"\" CHAR* \"\\\"\""},
        {"integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )"},
        {"number",
         "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"},
        {"boolean", "\"true\" | \"false\""},
        {"null", "\"null\""},
        {"value", "OBJECT | ARRAY | STRING | NUMBER | BOOLEAN | NULL"},
        {"object",
         "\"{\" WS ( STRING WS \":\" WS VALUE WS ( \",\" WS STRING WS \":\" WS VALUE WS )* )? "
         "\"}\""},
        {"array", "\"[\" WS ( VALUE WS ( \",\" WS VALUE WS )* )? \"]\""},
        {"date",
         "[0-9]{4} \"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | "
         "\"3\" [01] ) | ( \"0\" [469] | \"11\" ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"30\" ) | "
         "\"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) )"},
        {"time",
         "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? "
         "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"},
        {"date-time", "DATE \"T\" TIME"},
        {"uuid",
         "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" "
         "[0-9a-fA-F]{12}"},
    };
    std::string body = kBlocks.at(what);
    rules_[name] = "";  // reserve before expanding: blocks refer to each other
    for (const char* dep : {"WS", "CHAR", "STRING", "NUMBER", "BOOLEAN", "NULL", "OBJECT", "ARRAY",
                            "VALUE", "DATE", "TIME"}) {
      std::string lower = dep;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(ch));
      for (size_t at = body.find(dep); at != std::string::npos; at = body.find(dep, at)) {
        const std::string ref = use(lower);
        body.replace(at, std::string(dep).size(), ref);
        at += ref.size();
      }
    }
    rules_[name] = body;
    return name;
  }

  static std::string type_name(const json& t, const std::string& path) {
    if (!t.is_string()) bad(path, "'type' must be a string or an array of strings");
    return t.get<std::string>();
  }

  void allow_only(const json& s, const std::string& path, const std::set<std::string>& allowed) {
    for (const auto& [k, v] : s.items()) {
      if (allowed.count(k) || kAnnotations.count(k)) continue;
      bad(path, cat("'", k, "' is not supported here"));
    }
  }

  const json& resolve(const std::string& ref, const std::string& path) {
    if (ref == "#") return root_;
    if (ref.rfind("#/", 0) != 0)
      bad(path, cat("'$ref' '", ref, "' is not a local reference (#/...)"));
    const json* at = &root_;
    size_t i = 2;
    while (i <= ref.size()) {
      const size_t slash = std::min(ref.find('/', i), ref.size());
      std::string key;  // JSON pointer escapes: ~1 is '/', ~0 is '~'
      for (size_t k = i; k < slash; ++k) {
        if (ref[k] == '~' && k + 1 < slash && (ref[k + 1] == '0' || ref[k + 1] == '1')) {
          key += ref[++k] == '1' ? '/' : '~';
        } else {
          key += ref[k];
        }
      }
      if (!at->is_object() || !at->contains(key))
        bad(path, cat("'$ref' '", ref, "' points nowhere"));
      at = &(*at)[key];
      i = slash + 1;
    }
    return *at;
  }

  std::string alternatives(const json& list, const std::string& path, const char* kw) {
    if (!list.is_array() || list.empty()) bad(path, cat("'", kw, "' must be a non-empty array"));
    std::string out = "(";
    for (size_t i = 0; i < list.size(); ++i)
      out += cat(i ? " | " : " ", visit(list[i], cat(path, "/", kw, "/", i)));
    return out + " )";
  }

  std::string visit(const json& s, const std::string& path) {
    if (++depth_ > 64) bad(path, "schema nesting deeper than 64");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    if (s.is_boolean()) {
      if (!s.get<bool>()) bad(path, "the schema 'false' matches nothing");
      return use("value");
    }
    if (!s.is_object()) bad(path, "a schema must be an object or a boolean");
    if (s.contains("$ref")) {
      allow_only(s, path, {"$ref"});
      const std::string ref = s["$ref"].is_string() ? s["$ref"].get<std::string>() : "";
      if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
      const std::string name = cat(p_, "-ref", refs_.size());
      refs_[ref] = name;  // named before visiting, so recursive schemas terminate
      rules_[name] = visit(resolve(ref, path + "/$ref"), ref);
      return name;
    }
    if (s.contains("const")) {
      allow_only(s, path, {"const", "type"});
      return gbnf_literal(s["const"].dump());
    }
    if (s.contains("enum")) {
      allow_only(s, path, {"enum", "type"});
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) bad(path, "'enum' must be a non-empty array");
      std::string out = "(";
      for (size_t i = 0; i < e.size(); ++i) out += cat(i ? " | " : " ", gbnf_literal(e[i].dump()));
      return out + " )";
    }
    for (const char* kw : {"anyOf", "oneOf"})
      if (s.contains(kw)) {
        allow_only(s, path, {kw});
        return alternatives(s[kw], path, kw);
      }
    if (s.contains("allOf")) {
      allow_only(s, path, {"allOf"});
      if (!s["allOf"].is_array() || s["allOf"].size() != 1)
        bad(path, "'allOf' is supported with exactly one schema");
      return visit(s["allOf"][0], path + "/allOf/0");
    }
    if (!s.contains("type")) {
      if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required"))
        return object(s, path);
      if (s.contains("items") || s.contains("prefixItems")) return array(s, path);
      allow_only(s, path, {});
      return use("value");
    }
    const json& t = s["type"];
    if (t.is_array()) {
      if (t.empty()) bad(path, "'type' is an empty array");
      // Each type gets the keywords that apply to it; a keyword no listed type takes is refused.
      std::set<std::string> used;
      std::string out = "(";
      for (size_t i = 0; i < t.size(); ++i) {
        const std::string type = type_name(t[i], path);
        const auto kws = kTypeKeywords.find(type);
        if (kws == kTypeKeywords.end()) bad(path, cat("unknown type '", type, "'"));
        json one = json::object();
        for (const auto& [k, v] : s.items())
          if (kws->second.count(k)) {
            one[k] = v;
            used.insert(k);
          }
        one["type"] = type;
        out += cat(i ? " | " : " ", typed(one, type, path));
      }
      for (const auto& [k, v] : s.items())
        if (!used.count(k) && !kAnnotations.count(k))
          bad(path, cat("'", k, "' is not supported here"));
      return out + " )";
    }
    return typed(s, type_name(t, path), path);
  }

  std::string typed(const json& s, const std::string& type, const std::string& path) {
    if (type == "object") return object(s, path);
    if (type == "array") return array(s, path);
    if (type == "string") return string(s, path);
    if (type == "integer" || type == "number") return number(s, path, type == "integer");
    if (type == "boolean" || type == "null") {
      allow_only(s, path, kTypeKeywords.at("boolean"));
      return use(type);
    }
    bad(path, cat("unknown type '", type, "'"));
  }

  std::string object(const json& s, const std::string& path) {
    allow_only(s, path, kTypeKeywords.at("object"));
    const std::string ws = use("ws");
    std::vector<std::pair<std::string, std::string>> props;  // (key literal + ':', value)
    std::vector<bool> required;
    std::set<std::string> req;
    if (s.contains("required")) {
      if (!s["required"].is_array()) bad(path, "'required' must be an array");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) bad(path, "'required' must hold strings");
        req.insert(r.get<std::string>());
      }
    }
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) bad(path, "'properties' must be an object");
      for (const auto& [k, v] : s["properties"].items()) {
        props.emplace_back(cat(gbnf_literal(json(k).dump()), " ", ws, " \":\" ", ws),
                           visit(v, cat(path, "/properties/", k)));
        required.push_back(req.count(k) > 0);
      }
    }
    for (const std::string& r : req)
      if (!s.contains("properties") || !s["properties"].contains(r))
        bad(path, cat("'required' names '", r, "', which 'properties' does not define"));
    std::string extra;  // a rule for one extra member, or empty
    const json add_props = s.value("additionalProperties", json(true));
    if (!(add_props.is_boolean() && !add_props.get<bool>())) {
      const std::string value =
          add_props.is_boolean() ? use("value") : visit(add_props, path + "/additionalProperties");
      extra = add("kv", cat(use("string"), " ", ws, " \":\" ", ws, " ", value, " ", ws));
    }
    // rest(i, first): members i.. in order, optional ones skippable; `first` when no member has
    // been written yet (no comma before the next one).
    std::map<std::pair<size_t, bool>, std::string> memo;
    std::function<std::string(size_t, bool)> rest = [&](size_t i, bool first) -> std::string {
      auto key = std::make_pair(i, first);
      if (auto it = memo.find(key); it != memo.end()) return it->second;
      const std::string sep = first ? "" : cat("\",\" ", ws, " ");
      std::string body;
      if (i == props.size()) {
        if (extra.empty()) return memo[key] = "\"\"";
        body = first ? cat("( ", extra, " ( \",\" ", ws, " ", extra, " )* )?")
                     : cat("( \",\" ", ws, " ", extra, " )*");
      } else {
        const std::string member =
            cat(sep, props[i].first, " ", props[i].second, " ", ws, " ", rest(i + 1, false));
        body = required[i] ? member : cat(member, " | ", rest(i + 1, first));
      }
      return memo[key] = add("obj", body);
    };
    return cat("\"{\" ", ws, " ", rest(0, true), " \"}\"");
  }

  std::string array(const json& s, const std::string& path) {
    allow_only(s, path, kTypeKeywords.at("array"));
    const std::string ws = use("ws");
    auto count = [&](const char* kw, int64_t dflt) {
      if (!s.contains(kw)) return dflt;
      if (!s[kw].is_number_integer() || s[kw].get<int64_t>() < 0 || s[kw].get<int64_t>() > 10000)
        bad(path, cat("'", kw, "' must be an integer in [0, 10000]"));
      return s[kw].get<int64_t>();
    };
    if (s.contains("prefixItems")) {
      // A fixed tuple (extra items are never generated: a subset of what the schema allows).
      const json& pi = s["prefixItems"];
      if (!pi.is_array() || pi.empty()) bad(path, "'prefixItems' must be a non-empty array");
      std::string out = cat("\"[\" ", ws);
      for (size_t i = 0; i < pi.size(); ++i)
        out += cat(i ? cat(" \",\" ", ws) : "", " ", visit(pi[i], cat(path, "/prefixItems/", i)),
                   " ", ws);
      return out + " \"]\"";
    }
    const std::string item =
        add("item", s.contains("items") ? visit(s["items"], path + "/items") : use("value"));
    const int64_t lo = count("minItems", 0), hi = count("maxItems", -1);
    if (hi >= 0 && hi < lo) bad(path, cat("'maxItems' ", hi, " is below 'minItems' ", lo));
    if (hi == 0) return cat("\"[\" ", ws, " \"]\"");
    const std::string more = cat("( \",\" ", ws, " ", item, " ", ws, " )");
    const std::string reps = hi < 0 ? cat("{", std::max<int64_t>(lo - 1, 0), ",}")
                                    : cat("{", std::max<int64_t>(lo - 1, 0), ",", hi - 1, "}");
    const std::string list = cat(item, " ", ws, " ", more, reps);
    return cat("\"[\" ", ws, " ", lo == 0 ? cat("( ", list, " )?") : list, " \"]\"");
  }

  std::string string(const json& s, const std::string& path) {
    allow_only(s, path, kTypeKeywords.at("string"));
    const std::string q = "\"\\\"\"";
    if (s.contains("format")) {
      if (s.contains("pattern") || s.contains("minLength") || s.contains("maxLength"))
        bad(path, "'format' together with 'pattern' or lengths is not supported");
      const std::string f = s["format"].is_string() ? s["format"].get<std::string>() : "";
      if (f != "date" && f != "time" && f != "date-time" && f != "uuid")
        bad(path, cat("'format' '", f, "' is not supported (date, time, date-time, uuid are)"));
      return cat(q, " ", use(f), " ", q);
    }
    if (s.contains("pattern")) {
      if (s.contains("minLength") || s.contains("maxLength"))
        bad(path, "'pattern' together with 'minLength'/'maxLength' is not supported");
      if (!s["pattern"].is_string()) bad(path, "'pattern' must be a string");
      return cat(q, " ",
                 gbnf_from_regex(s["pattern"].get<std::string>(), use("char"), path + "/pattern"),
                 " ", q);
    }
    auto len = [&](const char* kw, int64_t dflt) {
      if (!s.contains(kw)) return dflt;
      if (!s[kw].is_number_integer() || s[kw].get<int64_t>() < 0 || s[kw].get<int64_t>() > 10000)
        bad(path, cat("'", kw, "' must be an integer in [0, 10000]"));
      return s[kw].get<int64_t>();
    };
    const int64_t lo = len("minLength", 0), hi = len("maxLength", -1);
    if (hi >= 0 && hi < lo) bad(path, cat("'maxLength' ", hi, " is below 'minLength' ", lo));
    if (lo == 0 && hi < 0) return use("string");
    return cat(q, " ", use("char"), hi < 0 ? cat("{", lo, ",}") : cat("{", lo, ",", hi, "}"), " ",
               q);
  }

  std::string number(const json& s, const std::string& path, bool integer) {
    allow_only(s, path, kTypeKeywords.at("number"));
    std::optional<double> lo, hi;
    bool lo_excl = false, hi_excl = false;
    auto num = [&](const char* kw) {
      if (!s[kw].is_number()) bad(path, cat("'", kw, "' must be a number"));
      return s[kw].get<double>();
    };
    if (s.contains("minimum")) lo = num("minimum");
    if (s.contains("maximum")) hi = num("maximum");
    for (auto [kw, bound, excl] : {std::tuple{"exclusiveMinimum", &lo, &lo_excl},
                                   std::tuple{"exclusiveMaximum", &hi, &hi_excl}}) {
      if (!s.contains(kw)) continue;
      if (s[kw].is_boolean()) {  // draft 4: a flag on minimum/maximum
        *excl = s[kw].get<bool>();
      } else {
        *bound = num(kw);
        *excl = true;
      }
    }
    if (!lo && !hi) return use(integer ? "integer" : "number");
    for (auto b : {lo, hi})
      if (b && (!std::isfinite(*b) || std::fabs(*b) > 1e15))
        bad(path, "bounds beyond 1e15 are not supported");
    // The integers within the bounds.
    std::optional<int64_t> ilo, ihi;
    if (lo) ilo = static_cast<int64_t>(lo_excl ? std::floor(*lo) + 1 : std::ceil(*lo));
    if (hi) ihi = static_cast<int64_t>(hi_excl ? std::ceil(*hi) - 1 : std::floor(*hi));
    if (ilo && ihi && *ilo > *ihi) bad(path, "no integer lies within the bounds");
    const std::string ints = gbnf_integer_range(ilo, ihi);
    if (integer) return ints;
    // Numbers: the integers, plus a fraction after a non-negative integer part k when all of
    // [k, k+1) lies within the bounds (a subset of the allowed numbers, always valid).
    const int64_t flo = ilo ? std::max<int64_t>(*ilo, 0) : 0;
    const std::optional<int64_t> fhi =
        hi ? std::optional<int64_t>(static_cast<int64_t>(std::floor(*hi)) - 1) : std::nullopt;
    if (fhi && *fhi < flo) return ints;
    return cat("( ", ints, " | ", gbnf_integer_range(flo, fhi), " \".\" [0-9]{1,16} )");
  }

  const json& root_;
  std::string p_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  int depth_ = 0;
};

}  // namespace

std::string json_schema_to_gbnf(const nlohmann::json& schema, std::string_view root) {
  return Compiler(schema, root).run();
}

std::string json_object_gbnf(std::string_view root) {
  const json empty = json::object();  // the compiler keeps a reference
  Compiler c(empty, root);
  const std::string obj = c.any_object();
  std::string out = c.run();  // the root rule of an empty schema (any value), then the blocks
  return cat(root, " ::= ", obj, "\n", out.substr(out.find('\n') + 1));
}

std::shared_ptr<const Grammar> Grammar::from_json_schema(const nlohmann::json& schema) {
  return parse(json_schema_to_gbnf(schema));
}

std::shared_ptr<const Grammar> Grammar::json_object() {
  return parse(json_object_gbnf());
}

}  // namespace eight::text
