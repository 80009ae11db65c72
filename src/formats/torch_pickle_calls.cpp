// The allow-list of the restricted unpickler and what each allowed call means. Nothing here runs
// code from the file: each allowed global is interpreted as data (torch's rebuild functions become
// tensor references, OrderedDict a dict, numpy scalars numbers, argparse.Namespace an inert
// object). Everything else is refused by name at GLOBAL time, before any argument is seen.
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "formats/torch_pickle_impl.h"

namespace eight::pickle {
namespace {

enum class Fn {
  RebuildTensor,     // torch._utils._rebuild_tensor(storage, offset, size, stride)
  RebuildTensorV2,   // ... (storage, offset, size, stride, requires_grad, hooks[, metadata])
  RebuildParameter,  // (data, requires_grad, hooks[, state])
  RebuildFromType,   // torch._tensor._rebuild_from_type_v2(func, type, args, state)
  Storage,           // torch.FloatStorage ...: only as the type inside a persistent id
  OrderedDict,
  Set,
  FrozenSet,
  ByteArray,
  Size,
  Device,
  CodecsEncode,
  NumpyScalar,
  InertClass,  // argparse.Namespace, numpy.dtype, pathlib paths: Object(args, state)
  Value,       // usable as data only (torch.float32, torch.Tensor ...), never called
};

struct StorageType {
  const char* dtype;
  size_t bytes;
};

const std::unordered_map<std::string_view, StorageType>& storage_types() {
  static const std::unordered_map<std::string_view, StorageType> t = {
      {"FloatStorage", {"F32", 4}},        {"HalfStorage", {"F16", 2}},
      {"BFloat16Storage", {"BF16", 2}},    {"DoubleStorage", {"F64", 8}},
      {"LongStorage", {"I64", 8}},         {"IntStorage", {"I32", 4}},
      {"ShortStorage", {"I16", 2}},        {"CharStorage", {"I8", 1}},
      {"ByteStorage", {"U8", 1}},          {"BoolStorage", {"BOOL", 1}},
      {"ComplexFloatStorage", {"C64", 8}}, {"ComplexDoubleStorage", {"C128", 16}},
      {"UntypedStorage", {"U8", 1}},
  };
  return t;
}

const std::unordered_map<std::string, Fn>& allow_list() {
  static const std::unordered_map<std::string, Fn> t = [] {
    std::unordered_map<std::string, Fn> m = {
        {"torch._utils._rebuild_tensor", Fn::RebuildTensor},
        {"torch._utils._rebuild_tensor_v2", Fn::RebuildTensorV2},
        {"torch._utils._rebuild_parameter", Fn::RebuildParameter},
        {"torch._utils._rebuild_parameter_with_state", Fn::RebuildParameter},
        {"torch._tensor._rebuild_from_type_v2", Fn::RebuildFromType},
        {"collections.OrderedDict", Fn::OrderedDict},
        {"builtins.set", Fn::Set},
        {"builtins.frozenset", Fn::FrozenSet},
        {"builtins.bytearray", Fn::ByteArray},
        {"torch.Size", Fn::Size},
        {"torch.device", Fn::Device},
        {"_codecs.encode", Fn::CodecsEncode},
        {"numpy.core.multiarray.scalar", Fn::NumpyScalar},
        {"numpy._core.multiarray.scalar", Fn::NumpyScalar},
        {"numpy.dtype", Fn::InertClass},
        {"argparse.Namespace", Fn::InertClass},
        {"pathlib.PosixPath", Fn::InertClass},
        {"pathlib.WindowsPath", Fn::InertClass},
        {"pathlib.PurePosixPath", Fn::InertClass},
        {"pathlib.PureWindowsPath", Fn::InertClass},
        {"torch.Tensor", Fn::Value},
        {"torch.nn.parameter.Parameter", Fn::Value},
        {"torch.strided", Fn::Value},
    };
    for (const char* d : {"float32", "float16", "bfloat16", "float64", "int64", "int32", "int16",
                          "int8", "uint8", "bool", "float", "half", "double", "long", "int"})
      m[cat("torch.", d)] = Fn::Value;
    for (const auto& [s, _] : storage_types()) {
      m[cat("torch.", s)] = Fn::Storage;
      m[cat("torch.cuda.", s)] = Fn::Storage;
    }
    return m;
  }();
  return t;
}

// Protocols 0-2 spell some Python 3 modules by their Python 2 names; Python's unpickler maps them
// back (_compat_pickle.IMPORT_MAPPING), so the allow-list and messages use the Python 3 names.
std::string qualified(const std::string& module, const std::string& name) {
  static const std::pair<const char*, const char*> renamed[] = {
      {"__builtin__", "builtins"},  {"copy_reg", "copyreg"},     {"commands", "subprocess"},
      {"cPickle", "pickle"},        {"UserDict", "collections"}, {"exceptions", "builtins"},
      {"urllib2", "urllib.request"}};
  for (const auto& [py2, py3] : renamed)
    if (module == py2) return cat(py3, ".", name);
  return cat(module, ".", name);
}

const Value* arg(Context& cx, const Value* args, size_t k, const std::string& fn) {
  if (k >= args->items.size())
    cx.error(cat(fn, " called with ", args->items.size(), " arguments, needs more than ", k));
  return args->items[k];
}

int64_t int_arg(Context& cx, const Value* v, const std::string& what) {
  if (v->kind != Kind::Int) cx.error(cat(what, " is ", v->describe(), ", not an int"));
  return v->i;
}

std::vector<int64_t> int_list(Context& cx, const Value* v, const std::string& what) {
  if (v->kind != Kind::Tuple && v->kind != Kind::List)
    cx.error(cat(what, " is ", v->describe(), ", not a tuple of ints"));
  std::vector<int64_t> out;
  for (const Value* x : v->items) out.push_back(int_arg(cx, x, what));
  return out;
}

const Value* rebuild_tensor(Context& cx, const Value* args, const std::string& fn) {
  const Value* st = arg(cx, args, 0, fn);
  if (st->kind != Kind::Storage) cx.error(cat(fn, ": argument 0 is ", st->describe()));
  auto t = std::make_shared<TensorRef>();
  t->storage = *st->storage;
  t->storage_offset = int_arg(cx, arg(cx, args, 1, fn), "storage_offset");
  t->shape = int_list(cx, arg(cx, args, 2, fn), "size");
  t->stride = int_list(cx, arg(cx, args, 3, fn), "stride");
  if (args->items.size() > 4 && args->items[4]->kind == Kind::Bool)
    t->requires_grad = args->items[4]->b;
  if (t->shape.size() != t->stride.size())
    cx.error(cat(fn, ": size has ", t->shape.size(), " dimensions but stride ", t->stride.size()));
  Value* v = cx.make(Kind::Tensor);
  v->tensor = std::move(t);
  return v;
}

// numpy.core.multiarray.scalar(dtype, bytes): the value of a NumPy scalar (np.float64(0.5)).
const Value* numpy_scalar(Context& cx, const Value* args) {
  const Value* dt = arg(cx, args, 0, "numpy scalar");
  const Value* raw = arg(cx, args, 1, "numpy scalar");
  if (dt->kind != Kind::Object || dt->s != "numpy.dtype" || dt->items.empty() ||
      dt->items[0]->kind != Kind::Str || raw->kind != Kind::Bytes)
    cx.error("numpy scalar without a dtype and bytes");
  const std::string& code = dt->items[0]->s;  // "f8", "i4", "b1", ...
  const std::string& b = raw->s;
  const Value* state = dt->state;  // (version, byteorder, ...)
  if (state && state->kind == Kind::Tuple && state->items.size() > 1 &&
      state->items[1]->kind == Kind::Str && state->items[1]->s == ">")
    cx.error("big-endian numpy scalar");
  auto as = [&](auto tag) {
    using T = decltype(tag);
    if (b.size() != sizeof(T)) cx.error(cat("numpy scalar ", code, " with ", b.size(), " bytes"));
    T x;
    std::memcpy(&x, b.data(), sizeof x);
    return x;
  };
  Value* v = nullptr;
  if (code == "f8" || code == "f4") {
    v = cx.make(Kind::Float);
    v->f = code == "f8" ? as(double{}) : as(float{});
  } else if (code == "i8" || code == "i4" || code == "i2" || code == "i1" || code == "u1" ||
             code == "u2" || code == "u4") {
    v = cx.make(Kind::Int);
    v->i = code == "i8"   ? as(int64_t{})
           : code == "i4" ? as(int32_t{})
           : code == "i2" ? as(int16_t{})
           : code == "i1" ? as(int8_t{})
           : code == "u1" ? as(uint8_t{})
           : code == "u2" ? as(uint16_t{})
                          : as(uint32_t{});
  } else if (code == "b1") {
    v = cx.make(Kind::Bool);
    v->b = as(uint8_t{}) != 0;
  } else {
    Value* o = cx.make(Kind::Object);  // kept inert: its name and arguments
    o->s = "numpy.scalar";
    o->items = args->items;
    return o;
  }
  return v;
}

// _codecs.encode(text, "latin1"): how protocol 2 pickles bytes. The text holds code points < 256.
const Value* codecs_encode(Context& cx, const Value* args) {
  const Value* text = arg(cx, args, 0, "_codecs.encode");
  const Value* enc = arg(cx, args, 1, "_codecs.encode");
  if (text->kind != Kind::Str || enc->kind != Kind::Str ||
      (enc->s != "latin1" && enc->s != "latin-1"))
    cx.error("_codecs.encode other than (str, 'latin1')");
  std::string out;
  const std::string& s = text->s;
  for (size_t k = 0; k < s.size(); ++k) {
    const auto c = static_cast<uint8_t>(s[k]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xe0) == 0xc0 && k + 1 < s.size()) {
      const unsigned cp = (c & 0x1fu) << 6 | (static_cast<uint8_t>(s[++k]) & 0x3fu);
      if (cp > 0xff) cx.error("_codecs.encode: a character beyond latin-1");
      out += static_cast<char>(cp);
    } else {
      cx.error("_codecs.encode: a character beyond latin-1");
    }
  }
  Value* v = cx.make(Kind::Bytes);
  v->s = std::move(out);
  return v;
}

Value* sequence(Context& cx, Kind k, const Value* args) {
  Value* v = cx.make(k);
  if (args->items.empty()) return v;
  const Value* src = args->items[0];
  if (src->kind != Kind::List && src->kind != Kind::Tuple && src->kind != Kind::Set)
    cx.error(cat("a ", kind_name(k), " made from ", src->describe()));
  cx.count_items(src->items.size());
  v->items = src->items;
  return v;
}

}  // namespace

