// torch.save checkpoints: zip and legacy containers around the restricted unpickler.
#include "formats/torch_checkpoint.h"

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "formats/zip_reader.h"

namespace eight::torch {
namespace {

using pickle::Kind;
using pickle::Value;

// torch/serialization.py: MAGIC_NUMBER = 0x1950a86a20f9469cfc6c, PROTOCOL_VERSION = 1001.
constexpr uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocol = 1001;

bool is_tar(const uint8_t* p, size_t n) {
  return n >= 512 && std::memcmp(p + 257, "ustar", 5) == 0;
}

// "<name>/data.pkl" of a torch.save zip (the folder is the file's stem, any name is allowed).
std::string archive_prefix(const zip::Archive& z, const std::string& name) {
  for (const auto& e : z.entries())
    check(e.name.find("/constants.pkl") == std::string::npos, "[torch] ", name,
          " is a TorchScript archive (torch.jit.save), not a torch.save checkpoint");
  for (const auto& e : z.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash + 1, std::string::npos, "data.pkl") == 0)
      return e.name.substr(0, slash + 1);
  }
  fail("[torch] ", name, ": zip archive without a data.pkl (not a torch.save checkpoint)");
}

std::string key_name(const Value* k, size_t index) {
  if (k->kind == Kind::Str) return k->s;
  if (k->kind == Kind::Int) return std::to_string(k->i);
  return cat("<key ", index, ">");
}

}  // namespace

DType view_dtype(const TensorInfo& info) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
      {"U8", DType::I8},   {"BOOL", DType::I8}};
  for (const auto& [n, d] : table)
    if (info.dtype == n) return d;
  fail("[torch] tensor '", info.name, "' has dtype ", info.dtype, ", which eight cannot view");
}

Checkpoint Checkpoint::open(const std::string& path) {
  return parse(std::make_shared<MappedFile>(path), path);
}

Checkpoint Checkpoint::parse(std::shared_ptr<Storage> bytes, const std::string& name,
                             const pickle::Limits& limits) {
  Checkpoint c;
  c.name_ = name;
  c.storage_ = bytes;
  const auto* p = static_cast<const uint8_t*>(bytes->data());
  const size_t n = bytes->size();
  if (zip::Archive::looks_like_zip(p, n)) {
    c.format_ = "zip";
    const zip::Archive z = zip::Archive::parse(bytes, name);
    const std::string prefix = archive_prefix(z, name);
    if (const zip::Entry* bo = z.find(prefix + "byteorder")) {
      const auto b = z.read(*bo, false);
      check(std::string(reinterpret_cast<const char*>(b.data()), b.size) == "little", "[torch] ",
            name, ": big-endian checkpoint (byteorder '",
            std::string(reinterpret_cast<const char*>(b.data()), std::min<size_t>(b.size, 16)),
            "'), only little-endian is supported");
    }
    const auto pkl = z.read(*z.find(prefix + "data.pkl"), true, 1ull << 32);
    c.doc_ = pickle::unpickle(pkl.data(), pkl.size, name + ":data.pkl", limits);
    const std::string data_dir = prefix + "data/";
    for (const auto& e : z.entries()) {
      if (e.name.compare(0, data_dir.size(), data_dir) != 0) continue;
      const auto b = z.read(e, false);
      c.storages_[e.name.substr(data_dir.size())] = {b.offset, b.size, b.holder};
    }
  } else if (n > 0 && p[0] == 0x80) {
    c.format_ = "legacy";
    // Magic number, protocol version and sys_info pickles, then the object, then the storages.
    size_t pos = 0, used = 0;
    auto next = [&](const char* what) {
      auto d = pickle::unpickle(p + pos, n - pos, cat(name, ":", what), limits, &used);
      pos += used;
      return d;
    };
    const auto magic = next("magic");
    check(magic->root().kind == Kind::BigInt && magic->root().s.size() == sizeof kMagic &&
              std::memcmp(magic->root().s.data(), kMagic, sizeof kMagic) == 0,
          "[torch] ", name, ": a pickle, but not a torch.save checkpoint (no magic number)");
    const auto proto = next("protocol");
    check(proto->root().kind == Kind::Int && proto->root().i == kLegacyProtocol, "[torch] ", name,
          ": legacy protocol ", proto->root().describe(), ", expected ", kLegacyProtocol);
    const auto sys = next("sys_info");
    const Value* le = sys->root().get("little_endian");
    check(le && le->kind == Kind::Bool && le->b, "[torch] ", name,
          ": saved on a big-endian machine (sys_info.little_endian is not True)");
    c.doc_ = next("object");
    const auto keys = next("storage keys");
    check(keys->root().kind == Kind::List, "[torch] ", name, ": storage key list is ",
          keys->root().describe());
    // The storages' element sizes come from the object's persistent ids.
    std::unordered_map<std::string, size_t> elem;
    c.collect(c.doc_->root(), "", 0);
    for (const auto& t : c.tensors_) elem[t.storage_key] = t.element_bytes;
    c.tensors_.clear();
    c.index_.clear();
    for (const Value* k : keys->root().items) {
      check(k->kind == Kind::Str, "[torch] ", name, ": storage key ", k->describe());
      check(n - pos >= 8, "[torch] ", name, ": storage '", k->s, "' is missing (truncated file)");
      uint64_t count = 0;
      for (int b = 7; b >= 0; --b) count = count << 8 | p[pos + b];
      pos += 8;
      const size_t es = elem.count(k->s) ? elem[k->s] : 1;
      check(count <= (n - pos) / es, "[torch] ", name, ": storage '", k->s, "' has ", count,
            " elements of ", es, " bytes but only ", n - pos, " bytes remain (truncated file)");
      c.storages_[k->s] = {pos, count * es, bytes};
      pos += static_cast<size_t>(count * es);
    }
  } else if (is_tar(p, n)) {
    fail("[torch] ", name,
         " is a tar-format checkpoint (PyTorch before 0.4); re-save it with a newer torch.save");
  } else {
    fail("[torch] ", name, " is not a PyTorch checkpoint (neither a zip nor a pickle)");
  }
  c.collect(c.doc_->root(), "", 0);
  for (const auto& t : c.tensors_) (void)c.storage_bytes(t.storage_key, t.name);
  return c;
}

