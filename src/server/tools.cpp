#include "server/tools.h"

#include <mutex>
#include <random>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "text/json_schema.h"
#include "text/json_schema_parts.h"

namespace eight::server {

using nlohmann::json;

namespace {

// OpenAI's rule for function names: letters, digits, '_' and '-', at most 64.
bool valid_function_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

json parse_tool(const json& t, const std::string& name) {
  if (!t.is_object()) bad_request(name, cat("'", name, "' must be an object, not ", kind(t)));
  const json* type = field(t, "type");
  if (!type) bad_request(name + ".type", cat("'", name, ".type' is required"));
  if (string(*type, name + ".type") != "function")
    bad_request(name + ".type", cat("'", name, ".type' must be 'function', got ", type->dump()));
  const std::string fname = name + ".function";
  const json* f = field(t, "function");
  if (!f) bad_request(fname, cat("'", fname, "' is required"));
  if (!f->is_object()) bad_request(fname, cat("'", fname, "' must be an object, not ", kind(*f)));
  const json* n = field(*f, "name");
  if (!n) bad_request(fname + ".name", cat("'", fname, ".name' is required"));
  const std::string fn = string(*n, fname + ".name");
  if (!valid_function_name(fn))
    bad_request(
        fname + ".name",
        cat("'", fname, ".name' must be 1 to 64 letters, digits, '_' or '-', got ", n->dump()));
  json out = {{"name", fn}};
  if (const json* d = field(*f, "description"))
    out["description"] = string(*d, fname + ".description");
  if (const json* p = field(*f, "parameters")) {
    if (!p->is_object())
      bad_request(fname + ".parameters",
                  cat("'", fname, ".parameters' must be a JSON schema object, not ", kind(*p)));
    out["parameters"] = *p;
  } else {
    // OpenAI: omitting parameters defines a function with an empty parameter list.
    out["parameters"] = {{"type", "object"}, {"properties", json::object()}};
  }
  if (const json* s = field(*f, "strict")) out["strict"] = boolean(*s, fname + ".strict");
  return {{"type", "function"}, {"function", out}};
}

ToolChoice parse_choice(const json& c, const json& tools) {
  ToolChoice choice;
  if (c.is_string()) {
    const std::string s = c.get<std::string>();
    if (s == "auto")
      choice.mode = ToolChoice::Auto;
    else if (s == "none")
      choice.mode = ToolChoice::None;
    else if (s == "required")
      choice.mode = ToolChoice::Required;
    else
      bad_request("tool_choice",
                  cat("'tool_choice' must be 'auto', 'none', 'required' or an object naming a "
                      "function, got ",
                      c.dump()));
  } else if (c.is_object()) {
    const json* type = field(c, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "function")
      bad_request("tool_choice.type", "'tool_choice.type' must be 'function'");
    const json* f = field(c, "function");
    if (!f || !f->is_object())
      bad_request("tool_choice.function",
                  "'tool_choice.function' must be an object with the function's name");
    const json* n = field(*f, "name");
    if (!n) bad_request("tool_choice.function.name", "'tool_choice.function.name' is required");
    choice.mode = ToolChoice::Named;
    choice.name = string(*n, "tool_choice.function.name");
  } else {
    bad_request("tool_choice", cat("'tool_choice' must be a string or an object, not ", kind(c)));
  }
  if (tools.is_null() && (choice.mode == ToolChoice::Required || choice.mode == ToolChoice::Named))
    bad_request("tool_choice", "'tool_choice' requires 'tools'");
  if (choice.mode == ToolChoice::Named) {
    bool found = false;
    for (const json& t : tools) found = found || t["function"]["name"] == choice.name;
    if (!found)
      bad_request("tool_choice.function.name", cat("'tool_choice' names the function '",
                                                   choice.name, "', which is not in 'tools'"));
  }
  return choice;
}

}  // namespace

ToolRequest parse_tool_request(const json& body) {
  ToolRequest r;
  if (const json* t = field(body, "tools")) {
    if (!t->is_array()) bad_request("tools", cat("'tools' must be an array, not ", kind(*t)));
    if (t->size() > 128)
      bad_request("tools", cat("'tools' may hold at most 128 functions, got ", t->size()));
    r.tools = json::array();
    for (size_t i = 0; i < t->size(); ++i) {
      json tool = parse_tool((*t)[i], cat("tools[", i, "]"));
      for (const json& prev : r.tools)
        if (prev["function"]["name"] == tool["function"]["name"])
          bad_request(
              cat("tools[", i, "].function.name"),
              cat("two tools are named '", tool["function"]["name"].get<std::string>(), "'"));
      r.tools.push_back(std::move(tool));
    }
    if (r.tools.empty()) r.tools = nullptr;  // as if absent (OpenAI rejects [], clients send it)
  }
  if (const json* c = field(body, "tool_choice")) r.choice = parse_choice(*c, r.tools);
  return r;
}

nlohmann::ordered_json normalize_tool_calls(const json& calls, const std::string& name) {
  using ojson = nlohmann::ordered_json;
  ojson out = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    const json& c = calls[i];
    const std::string cname = cat(name, "[", i, "]");
    if (!c.is_object()) bad_request(cname, cat("'", cname, "' must be an object, not ", kind(c)));
    const json* f = field(c, "function");
    if (!f || !f->is_object())
      bad_request(cname + ".function", cat("'", cname, ".function' must be an object"));
    const json* n = field(*f, "name");
    if (!n) bad_request(cname + ".function.name", cat("'", cname, ".function.name' is required"));
    ojson fn = {{"name", string(*n, cname + ".function.name")}};
    ojson args = ojson::object();
    if (const json* a = field(*f, "arguments")) {
      args = ojson(*a);
      // OpenAI sends arguments as a JSON string; templates expect the object (HF's convention).
      if (a->is_string()) {
        args = ojson::parse(a->get<std::string>(), nullptr, /*allow_exceptions=*/false);
        if (args.is_discarded()) args = ojson(*a);
      }
    }
    fn["arguments"] = std::move(args);
    ojson one = {{"type", "function"}, {"function", std::move(fn)}};
    if (const json* id = field(c, "id")) one["id"] = string(*id, cname + ".id");
    out.push_back(std::move(one));
  }
  return out;
}

