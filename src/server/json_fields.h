#pragma once
// Small readers for request fields shared by the request parsers: each failure is a 400 naming the
// field, with what was found instead ("'stop' must be a string, not an integer").
#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace eight::server {

inline const char* kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::number_float:
      return "a float";
    default:
      return "an integer";
  }
}

// The field `key` of `obj` if present and not null.
inline const nlohmann::json* field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline std::string string(const nlohmann::json& v, const std::string& name) {
  if (!v.is_string()) bad_request(name, cat("'", name, "' must be a string, not ", kind(v)));
  return v.get<std::string>();
}

inline bool boolean(const nlohmann::json& v, const std::string& name) {
  if (!v.is_boolean()) bad_request(name, cat("'", name, "' must be a boolean, not ", kind(v)));
  return v.get<bool>();
}

}  // namespace eight::server