void Checkpoint::collect(const Value& v, const std::string& prefix, int depth) {
  check(tensors_.size() < 10'000'000, "[torch] ", name_, ": more than 10M tensor names");
  check(depth < 256, "[torch] ", name_, ": objects nest too deep");
  auto child = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  switch (v.kind) {
    case Kind::Dict:
      for (size_t i = 0; i < v.dict.size(); ++i)
        collect(*v.dict[i].second, child(key_name(v.dict[i].first, i)), depth + 1);
      return;
    case Kind::List:
    case Kind::Tuple:
      for (size_t i = 0; i < v.items.size(); ++i)
        collect(*v.items[i], child(std::to_string(i)), depth + 1);
      return;
    case Kind::Tensor: {
      const pickle::TensorRef& r = *v.tensor;
      TensorInfo t;
      t.name = prefix.empty() ? "root" : prefix;  // torch.save(tensor) saves a bare tensor
      t.dtype = r.storage.dtype;
      t.element_bytes = r.storage.element_bytes;
      check(r.shape.size() <= static_cast<size_t>(kMaxDims), "[torch] tensor '", prefix, "' has ",
            r.shape.size(), " dimensions (eight supports ", kMaxDims, ")");
      for (size_t d = 0; d < r.shape.size(); ++d) {
        check(r.shape[d] >= 0 && r.stride[d] >= 0, "[torch] tensor '", prefix,
              "' has a negative size or stride");
        t.shape.push_back(r.shape[d]);
        t.stride.push_back(r.stride[d]);
      }
      t.storage_offset = r.storage_offset;
      t.storage_key = r.storage.key;
      const Dims cs = contiguous_strides(t.shape);
      for (int d = 0; d < t.shape.size(); ++d)
        if (t.shape[d] > 1 && t.stride[d] != cs[d]) t.contiguous = false;
      if (index_.emplace(t.name, tensors_.size()).second) tensors_.push_back(std::move(t));
      return;
    }
    default:
      return;  // numbers, strings ...: read through root()
  }
}

const Checkpoint::StorageBytes& Checkpoint::storage_bytes(const std::string& key,
                                                          const std::string& tensor) const {
  const auto it = storages_.find(key);
  check(it != storages_.end(), "[torch] ", name_, ": tensor '", tensor, "' uses storage '", key,
        "', which the file does not hold");
  const TensorInfo* t = find_tensor(tensor);
  if (t && t->numel() > 0) {
    // The last element's index, with overflow checks: offset + sum((size - 1) * stride).
    const int64_t limit = static_cast<int64_t>(it->second.size / t->element_bytes);
    int64_t last = t->storage_offset;
    bool ok = last >= 0;
    for (int d = 0; d < t->shape.size() && ok; ++d) {
      int64_t span;
      ok = !__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) &&
           !__builtin_add_overflow(last, span, &last);
    }
    check(ok && last < limit, "[torch] ", name_, ": tensor '", tensor, "' (", t->shape.str(),
          " at element offset ", t->storage_offset, ") reaches past its storage '", key, "' of ",
          limit, " elements");
  }
  return it->second;
}