nlohmann::ordered_json tools_for_template(const ToolRequest& req, bool template_uses_tools,
                                          const std::string& body,
                                          nlohmann::ordered_json& messages) {
  using ojson = nlohmann::ordered_json;
  if (!req.active()) return nullptr;
  if (template_uses_tools) {
    // parse_tool_request validated these (the body parsed before), so they have this shape.
    ojson tools = ojson::parse(body)["tools"];
    for (size_t i = 0; i < tools.size(); ++i) {
      ojson& fn = tools[i]["function"];
      if (!fn.contains("parameters") || fn["parameters"].is_null())
        fn["parameters"] = ojson(req.tools[i]["function"]["parameters"]);
    }
    return tools;
  }
  // The template has no place for tools: describe them, and the Generic format the output is
  // parsed in, in a system message (appended to the client's own system message when present).
  std::string text =
      "You can call these functions. To call one, answer with only a JSON object "
      "{\"name\": <function name>, \"arguments\": <arguments object>} and nothing else.\n";
  for (const json& t : req.tools) text += t["function"].dump() + "\n";
  if (!messages.empty() && messages[0]["role"] == "system") {
    std::string sys = messages[0]["content"].get<std::string>();
    messages[0]["content"] = sys.empty() ? text : sys + "\n\n" + text;
  } else {
    messages.insert(messages.begin(), ojson{{"role", "system"}, {"content", text}});
  }
  return nullptr;
}

