// Values of the restricted unpickler (description, lookup) and the protocol-0 text decoding.
#include <cstdlib>

#include "core/error.h"
#include "formats/torch_pickle_impl.h"

namespace eight::pickle {

std::string_view kind_name(Kind k) {
  static constexpr std::string_view names[] = {"none", "bool",   "int",     "int",    "float",
                                               "str",  "bytes",  "list",    "tuple",  "dict",
                                               "set",  "tensor", "storage", "global", "object"};
  return names[static_cast<size_t>(k)];
}

Value* Document::make(Kind k) {
  Value& v = values_.emplace_back();
  v.kind = k;
  return &v;
}

const Value* Value::get(std::string_view key) const {
  const Value* d = this;
  if (kind == Kind::Object) d = state;
  if (!d || d->kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : d->dict)
    if (k->kind == Kind::Str && k->s == key) return v;
  return nullptr;
}

std::string Value::describe() const {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return b ? "True" : "False";
    case Kind::Int:
      return std::to_string(i);
    case Kind::BigInt:
      return cat("int (", s.size(), " bytes)");
    case Kind::Float:
      return cat(f);
    case Kind::Str:
      return s.size() > 40 ? cat("str '", s.substr(0, 40), "...'") : cat("str '", s, "'");
    case Kind::Bytes:
      return cat("bytes(", s.size(), ")");
    case Kind::List:
    case Kind::Tuple:
    case Kind::Set:
      return cat(kind_name(kind), "(", items.size(), ")");
    case Kind::Dict:
      return cat("dict(", dict.size(), ")");
    case Kind::Tensor:
      return cat("tensor ", tensor->storage.dtype, " ",
                 Dims(tensor->shape.begin(), tensor->shape.end()).str());
    case Kind::Storage:
      return cat("storage ", storage->dtype, " (", storage->numel, ")");
    case Kind::Global:
      return cat("global ", s);
    case Kind::Object:
      return cat("object ", s);
  }
  return "?";
}

// Protocol 0 UNICODE is "raw-unicode-escape": bytes are Latin-1 code points, except \uXXXX and
// \UXXXXXXXX escapes. Returned as UTF-8.
std::string raw_unicode_escape(Context& cx, const std::string& s) {
  std::string out;
  auto utf8 = [&](uint32_t cp) {
    if (cp > 0x10ffff) cx.error("\\U escape beyond Unicode");
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  };
  for (size_t k = 0; k < s.size(); ++k) {
    const size_t digits = s[k] != '\\' || k + 1 >= s.size() ? 0
                          : s[k + 1] == 'u'                 ? 4
                          : s[k + 1] == 'U'                 ? 8
                                                            : 0;
    if (digits && k + 2 + digits <= s.size()) {
      const std::string h = s.substr(k + 2, digits);
      if (h.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        cx.error("malformed \\u escape");
      utf8(static_cast<uint32_t>(std::strtoul(h.c_str(), nullptr, 16)));
      k += 1 + digits;
    } else {
      utf8(static_cast<uint8_t>(s[k]));
    }
  }
  return out;
}

}  // namespace eight::pickle