bool global_allowed(std::string_view module, std::string_view name) {
  return allow_list().count(qualified(std::string(module), std::string(name))) != 0;
}

const Value* resolve_global(Context& cx, const std::string& module, const std::string& name) {
  const std::string q = qualified(module, name);
  const std::string as_written = cat(module, ".", name);
  if (!allow_list().count(q))
    cx.error(cat("global '", q, "'", q == as_written ? "" : cat(" (written '", as_written, "')"),
                 " is not allowed: only tensors and plain data are read and nothing is run (a "
                 "pickled class or function, which Python would import and call; a checkpoint "
                 "of weights should hold a state_dict())"));
  Value* v = cx.make(Kind::Global);
  v->s = q;
  return v;
}

const Value* call(Context& cx, const Value* fn, const Value* args) {
  if (fn->kind != Kind::Global) cx.error(cat("call of ", fn->describe(), ", not a global"));
  if (args->kind != Kind::Tuple) cx.error(cat("call of ", fn->s, " with ", args->describe()));
  const std::string& q = fn->s;
  switch (allow_list().at(q)) {
    case Fn::RebuildTensor:
    case Fn::RebuildTensorV2:
      return rebuild_tensor(cx, args, q);
    case Fn::RebuildParameter: {
      const Value* data = arg(cx, args, 0, q);
      if (data->kind != Kind::Tensor) cx.error(cat(q, " of ", data->describe()));
      return data;
    }
    case Fn::RebuildFromType: {
      // func(*args) re-typed to a Tensor subclass; the type and Python state are irrelevant here.
      // func may itself be this function: bound the chain (tuples nest as deep as the input).
      thread_local int nested = 0;
      if (nested >= 8) cx.error(cat(q, " nested more than 8 deep"));
      ++nested;
      const Value* r = nullptr;
      try {
        r = call(cx, arg(cx, args, 0, q), arg(cx, args, 2, q));
      } catch (...) {
        --nested;
        throw;
      }
      --nested;
      return r;
    }
    case Fn::OrderedDict: {
      Value* d = cx.make(Kind::Dict);
      if (args->items.empty()) return d;
      const Value* src = args->items[0];
      if (src->kind != Kind::List && src->kind != Kind::Tuple)
        cx.error(cat("OrderedDict of ", src->describe()));
      cx.count_items(src->items.size());
      for (const Value* kv : src->items) {
        if ((kv->kind != Kind::Tuple && kv->kind != Kind::List) || kv->items.size() != 2)
          cx.error("OrderedDict item is not a (key, value) pair");
        d->dict.emplace_back(kv->items[0], kv->items[1]);
      }
      return d;
    }
    case Fn::Set:
    case Fn::FrozenSet:
      return sequence(cx, Kind::Set, args);
    case Fn::Size:
      return sequence(cx, Kind::Tuple, args);
    case Fn::ByteArray: {
      Value* v = cx.make(Kind::Bytes);
      if (!args->items.empty()) {
        if (args->items[0]->kind != Kind::Bytes) cx.error("bytearray of a non-bytes value");
        v->s = args->items[0]->s;
      }
      return v;
    }
    case Fn::Device: {
      const Value* type = arg(cx, args, 0, q);
      if (type->kind != Kind::Str) cx.error("torch.device of a non-string");
      Value* v = cx.make(Kind::Str);
      v->s = type->s;
      if (args->items.size() > 1 && args->items[1]->kind == Kind::Int)
        v->s += cat(":", args->items[1]->i);
      return v;
    }
    case Fn::CodecsEncode:
      return codecs_encode(cx, args);
    case Fn::NumpyScalar:
      return numpy_scalar(cx, args);
    case Fn::InertClass: {
      Value* o = cx.make(Kind::Object);
      o->s = q;
      cx.count_items(args->items.size());
      o->items = args->items;
      return o;
    }
    case Fn::Storage:
    case Fn::Value:
      break;
  }
  cx.error(cat("'", q, "' may appear as data but not be called"));
}