std::string forced_call_gbnf(const ToolRequest& req, ToolFormat format) {
  // The call object as the family writes it; Llama 3 names the arguments "parameters".
  const char* args_key = format == ToolFormat::Llama3 ? "parameters" : "arguments";
  std::string rules, alternatives;
  for (size_t i = 0; i < req.tools.size(); ++i) {
    const json& fn = req.tools[i]["function"];
    const std::string name = fn["name"].get<std::string>();
    if (req.choice.mode == ToolChoice::Named && name != req.choice.name) continue;
    const std::string args = cat("args", i);
    try {
      rules += text::json_schema_to_gbnf(fn["parameters"], args);
    } catch (const Error& e) {
      bad_request(cat("tools[", i, "].function.parameters"),
                  cat("cannot force a call to '", name, "': ", e.what()));
    }
    const std::string head = cat("{\"name\": ", json(name).dump(), ", \"", args_key, "\": ");
    rules += cat("call", i, " ::= ", text::gbnf_literal(head), " ", args, " \"}\"\n");
    alternatives += cat(alternatives.empty() ? "" : " | ", "call", i);
  }
  std::string root;
  switch (format) {
    case ToolFormat::Hermes:
      root = R"(root ::= "<tool_call>\n" call "\n</tool_call>")";
      break;
    case ToolFormat::Mistral:
      // [TOOL_CALLS] is a control token no grammar emits; the list alone is recognised.
      root = R"(root ::= "[" call "]")";
      break;
    default:
      root = "root ::= call";
  }
  return cat(root, "\ncall ::= ", alternatives, "\n", rules);
}

std::string new_call_id() {
  static std::mutex m;
  static std::mt19937_64 gen{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::lock_guard lock(m);
  std::string id(9, 'a');
  for (char& c : id) c = kChars[gen() % (sizeof kChars - 1)];
  return id;
}

namespace {

json call_json(const std::string& id, const ParsedToolCall& c) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

}  // namespace

json tool_message(const ParsedOutput& p, std::vector<std::string>* ids) {
  json m = {{"content", p.content.empty() && !p.calls.empty() ? json(nullptr) : json(p.content)}};
  if (p.calls.empty()) return m;
  json calls = json::array();
  for (size_t i = 0; i < p.calls.size(); ++i) {
    if (ids->size() <= i) ids->push_back(new_call_id());
    calls.push_back(call_json((*ids)[i], p.calls[i]));
  }
  m["tool_calls"] = std::move(calls);
  return m;
}

std::vector<json> ToolStream::feed(const std::string& text) {
  text_ += text;
  return diff(parse_tool_output(format_, text_, false));
}

std::vector<json> ToolStream::finish() {
  return diff(parse_tool_output(format_, text_, true));
}

std::vector<json> ToolStream::diff(const ParsedOutput& now) {
  // The parser only extends what it returned before (text/tool_calls.h); anything else would
  // be a parser bug, and is dropped rather than sent as a delta that contradicts the past.
  std::vector<json> out;
  if (!extends(sent_, now)) return out;
  if (now.content.size() > sent_.content.size())
    out.push_back({{"content", now.content.substr(sent_.content.size())}});
  for (size_t i = 0; i < now.calls.size(); ++i) {
    const ParsedToolCall& c = now.calls[i];
    if (i >= sent_.calls.size()) {
      ids_.push_back(new_call_id());
      json head = call_json(ids_.back(), {c.name, ""});
      head["index"] = i;
      out.push_back({{"tool_calls", json::array({head})}});
    }
    const size_t sent = i < sent_.calls.size() ? sent_.calls[i].arguments.size() : 0;
    if (c.arguments.size() > sent) {
      json frag = {{"index", i}, {"function", {{"arguments", c.arguments.substr(sent)}}}};
      out.push_back({{"tool_calls", json::array({frag})}});
    }
  }
  sent_ = now;
  return out;
}

}  // namespace eight::server
