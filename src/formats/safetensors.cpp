#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"

namespace eight::safetensors {
namespace {

using json = nlohmann::json;

struct DTypeEntry {
  const char* name;
  size_t bytes;
  bool viewable;
  DType view;
};

// Every dtype the safetensors format defines; the ones eight has no dtype for are listed so their
// sizes can still be checked and the error can say "unsupported" rather than "unknown".
constexpr DTypeEntry kDTypes[] = {
    {"F64", 8, true, DType::F64},         {"F32", 4, true, DType::F32},
    {"F16", 2, true, DType::F16},         {"BF16", 2, true, DType::BF16},
    {"I64", 8, true, DType::I64},         {"I32", 4, true, DType::I32},
    {"I16", 2, true, DType::I16},         {"I8", 1, true, DType::I8},
    {"U8", 1, true, DType::I8},           {"BOOL", 1, true, DType::I8},
    {"U64", 8, false, DType::F32},        {"U32", 4, false, DType::F32},
    {"U16", 2, false, DType::F32},        {"F8_E4M3", 1, true, DType::F8_E4M3},
    {"F8_E5M2", 1, true, DType::F8_E5M2},
};

const DTypeEntry* find_dtype(const std::string& name) {
  for (const auto& e : kDTypes)
    if (name == e.name) return &e;
  return nullptr;
}

// a * b, or false on uint64 overflow.
bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorInfo parse_entry(const std::string& file, const std::string& name, const json& e,
                       uint64_t data_size) {
  const std::string where = cat("[safetensors] ", file, ": tensor '", name, "'");
  check(e.is_object(), where, " is not a JSON object");
  TensorInfo info;
  info.name = name;
  auto dt = e.find("dtype");
  check(dt != e.end() && dt->is_string(), where, " has no string 'dtype'");
  info.dtype = dt->get<std::string>();
  const DTypeEntry* entry = find_dtype(info.dtype);
  check(entry != nullptr, where, " has unknown dtype '", info.dtype, "'");
  info.element_bytes = entry->bytes;

  auto sh = e.find("shape");
  check(sh != e.end() && sh->is_array(), where, " has no 'shape' array");
  check(sh->size() <= static_cast<size_t>(kMaxDims), where, " has ", sh->size(),
        " dimensions (at most ", kMaxDims, ")");
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    check(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
          " has a shape entry that is not a non-negative integer: ", d.dump());
    const uint64_t n = d.get<uint64_t>();
    check(
        n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) && mul_ok(numel, n, &numel),
        where, " shape ", sh->dump(), " overflows");
    info.shape.push_back(static_cast<int64_t>(n));
  }
  uint64_t nbytes = 0;
  check(mul_ok(numel, entry->bytes, &nbytes), where, " shape ", sh->dump(), " overflows");

  auto off = e.find("data_offsets");
  check(off != e.end() && off->is_array() && off->size() == 2, where,
        " has no 'data_offsets' pair");
  for (const auto& o : *off)
    check(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), where,
          " has a data offset that is not a non-negative integer: ", o.dump());
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  check(info.begin <= info.end, where, " data_offsets [", info.begin, ", ", info.end,
        "] run backwards");
  check(info.end - info.begin == nbytes, where, " shape ", info.shape.str(), " of ", info.dtype,
        " needs ", nbytes, " bytes but data_offsets [", info.begin, ", ", info.end, "] hold ",
        info.end - info.begin);
  check(info.end <= data_size, where, " ends at data byte ", info.end, " but the data section has ",
        data_size, " bytes");
  return info;
}

}  // namespace

DType view_dtype(const TensorInfo& info) {
  const DTypeEntry* e = find_dtype(info.dtype);
  check(e != nullptr && e->viewable, "[safetensors] tensor '", info.name, "' has dtype ",
        info.dtype, ", which eight cannot use");
  return e->view;
}

File File::open(const std::string& path) {
  return parse(std::make_shared<MappedFile>(path), path);
}

