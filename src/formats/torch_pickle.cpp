// The restricted unpickler: a loop over opcodes (pickletools.py documents each one) that builds
// inert Values. Calls (REDUCE, NEWOBJ, BUILD) are interpreted only for allow-listed globals; see
// torch_pickle_calls.cpp.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>

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

namespace {

enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

class Machine final : public Context {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& name, const Limits& limits)
      : p_(data), n_(size), name_(name), lim_(limits), doc_(std::make_shared<Document>()) {}

  std::shared_ptr<Document> run(size_t* end);

  std::string where() const override {
    return cat(name_, " (opcode 0x", hex(op_), " at byte ", op_at_, ")");
  }
  Value* make(Kind k) override {
    if (doc_->size() >= lim_.max_values)
      error(cat("more than ", lim_.max_values, " values (limit)"));
    return doc_->make(k);
  }
  void count_items(size_t n) override {
    items_ += n;
    if (items_ > lim_.max_items) error(cat("more than ", lim_.max_items, " items (limit)"));
  }

 private:
  static std::string hex(uint8_t b) {
    static const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  const uint8_t* take(uint64_t len) {
    if (len > n_ - pos_) error(cat("needs ", len, " bytes but only ", n_ - pos_, " remain"));
    const uint8_t* q = p_ + pos_;
    pos_ += static_cast<size_t>(len);
    return q;
  }
  uint64_t le(int bytes) {
    const uint8_t* q = take(bytes);
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = v << 8 | q[k];
    return v;
  }
  std::string line() {  // protocol 0 arguments end with '\n'
    const void* nl = std::memchr(p_ + pos_, '\n', std::min<size_t>(n_ - pos_, 1 << 20));
    if (!nl) error("unterminated text argument");
    const size_t len = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string s(reinterpret_cast<const char*>(take(len)), len);
    ++pos_;
    return s;
  }
  std::string bytes_arg(uint64_t len) {
    if (len > lim_.max_string_bytes)
      error(cat("a string of ", len, " bytes exceeds the limit of ", lim_.max_string_bytes));
    total_bytes_ += len;
    if (total_bytes_ > lim_.max_total_bytes)
      error(cat("strings total more than ", lim_.max_total_bytes, " bytes (limit)"));
    return std::string(reinterpret_cast<const char*>(take(len)), static_cast<size_t>(len));
  }

  void push(const Value* v) {
    if (stack_.size() >= lim_.max_stack) error(cat("stack deeper than ", lim_.max_stack));
    stack_.push_back(v);
  }
  const Value* pop() {
    if (stack_.size() <= base()) error("stack underflow");
    const Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const Value* top() {
    if (stack_.size() <= base()) error("stack underflow");
    return stack_.back();
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  // The items above the last MARK, removed from the stack.
  std::vector<const Value*> pop_mark() {
    if (marks_.empty()) error("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<const Value*> out(stack_.begin() + static_cast<ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  // The stack holds const pointers; containers being filled are our own values.
  Value* mut(const Value* v) { return const_cast<Value*>(v); }
  Value* container(Kind k, const char* op) {
    Value* c = mut(top());
    if (c->kind != k) error(cat(op, " on ", c->describe(), ", not a ", kind_name(k)));
    return c;
  }

  const Value* new_int(int64_t v) {
    Value* x = make(Kind::Int);
    x->i = v;
    return x;
  }
  const Value* new_str(Kind k, std::string s) {
    Value* x = make(k);
    x->s = std::move(s);
    return x;
  }
  const Value* new_seq(Kind k, std::vector<const Value*> items) {
    count_items(items.size());
    Value* x = make(k);
    x->items = std::move(items);
    return x;
  }
  const Value* long_bytes(uint64_t len);
  const Value* text_int(const std::string& s, bool is_long);
  const Value* text_string(std::string s);
  std::string raw_unicode_escape(const std::string& s);

  // A map, not a vector: a hostile LONG_BINPUT index must not allocate up to it.
  void memo_put(uint64_t idx, const Value* v) {
    if (idx >= lim_.max_memo) error(cat("memo index ", idx, " exceeds the limit ", lim_.max_memo));
    if (memo_.size() >= lim_.max_memo) error(cat("more than ", lim_.max_memo, " memo entries"));
    memo_[idx] = v;
  }
  const Value* memo_get(uint64_t idx) {
    const auto it = memo_.find(idx);
    if (it == memo_.end()) error(cat("memo index ", idx, " was never stored"));
    return it->second;
  }
  void set_items(Value* d, const std::vector<const Value*>& kv) {
    if (kv.size() % 2) error("SETITEMS with an odd number of items");
    count_items(kv.size() / 2);
    for (size_t k = 0; k < kv.size(); k += 2) dict_set(d, kv[k], kv[k + 1]);
  }
  void dict_set(Value* d, const Value* k, const Value* v) {
    // Python replaces an existing key. String keys (all that state dicts use) are compared through
    // a per-dict index, so a dict of n keys costs O(n), not O(n^2).
    if (k->kind == Kind::Str) {
      auto& index = dict_index_[d];
      const auto [at, fresh] = index.emplace(std::string_view(k->s), d->dict.size());
      if (!fresh) {
        d->dict[at->second].second = v;
        return;
      }
    }
    d->dict.emplace_back(k, v);
  }
  void step(uint8_t op);

  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& name_;
  Limits lim_;
  std::shared_ptr<Document> doc_;
  std::vector<const Value*> stack_;
  std::unordered_map<uint64_t, const Value*> memo_;
  std::vector<size_t> marks_;
  std::unordered_map<const Value*, std::unordered_map<std::string_view, size_t>> dict_index_;
  uint64_t total_bytes_ = 0;
  size_t items_ = 0;
  uint8_t op_ = 0;
  size_t op_at_ = 0;
  bool stopped_ = false;
};

const Value* Machine::long_bytes(uint64_t len) {
  if (len > (1u << 16)) error(cat("an integer of ", len, " bytes"));
  const uint8_t* q = take(len);
  if (len <= 8) {
    uint64_t v = 0;
    for (size_t k = len; k-- > 0;) v = v << 8 | q[k];
    if (len > 0 && len < 8 && (q[len - 1] & 0x80)) v |= ~0ull << (8 * len);  // sign-extend
    return new_int(static_cast<int64_t>(v));
  }
  return new_str(Kind::BigInt, std::string(reinterpret_cast<const char*>(q), len));
}

const Value* Machine::text_int(const std::string& s, bool is_long) {
  if (!is_long && s == "01") {
    Value* b = make(Kind::Bool);
    b->b = true;
    return b;
  }
  if (!is_long && s == "00") return make(Kind::Bool);
  std::string t = s;
  if (!t.empty() && t.back() == 'L') t.pop_back();
  char* endp = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &endp, 10);
  if (t.empty() || *endp != '\0' || errno == ERANGE)
    error(cat("integer '", s.substr(0, 40), "' is malformed or beyond 64 bits"));
  return new_int(v);
}

// Protocol 0 STRING: a Python repr in quotes with backslash escapes.
const Value* Machine::text_string(std::string s) {
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
    error("STRING argument is not quoted");
  std::string out;
  for (size_t k = 1; k + 1 < s.size(); ++k) {
    char c = s[k];
    if (c == '\\' && k + 2 < s.size()) {
      const char e = s[++k];
      if (e == 'n')
        c = '\n';
      else if (e == 't')
        c = '\t';
      else if (e == 'r')
        c = '\r';
      else if (e == 'x' && k + 3 < s.size()) {
        c = static_cast<char>(std::strtol(s.substr(k + 1, 2).c_str(), nullptr, 16));
        k += 2;
      } else
        c = e;
    }
    out += c;
  }
  return new_str(Kind::Str, std::move(out));
}

// Protocol 0 UNICODE is "raw-unicode-escape": bytes are Latin-1 code points, except \uXXXX and
// \UXXXXXXXX escapes. Returned as UTF-8.
std::string Machine::raw_unicode_escape(const std::string& s) {
  std::string out;
  auto utf8 = [&](uint32_t cp) {
    if (cp > 0x10ffff) error("\\U escape beyond Unicode");
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
        error("malformed \\u escape");
      utf8(static_cast<uint32_t>(std::strtoul(h.c_str(), nullptr, 16)));
      k += 1 + digits;
    } else {
      utf8(static_cast<uint8_t>(s[k]));
    }
  }
  return out;
}

void Machine::step(uint8_t op) {
  switch (op) {
    case PROTO:
      if (le(1) > 5) error("pickle protocol above 5");
      return;
    case FRAME:
      le(8);  // frames only group bytes for buffered reading
      return;
    case STOP:
      stopped_ = true;
      return;
    case MARK:
      if (marks_.size() >= lim_.max_stack) error("too many MARKs");
      marks_.push_back(stack_.size());
      return;
    case POP:
      if (!stack_.empty() && stack_.size() == base() && !marks_.empty()) {
        marks_.pop_back();  // POP of a bare MARK, as Python allows
        return;
      }
      pop();
      return;
    case POP_MARK:
      pop_mark();
      return;
    case DUP:
      push(top());
      return;
    case NONE:
      push(make(Kind::None));
      return;
    case NEWTRUE:
    case NEWFALSE: {
      Value* b = make(Kind::Bool);
      b->b = op == NEWTRUE;
      push(b);
      return;
    }
    case BININT:
      push(new_int(static_cast<int32_t>(le(4))));
      return;
    case BININT1:
      push(new_int(static_cast<int64_t>(le(1))));
      return;
    case BININT2:
      push(new_int(static_cast<int64_t>(le(2))));
      return;
    case LONG1:
      push(long_bytes(le(1)));
      return;
    case LONG4:
      push(long_bytes(le(4)));
      return;
    case INT:
    case LONG:
      push(text_int(line(), op == LONG));
      return;
    case FLOAT:
    case BINFLOAT: {
      Value* f = make(Kind::Float);
      if (op == BINFLOAT) {
        const uint8_t* q = take(8);  // big-endian IEEE 754 double
        uint64_t v = 0;
        for (int k = 0; k < 8; ++k) v = v << 8 | q[k];
        std::memcpy(&f->f, &v, 8);
      } else {
        const std::string s = line();
        char* endp = nullptr;
        f->f = std::strtod(s.c_str(), &endp);
        if (s.empty() || *endp != '\0') error(cat("float '", s.substr(0, 40), "' is malformed"));
      }
      push(f);
      return;
    }
    case STRING:
      push(text_string(line()));
      return;
    case BINSTRING:
      push(new_str(Kind::Str, bytes_arg(le(4))));
      return;
    case SHORT_BINSTRING:
      push(new_str(Kind::Str, bytes_arg(le(1))));
      return;
    case UNICODE:
      push(new_str(Kind::Str, raw_unicode_escape(line())));
      return;
    case BINUNICODE:
      push(new_str(Kind::Str, bytes_arg(le(4))));
      return;
    case SHORT_BINUNICODE:
      push(new_str(Kind::Str, bytes_arg(le(1))));
      return;
    case BINUNICODE8:
      push(new_str(Kind::Str, bytes_arg(le(8))));
      return;
    case BINBYTES:
      push(new_str(Kind::Bytes, bytes_arg(le(4))));
      return;
    case SHORT_BINBYTES:
      push(new_str(Kind::Bytes, bytes_arg(le(1))));
      return;
    case BINBYTES8:
    case BYTEARRAY8:
      push(new_str(Kind::Bytes, bytes_arg(le(8))));
      return;
    case EMPTY_LIST:
      push(make(Kind::List));
      return;
    case EMPTY_TUPLE:
      push(make(Kind::Tuple));
      return;
    case EMPTY_DICT:
      push(make(Kind::Dict));
      return;
    case EMPTY_SET:
      push(make(Kind::Set));
      return;
    case LIST:
      push(new_seq(Kind::List, pop_mark()));
      return;
    case TUPLE:
      push(new_seq(Kind::Tuple, pop_mark()));
      return;
    case FROZENSET:
      push(new_seq(Kind::Set, pop_mark()));
      return;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
      const size_t k = op - TUPLE1 + 1;
      if (stack_.size() < base() + k) error("stack underflow");
      std::vector<const Value*> items(stack_.end() - static_cast<ptrdiff_t>(k), stack_.end());
      stack_.resize(stack_.size() - k);
      push(new_seq(Kind::Tuple, std::move(items)));
      return;
    }
    case DICT: {
      Value* d = make(Kind::Dict);
      set_items(d, pop_mark());
      push(d);
      return;
    }
    case APPEND: {
      const Value* v = pop();
      count_items(1);
      container(Kind::List, "APPEND")->items.push_back(v);
      return;
    }
    case APPENDS: {
      auto items = pop_mark();
      count_items(items.size());
      Value* l = container(Kind::List, "APPENDS");
      l->items.insert(l->items.end(), items.begin(), items.end());
      return;
    }
    case ADDITEMS: {
      auto items = pop_mark();
      count_items(items.size());
      Value* s = container(Kind::Set, "ADDITEMS");
      s->items.insert(s->items.end(), items.begin(), items.end());
      return;
    }
    case SETITEM: {
      const Value* v = pop();
      const Value* k = pop();
      count_items(1);
      dict_set(container(Kind::Dict, "SETITEM"), k, v);
      return;
    }
    case SETITEMS: {
      auto kv = pop_mark();
      set_items(container(Kind::Dict, "SETITEMS"), kv);
      return;
    }
    case BINPUT:
      memo_put(le(1), top());
      return;
    case LONG_BINPUT:
      memo_put(le(4), top());
      return;
    case PUT:
      memo_put(static_cast<uint64_t>(text_int(line(), true)->i), top());
      return;
    case MEMOIZE:
      memo_put(memo_.size(), top());
      return;
    case BINGET:
      push(memo_get(le(1)));
      return;
    case LONG_BINGET:
      push(memo_get(le(4)));
      return;
    case GET:
      push(memo_get(static_cast<uint64_t>(text_int(line(), true)->i)));
      return;
    case GLOBAL: {
      const std::string module = line();
      const std::string name = line();
      push(resolve_global(*this, module, name));
      return;
    }
    case STACK_GLOBAL: {
      const Value* name = pop();
      const Value* module = pop();
      if (module->kind != Kind::Str || name->kind != Kind::Str)
        error("STACK_GLOBAL needs two strings");
      push(resolve_global(*this, module->s, name->s));
      return;
    }
    case REDUCE: {
      const Value* args = pop();
      const Value* fn = pop();
      push(call(*this, fn, args));
      return;
    }
    case NEWOBJ: {
      const Value* args = pop();
      const Value* cls = pop();
      push(call(*this, cls, args));
      return;
    }
    case NEWOBJ_EX: {
      const Value* kwargs = pop();
      const Value* args = pop();
      const Value* cls = pop();
      if (kwargs->kind != Kind::Dict || !kwargs->dict.empty())
        error("NEWOBJ_EX with keyword arguments");
      push(call(*this, cls, args));
      return;
    }
    case BUILD: {
      const Value* state = pop();
      build(*this, mut(top()), state);
      return;
    }
    case BINPERSID:
      push(persistent_load(*this, pop()));
      return;
    case PERSID:
      push(persistent_load(*this, new_str(Kind::Str, line())));
      return;
    case INST:
    case OBJ:
      error("INST/OBJ (protocol 0/1 class instances) are not supported in checkpoints");
    case EXT1:
    case EXT2:
    case EXT4:
      error("the copyreg extension registry (EXT opcodes) is not supported");
    case NEXT_BUFFER:
    case READONLY_BUFFER:
      error("out-of-band buffers (protocol 5) are not supported");
    default:
      error("unknown opcode");
  }
}

std::shared_ptr<Document> Machine::run(size_t* end) {
  size_t ops = 0;
  while (!stopped_) {
    if (pos_ >= n_) {
      op_at_ = pos_;
      error("ends before STOP (truncated?)");
    }
    if (++ops > lim_.max_ops) error(cat("more than ", lim_.max_ops, " opcodes (limit)"));
    op_at_ = pos_;
    op_ = p_[pos_++];
    step(op_);
  }
  if (stack_.size() != 1 || !marks_.empty())
    error(cat("STOP with ", stack_.size(), " values on the stack (expected one)"));
  doc_->set_root(stack_.back());
  check_depth(*this, doc_->root(), lim_.max_depth);
  if (end) *end = pos_;
  return doc_;
}

}  // namespace

std::shared_ptr<Document> unpickle(const uint8_t* data, size_t size, const std::string& name,
                                   const Limits& limits, size_t* end) {
  Machine m(data, size, name, limits);
  return m.run(end);
}

}  // namespace eight::pickle
