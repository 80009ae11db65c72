#include "server/openai_request.h"

#include "server/base64.h"

#include <cmath>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace eight::server {

// Ordered: a response_format schema keeps its property order, which the grammar then follows.
using json = nlohmann::ordered_json;

namespace {

double number(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) bad_request(name, cat("'", name, "' must be a number, not ", kind(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", v.dump()));
  return x;
}

int64_t integer(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (!(std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15))
      bad_request(name, cat("'", name, "' must be an integer, got ", v.dump()));
    if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
      bad_request(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", v.dump()));
    return static_cast<int64_t>(x);
  }
  if (!v.is_number_integer())
    bad_request(name, cat("'", name, "' must be an integer, not ", kind(v)));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    bad_request(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", v.dump()));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad_request(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", x));
  return x;
}

// response_format: {"type": "text"}, {"type": "json_object"} or {"type": "json_schema",
// "json_schema": {"name", "schema", "strict"}}. A schema the compiler refuses is the client's
// problem: a 400 naming the field and the schema keyword.
std::shared_ptr<const text::Grammar> parse_response_format(const json& v) {
  if (!v.is_object())
    bad_request("response_format", cat("'response_format' must be an object, not ", kind(v)));
  const json* t = field(v, "type");
  if (!t) bad_request("response_format.type", "'response_format.type' is required");
  const std::string type = string(*t, "response_format.type");
  if (type == "text") return nullptr;
  if (type == "json_object") return text::Grammar::json_object();
  if (type != "json_schema")
    bad_request("response_format.type", cat("unknown response_format type '", type,
                                            "' (expected text, json_object or json_schema)"));
  const json* js = field(v, "json_schema");
  if (!js || !js->is_object())
    bad_request("response_format.json_schema",
                "'response_format.json_schema' must be an object with 'name' and 'schema'");
  if (auto* n = field(*js, "name")) string(*n, "response_format.json_schema.name");
  if (auto* s = field(*js, "strict")) boolean(*s, "response_format.json_schema.strict");
  const json* schema = field(*js, "schema");
  if (!schema) return text::Grammar::json_object();  // OpenAI: no schema, any JSON object
  try {
    return text::Grammar::from_json_schema(*schema);
  } catch (const Error& e) {
    bad_request("response_format.json_schema.schema",
                cat("'response_format.json_schema.schema' is not supported: ", e.what()));
  }
}

// Sampling and output fields shared by chat and completions. `chat_logprobs`: chat uses
// logprobs: bool + top_logprobs: int; completions use logprobs: int.
GenerationParams parse_generation(const json& b, bool chat_logprobs) {
  GenerationParams g;
  // OpenAI's defaults: temperature 1, top_p 1, no penalties; eight's top-k/min-p off unless asked.
  g.sampler.temperature = 1.0f;
  g.sampler.top_p = 1.0f;
  g.sampler.top_k = 0;
  g.sampler.min_p = 0.0f;
  if (auto* v = field(b, "temperature"))
    g.sampler.temperature = float(number(*v, "temperature", 0, 2));
  if (auto* v = field(b, "top_p")) g.sampler.top_p = float(number(*v, "top_p", 0, 1));
  if (auto* v = field(b, "top_k")) g.sampler.top_k = int(integer(*v, "top_k", 0, 1 << 30));
  if (auto* v = field(b, "min_p")) g.sampler.min_p = float(number(*v, "min_p", 0, 1));
  if (auto* v = field(b, "repeat_penalty"))
    g.sampler.repeat_penalty = float(number(*v, "repeat_penalty", 0, 10));
  if (auto* v = field(b, "presence_penalty"))
    g.sampler.presence_penalty = float(number(*v, "presence_penalty", -2, 2));
  if (auto* v = field(b, "frequency_penalty"))
    g.sampler.frequency_penalty = float(number(*v, "frequency_penalty", -2, 2));
  if (auto* v = field(b, "seed"))
    g.sampler.seed = static_cast<uint64_t>(integer(*v, "seed", INT64_MIN, INT64_MAX));
  else
    g.sampler.seed = std::random_device{}();
  if (auto* v = field(b, "n"); v && integer(*v, "n", 1, 128) != 1)
    bad_request("n", "only n = 1 is supported");
  const char* max_keys[] = {"max_completion_tokens", "max_tokens"};
  for (const char* key : max_keys)
    if (auto* v = field(b, key)) {
      g.max_tokens = integer(*v, key, 1, INT32_MAX);
      break;
    }
  if (auto* v = field(b, "stop")) {
    if (v->is_string()) {
      g.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > 4)
        bad_request("stop", cat("'stop' may hold at most 4 strings, got ", v->size()));
      for (size_t i = 0; i < v->size(); ++i)
        g.stop.push_back(string((*v)[i], cat("stop[", i, "]")));
    } else {
      bad_request("stop", cat("'stop' must be a string or an array of strings, not ", kind(*v)));
    }
    std::erase(g.stop, std::string());
  }
  if (auto* v = field(b, "stream")) g.stream = boolean(*v, "stream");
  if (auto* v = field(b, "stream_options")) {
    if (!v->is_object())
      bad_request("stream_options", cat("'stream_options' must be an object, not ", kind(*v)));
    if (!g.stream)
      bad_request("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (auto* u = field(*v, "include_usage"))
      g.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (chat_logprobs) {
    const bool want = field(b, "logprobs") ? boolean(b["logprobs"], "logprobs") : false;
    if (auto* v = field(b, "top_logprobs")) {
      const int n = int(integer(*v, "top_logprobs", 0, 20));
      if (!want) bad_request("top_logprobs", "'top_logprobs' requires 'logprobs': true");
      g.top_logprobs = n;
    } else if (want) {
      g.top_logprobs = 0;
    }
  } else {
    if (auto* v = field(b, "logprobs")) g.top_logprobs = int(integer(*v, "logprobs", 0, 5));
    if (auto* v = field(b, "echo")) g.echo = boolean(*v, "echo");
  }
  if (auto* v = field(b, "response_format")) g.grammar = parse_response_format(*v);
  return g;
}

std::string model_name(const json& b) {
  const json* v = field(b, "model");
  return v ? string(*v, "model") : std::string();
}

// An {"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}} part: the decoded
// bytes. The server fetches nothing, so http(s) URLs are refused naming the field.
std::string image_part(const json& part, const std::string& pname) {
  const json* iu = field(part, "image_url");
  const std::string uname = pname + ".image_url.url";
  const json* url = iu && iu->is_object() ? field(*iu, "url") : iu;
  if (!url || !url->is_string())
    bad_request(uname, cat("'", uname, "' (a data: URL string) is required"));
  const std::string& u = url->get_ref<const std::string&>();
  if (u.starts_with("http://") || u.starts_with("https://"))
    bad_request(uname, cat("'", uname, "' is a web address; this server fetches nothing: send ",
                           "the image inline as data:image/...;base64,..."));
  const size_t comma = u.find(',');
  if (!u.starts_with("data:") || comma == std::string::npos ||
      std::string_view(u).substr(0, comma).find(";base64") == std::string_view::npos)
    bad_request(uname, cat("'", uname, "' must be a data:image/...;base64,... URL"));
  const auto bytes = base64_decode(std::string_view(u).substr(comma + 1));
  if (!bytes || bytes->empty())
    bad_request(uname, cat("'", uname, "' does not hold valid base64 image data"));
  return std::string(bytes->begin(), bytes->end());
}

// A message's content: a string, null, or an array of {"type": "text", "text": ...} parts and
// image_url parts (their bytes appended to `images`, kImagePart left in the text).
std::string message_content(const json& m, const std::string& name, bool may_be_null,
                            std::vector<std::string>* images) {
  const json* c = field(m, "content");
  if (!c) {
    if (may_be_null) return {};
    bad_request(name + ".content", cat("'", name, ".content' is required"));
  }
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array())
    bad_request(name + ".content",
                cat("'", name, ".content' must be a string or an array of parts, not ", kind(*c)));
  std::string text;
  for (size_t i = 0; i < c->size(); ++i) {
    const json& part = (*c)[i];
    const std::string pname = cat(name, ".content[", i, "]");
    if (!part.is_object()) bad_request(pname, cat("'", pname, "' must be an object"));
    const std::string type = field(part, "type") ? string(part["type"], pname + ".type") : "";
    if (type == "image_url") {
      images->push_back(image_part(part, pname));
      text += kImagePart;
      continue;
    }
    if (type != "text")
      bad_request(pname + ".type", cat("content part type '", type,
                                       "' is not supported (only 'text' and 'image_url')"));
    text += string(field(part, "text") ? part["text"] : json(nullptr), pname + ".text");
  }
  return text;
}

}  // namespace

json parse_body(const std::string& body) {
  json b;
  try {
    b = json::parse(body);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("1e5000")
    bad_request("", cat("the request body is not valid JSON: ", e.what()));
  }
  if (!b.is_object()) bad_request("", cat("the request body must be a JSON object, not ", kind(b)));
  return b;
}

ChatRequest parse_chat_request(const json& b) {
  ChatRequest r;
  r.model = model_name(b);
  const json* msgs = field(b, "messages");
  if (!msgs) bad_request("messages", "'messages' is required");
  if (!msgs->is_array())
    bad_request("messages", cat("'messages' must be an array, not ", kind(*msgs)));
  if (msgs->empty()) bad_request("messages", "'messages' must hold at least one message");
  std::vector<std::string> images;
  r.messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string name = cat("messages[", i, "]");
    if (!m.is_object()) bad_request(name, cat("'", name, "' must be an object, not ", kind(m)));
    const json* rv = field(m, "role");
    if (!rv) bad_request(name + ".role", cat("'", name, ".role' is required"));
    std::string role = string(*rv, name + ".role");
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      bad_request(name + ".role", cat("unknown role '", role,
                                      "' (expected system, developer, user, assistant or tool)"));
    nlohmann::ordered_json out = {{"role", role}};
    const bool has_tool_calls = field(m, "tool_calls") != nullptr;
    out["content"] = message_content(m, name, role == "assistant" && has_tool_calls, &images);
    if (has_tool_calls) {
      if (!m["tool_calls"].is_array())
        bad_request(name + ".tool_calls", cat("'", name, ".tool_calls' must be an array"));
      out["tool_calls"] = normalize_tool_calls(m["tool_calls"], name + ".tool_calls");
    }
    if (auto* v = field(m, "name")) out["name"] = string(*v, name + ".name");
    if (role == "tool") {
      const json* id = field(m, "tool_call_id");
      if (!id)
        bad_request(name + ".tool_call_id",
                    cat("'", name, ".tool_call_id' is required for tool messages"));
      out["tool_call_id"] = string(*id, name + ".tool_call_id");
    }
    r.messages.push_back(std::move(out));
  }
  r.gen = parse_generation(b, true);
  r.gen.images = std::move(images);
  r.tools = parse_tool_request(b);
  return r;
}

CompletionRequest parse_completion_request(const json& b) {
  CompletionRequest r;
  r.model = model_name(b);
  const json* p = field(b, "prompt");
  if (!p) bad_request("prompt", "'prompt' is required");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else if (p->is_array()) {
    bad_request("prompt",
                "'prompt' must be a string or an array holding one string (batches of "
                "prompts are not supported; send parallel requests)");
  } else {
    bad_request("prompt", cat("'prompt' must be a string, not ", kind(*p)));
  }
  r.gen = parse_generation(b, false);
  return r;
}

}  // namespace eight::server