File File::parse(std::shared_ptr<Storage> bytes, const std::string& name) {
  File f;
  f.name_ = name;
  f.storage_ = std::move(bytes);
  const uint64_t size = f.storage_->size();
  check(size >= 8, "[safetensors] ", name, ": ", size,
        " bytes is too short for the 8-byte header length");
  const auto* p = static_cast<const uint8_t*>(f.storage_->data());
  const uint64_t header = read_u64_le(p);
  check(header <= kMaxHeaderBytes, "[safetensors] ", name, ": header length ", header,
        " exceeds the ", kMaxHeaderBytes, "-byte limit");
  check(header <= size - 8, "[safetensors] ", name, ": header length ", header,
        " runs past the end of the file (", size, " bytes)");
  f.data_offset_ = 8 + header;
  const uint64_t data_size = size - f.data_offset_;

  json doc;
  try {
    doc = json::parse(reinterpret_cast<const char*>(p + 8),
                      reinterpret_cast<const char*>(p + 8 + header));
  } catch (const json::exception& e) {
    fail("[safetensors] ", name, ": header is not valid JSON: ", e.what());
  }
  check(doc.is_object(), "[safetensors] ", name, ": header is not a JSON object");

  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "__metadata__") {
      check(it->is_object(), "[safetensors] ", name, ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        check(m->is_string(), "[safetensors] ", name, ": __metadata__ value '", m.key(),
              "' is not a string");
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    f.tensors_.push_back(parse_entry(name, it.key(), *it, data_size));
  }
  // Offset order; then no two tensors may share bytes (empty tensors occupy none).
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* prev = nullptr;
  for (const auto& t : f.tensors_) {
    if (t.begin == t.end) continue;
    if (prev)
      check(t.begin >= prev->end, "[safetensors] ", name, ": tensor '", t.name, "' [", t.begin,
            ", ", t.end, ") overlaps tensor '", prev->name, "' [", prev->begin, ", ", prev->end,
            ")");
    prev = &t;
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor File::tensor(const std::string& name) const {
  const TensorInfo* info = find_tensor(name);
  check(info != nullptr, "[safetensors] ", name_, " has no tensor '", name, "'");
  return tensor(*info);
}

Tensor File::tensor(const TensorInfo& info) const {
  const DType dt = view_dtype(info);
  const size_t offset = static_cast<size_t>(data_offset_ + info.begin);
  const auto addr = reinterpret_cast<uintptr_t>(storage_->data()) + offset;
  if (info.begin == info.end) return Tensor::zeros(info.shape, dt);
  if (addr % info.element_bytes == 0) return Tensor::from_storage(storage_, offset, info.shape, dt);
  // The header length need not keep the data aligned; element loads must be, so copy.
  Tensor out = Tensor::empty(info.shape, dt);
  std::memcpy(out.raw(), reinterpret_cast<const void*>(addr), info.end - info.begin);
  return out;
}

Checkpoint Checkpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  Checkpoint c;
  c.path_ = path;
  fs::path p(path);
  if (fs::is_directory(p)) {
    if (fs::exists(p / "model.safetensors.index.json"))
      p = p / "model.safetensors.index.json";
    else if (fs::exists(p / "model.safetensors"))
      p = p / "model.safetensors";
    else
      fail("[safetensors] directory '", path,
           "' has neither model.safetensors nor model.safetensors.index.json");
  }
  auto add_file = [&](const fs::path& file) {
    c.files_.push_back(File::open(file.string()));
    const size_t idx = c.files_.size() - 1;
    for (const auto& t : c.files_.back().tensors()) {
      auto [it, fresh] = c.where_.emplace(t.name, idx);
      check(fresh, "[safetensors] tensor '", t.name, "' appears in both '",
            c.files_[it->second].path(), "' and '", file.string(), "'");
    }
  };
  const std::string fname = p.filename().string();
  if (fname.size() > 5 && fname.ends_with(".json")) {
    std::ifstream in(p, std::ios::binary);
    check(in.good(), "[safetensors] cannot open '", p.string(), "'");
    std::stringstream ss;
    ss << in.rdbuf();
    json idx;
    try {
      idx = json::parse(ss.str());
    } catch (const json::exception& e) {
      fail("[safetensors] ", p.string(), " is not valid JSON: ", e.what());
    }
    auto wm = idx.find("weight_map");
    check(idx.is_object() && wm != idx.end() && wm->is_object(), "[safetensors] ", p.string(),
          " has no 'weight_map' object");
    std::set<std::string> shards;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      check(it->is_string(), "[safetensors] ", p.string(), ": weight_map entry '", it.key(),
            "' is not a file name");
      const std::string shard = it->get<std::string>();
      check(!shard.empty() && shard.find('/') == std::string::npos && shard != "..",
            "[safetensors] ", p.string(), ": shard name '", shard, "' is not a plain file name");
      shards.insert(shard);
    }
    check(!shards.empty(), "[safetensors] ", p.string(), " names no shards");
    for (const auto& s : shards) add_file(p.parent_path() / s);
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      auto w = c.where_.find(it.key());
      check(w != c.where_.end(), "[safetensors] ", p.string(), " maps '", it.key(), "' to ",
            it->get<std::string>(), " but no shard holds it");
      check(fs::path(c.files_[w->second].path()).filename() == it->get<std::string>(),
            "[safetensors] ", p.string(), " maps '", it.key(), "' to ", it->get<std::string>(),
            " but it is in ", c.files_[w->second].path());
    }
  } else {
    add_file(p);
  }
  return c;
}

const TensorInfo* Checkpoint::find_tensor(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second].find_tensor(name);
}

Tensor Checkpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  check(it != where_.end(), "[safetensors] checkpoint '", path_, "' has no tensor '", name, "'");
  return files_[it->second].tensor(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [n, i] : where_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace eight::safetensors