void build(Context& cx, Value* target, const Value* state) {
  switch (target->kind) {
    case Kind::Object:
    case Kind::Dict:  // an OrderedDict's instance attributes, e.g. a state dict's _metadata
      target->state = state;
      return;
    case Kind::Tensor:  // Parameter/tensor Python attributes: irrelevant to the data
      return;
    default:
      cx.error(cat("BUILD on ", target->describe()));
  }
}

const Value* persistent_load(Context& cx, const Value* pid) {
  if (pid->kind != Kind::Tuple || pid->items.empty() || pid->items[0]->kind != Kind::Str)
    cx.error(cat("persistent id ", pid->describe(), " is not a torch storage id"));
  const auto& it = pid->items;
  if (it[0]->s != "storage")
    cx.error(cat("persistent id '", it[0]->s.substr(0, 40),
                 "' is not supported (only torch storages; whole pickled modules are not)"));
  if (it.size() < 5 || it[1]->kind != Kind::Global || it[2]->kind != Kind::Str ||
      it[3]->kind != Kind::Str || it[4]->kind != Kind::Int)
    cx.error("storage id is not ('storage', type, key, location, numel)");
  if (it.size() > 5 && it[5]->kind != Kind::None)
    cx.error("storage views (pre-1.0 legacy checkpoints) are not supported");
  const std::string& type = it[1]->s;
  const size_t dot = type.rfind('.');
  const auto st = storage_types().find(std::string_view(type).substr(dot + 1));
  if (st == storage_types().end() || allow_list().at(type) != Fn::Storage)
    cx.error(cat("storage type '", type, "' is not a torch storage type"));
  if (it[4]->i < 0) cx.error(cat("storage '", it[2]->s, "' has ", it[4]->i, " elements"));
  auto ref = std::make_shared<StorageRef>();
  ref->key = it[2]->s;
  ref->dtype = st->second.dtype;
  ref->element_bytes = st->second.bytes;
  ref->numel = it[4]->i;
  ref->location = it[3]->s;
  Value* v = cx.make(Kind::Storage);
  v->storage = std::move(ref);
  return v;
}