const TensorInfo* Checkpoint::find_tensor(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor Checkpoint::tensor(const TensorInfo& info) const {
  const StorageBytes& s = storage_bytes(info.storage_key, info.name);
  const DType dt = view_dtype(info);
  if (info.numel() == 0) return Tensor::empty(info.shape, dt);
  const size_t es = info.element_bytes;
  const size_t start = s.offset + static_cast<size_t>(info.storage_offset) * es;
  const auto* base = static_cast<const uint8_t*>(s.holder->data()) + start;
  if (info.contiguous && (reinterpret_cast<uintptr_t>(base) % es) == 0)
    return Tensor::from_storage(s.holder, start, info.shape, dt);
  // Misaligned (legacy files): one copy. Strided: gather element by element. Tracked memory.
  Tensor out = Tensor::empty(info.shape, dt);
  auto* dst = static_cast<uint8_t*>(out.raw());
  if (info.contiguous) {
    std::memcpy(dst, base, out.nbytes());
    return out;
  }
  const int nd = info.shape.size();
  int64_t idx[kMaxDims] = {};
  for (int64_t k = 0, n = info.numel(); k < n; ++k) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += idx[d] * info.stride[d];
    std::memcpy(dst + k * es, base + off * static_cast<int64_t>(es), es);
    for (int d = nd - 1; d >= 0 && ++idx[d] == info.shape[d]; --d) idx[d] = 0;
  }
  return out;
}

Tensor Checkpoint::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  check(t != nullptr, "[torch] no tensor '", name, "' in ", name_, " (it has ", tensors_.size(),
        " tensors)");
  return tensor(*t);
}

std::string Checkpoint::state_dict_prefix() const {
  static const char* wrappers[] = {"state_dict", "model_state_dict", "model", "best_state",
                                   "module",     "network",          "net",   "params"};
  const Value* v = &root();
  std::string prefix;
  for (int guard = 0; guard < 8 && v->kind == Kind::Dict; ++guard) {
    bool has_tensor = false;
    for (const auto& [k, x] : v->dict) has_tensor |= x->kind == Kind::Tensor;
    if (has_tensor) break;
    const Value* next = nullptr;
    for (const char* w : wrappers)
      if (const Value* x = v->get(w); x && x->kind == Kind::Dict) {
        next = x;
        prefix += cat(w, ".");
        break;
      }
    if (!next) break;
    v = next;
  }
  // DataParallel/DDP save every key under "module.".
  bool all_module = !tensors_.empty();
  size_t under = 0;
  for (const auto& t : tensors_) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    ++under;
    all_module &= t.name.compare(prefix.size(), 7, "module.") == 0;
  }
  if (under && all_module) prefix += "module.";
  return prefix;
}

Tensor Checkpoint::state_tensor(const std::string& key) const {
  return tensor(state_dict_prefix() + key);
}

bool looks_like_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t head[64] = {};
  if (!in.read(reinterpret_cast<char*>(head), 4)) return false;
  // Legacy: PROTO 2, then LONG1 of 10 bytes (the magic number).
  if (head[0] == 0x80 && head[2] == 0x8a && head[3] == 0x0a) return true;
  if (std::memcmp(head, "PK\x03\x04", 4) != 0) return false;
  // A zip: torch.save writes ARCHIVE/data.pkl first; other writers may not, so the central
  // directory at the end (names in the clear) is searched too.
  in.read(reinterpret_cast<char*>(head) + 4, sizeof head - 4);
  const size_t got = 4 + static_cast<size_t>(in.gcount());
  const size_t name_len = got >= 30 ? head[26] | head[27] << 8 : 0;
  if (got >= 30 + name_len && name_len >= 9 &&
      std::memcmp(head + 30 + name_len - 9, "/data.pkl", 9) == 0)
    return true;
  in.clear();
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  const std::streamoff tail = std::min<std::streamoff>(size, 4 << 20);
  std::string buf(static_cast<size_t>(tail), '\0');
  in.seekg(size - tail);
  in.read(buf.data(), tail);
  return buf.find("/data.pkl") != std::string::npos;
}

}  // namespace eight::torch
