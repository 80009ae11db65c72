#pragma once
// Small readers for request fields shared by the request parsers: each failure is a 400 naming the
// field, with what was found instead ("'stop' must be a string, not an integer").
#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace eight::server {

// Templates so that both nlohmann::json and ordered_json (the chat and completion bodies, whose
// schemas keep their key order) read the same way.
template <class Json>
const char* kind(const Json& v) {
  switch (v.type()) {
    case nlohmann::detail::value_t::null:
      return "null";
    case nlohmann::detail::value_t::boolean:
      return "a boolean";
    case nlohmann::detail::value_t::string:
      return "a string";
    case nlohmann::detail::value_t::array:
      return "an array";
    case nlohmann::detail::value_t::object:
      return "an object";
    case nlohmann::detail::value_t::number_float:
      return "a float";
    default:
      return "an integer";
  }
}

// The field `key` of `obj` if present and not null.
template <class Json>
const Json* field(const Json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

template <class Json>
std::string string(const Json& v, const std::string& name) {
  if (!v.is_string()) bad_request(name, cat("'", name, "' must be a string, not ", kind(v)));
  return v.template get<std::string>();
}

template <class Json>
bool boolean(const Json& v, const std::string& name) {
  if (!v.is_boolean()) bad_request(name, cat("'", name, "' must be a boolean, not ", kind(v)));
  return v.template get<bool>();
}

}  // namespace eight::server