namespace {
// Longest path below v (memoized: shared sub-objects are visited once); -1 marks "on the path".
size_t depth_of(Context& cx, const Value* v, size_t depth, size_t max_depth,
                std::unordered_map<const Value*, int64_t>& seen) {
  if (depth > max_depth) cx.error(cat("objects nest deeper than ", max_depth, " (or are cyclic)"));
  auto [at, fresh] = seen.emplace(v, -1);
  if (!fresh) {
    if (at->second < 0) cx.error("the object graph is cyclic");
    return static_cast<size_t>(at->second);
  }
  size_t d = 0;
  auto visit = [&](const Value* c) {
    if (c) d = std::max(d, 1 + depth_of(cx, c, depth + 1, max_depth, seen));
  };
  for (const Value* c : v->items) visit(c);
  for (const auto& [k, x] : v->dict) {
    visit(k);
    visit(x);
  }
  visit(v->state);
  if (depth + d > max_depth) cx.error(cat("objects nest deeper than ", max_depth));
  seen[v] = static_cast<int64_t>(d);
  return d;
}
}  // namespace

void check_depth(Context& cx, const Value& root, size_t max_depth) {
  std::unordered_map<const Value*, int64_t> seen;
  depth_of(cx, &root, 0, max_depth, seen);
}

}  // namespace eight::pickle
