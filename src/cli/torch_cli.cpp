// inspect / convert for PyTorch checkpoints. Values are shown as JSON: dicts as objects, lists,
// tuples and sets as arrays, tensors as {"tensor": NAME}, bytes as {"bytes": HEX}, inert objects
// as {"object": CLASS, "args": [...], "state": ...}.
#include "cli/torch_cli.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "formats/gguf.h"
#include "formats/npy.h"
#include "formats/safetensors_writer.h"
#include "formats/torch_checkpoint.h"

namespace eight::cli {
namespace {

using ojson = nlohmann::ordered_json;
using pickle::Kind;
using pickle::Value;

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string key_text(const Value* k, size_t i) {
  if (k->kind == Kind::Str) return k->s;
  if (k->kind == Kind::Int) return std::to_string(k->i);
  return cat("<key ", i, ">");
}

// The object tree as JSON; tensors are named by their dotted path (as tensors() lists them).
ojson to_json(const Value& v, const std::string& path) {
  auto child = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
  switch (v.kind) {
    case Kind::None:
      return nullptr;
    case Kind::Bool:
      return v.b;
    case Kind::Int:
      return v.i;
    case Kind::BigInt:
      return {{"bigint_le_hex", hex(v.s)}};
    case Kind::Float:
      return std::isfinite(v.f) ? ojson(v.f) : ojson(cat(v.f));
    case Kind::Str:
      return v.s;
    case Kind::Bytes:
      return {{"bytes", hex(v.s)}};
    case Kind::List:
    case Kind::Tuple:
    case Kind::Set: {
      ojson a = ojson::array();
      for (size_t i = 0; i < v.items.size(); ++i)
        a.push_back(to_json(*v.items[i], child(std::to_string(i))));
      return a;
    }
    case Kind::Dict: {
      ojson o = ojson::object();
      for (size_t i = 0; i < v.dict.size(); ++i) {
        const std::string k = key_text(v.dict[i].first, i);
        o[k] = to_json(*v.dict[i].second, child(k));
      }
      return o;
    }
    case Kind::Tensor:
      return {{"tensor", path}};
    case Kind::Storage:
      return {{"storage", v.storage->key}};
    case Kind::Global:
      return {{"global", v.s}};
    case Kind::Object: {
      ojson o = {{"object", v.s}, {"args", ojson::array()}};
      for (const Value* a : v.items) o["args"].push_back(to_json(*a, ""));
      if (v.state) o["state"] = to_json(*v.state, "");
      return o;
    }
  }
  return nullptr;
}

ojson tensor_json(const torch::TensorInfo& t) {
  return {{"name", t.name},
          {"dtype", t.dtype},
          {"shape", std::vector<int64_t>(t.shape.begin(), t.shape.end())},
          {"parameters", t.numel()},
          {"bytes", static_cast<uint64_t>(t.numel()) * t.element_bytes},
          {"storage", t.storage_key},
          {"storage_offset", t.storage_offset},
          {"contiguous", t.contiguous}};
}

// The tensor's values as float32 (shape as stored).
Tensor as_f32(const torch::Checkpoint& c, const torch::TensorInfo& info) {
  const Tensor src = c.tensor(info);
  Tensor out = Tensor::empty(info.shape, DType::F32);
  float* dst = out.data<float>();
  const int64_t n = info.numel();
  auto convert = [&](auto tag, auto fn) {
    using T = decltype(tag);
    const T* p = src.data<T>();
    for (int64_t i = 0; i < n; ++i) dst[i] = fn(p[i]);
  };
  auto cast = [](auto x) { return static_cast<float>(x); };
  const std::string& d = info.dtype;
  if (d == "F32")
    convert(float{}, cast);
  else if (d == "F16")
    convert(uint16_t{}, fp16_to_fp32);
  else if (d == "BF16")
    convert(uint16_t{}, bf16_to_fp32);
  else if (d == "F64")
    convert(double{}, cast);
  else if (d == "I64")
    convert(int64_t{}, cast);
  else if (d == "I32")
    convert(int32_t{}, cast);
  else if (d == "I16")
    convert(int16_t{}, cast);
  else if (d == "I8")
    convert(int8_t{}, cast);
  else if (d == "U8" || d == "BOOL")
    convert(uint8_t{}, cast);
  else
    fail("[inspect] tensor '", info.name, "' has dtype ", d, ", which cannot be dumped");
  return out;
}

int inspect_one(const torch::Checkpoint& c, const std::string& name, const std::string& dump,
                bool json) {
  const torch::TensorInfo* info = c.find_tensor(name);
  check(info != nullptr, "[inspect] no tensor '", name, "' in ", c.path(), " (it has ",
        c.tensors().size(), " tensors; 'eight inspect FILE --tensors' lists them)");
  const Tensor x = as_f32(c, *info);
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.data<float>()[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  const double mean = x.numel() ? sum / static_cast<double>(x.numel()) : 0;
  if (!dump.empty()) npy::write(dump, x);
  if (json) {
    ojson j = tensor_json(*info);
    j["stats"] = {{"min", lo}, {"max", hi}, {"mean", mean}};
    if (!dump.empty()) j["dump"] = dump;
    std::printf("%s\n", j.dump(2, ' ', false, ojson::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("tensor:   %s\ntype:     %s\nshape:    %s\nvalues:   min %.6g, max %.6g, mean %.6g\n",
              info->name.c_str(), info->dtype.c_str(), info->shape.str().c_str(), lo, hi, mean);
  if (!dump.empty())
    std::printf("wrote:    %s (float32 %s)\n", dump.c_str(), x.shape().str().c_str());
  return 0;
}

}  // namespace

int inspect_torch(const std::string& path, bool json, bool all_tensors, const std::string& tensor,
                  const std::string& dump) {
  const torch::Checkpoint c = torch::Checkpoint::open(path);
  if (!tensor.empty()) return inspect_one(c, tensor, dump, json);
  int64_t params = 0;
  for (const auto& t : c.tensors()) params += t.numel();
  if (json) {
    ojson j = {{"file", c.path()},
               {"format", "pytorch-" + c.format()},
               {"state_dict_prefix", c.state_dict_prefix()},
               {"parameters", params},
               {"tensors", ojson::array()}};
    for (const auto& t : c.tensors()) j["tensors"].push_back(tensor_json(t));
    j["values"] = to_json(c.root(), "");
    std::printf("%s\n", j.dump(2, ' ', false, ojson::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("file:          %s\nformat:        PyTorch checkpoint (%s)\n", c.path().c_str(),
              c.format().c_str());
  std::printf("state dict:    %s\nparameters:    %lld\ntensors:       %zu\n",
              c.state_dict_prefix().empty() ? "(top level)" : c.state_dict_prefix().c_str(),
              static_cast<long long>(params), c.tensors().size());
  const size_t rows = all_tensors ? c.tensors().size() : std::min<size_t>(c.tensors().size(), 24);
  if (rows) std::printf("\ntensors:\n  %-44s %-5s %-20s %s\n", "name", "type", "shape", "storage");
  for (size_t i = 0; i < rows; ++i) {
    const auto& t = c.tensors()[i];
    std::printf("  %-44s %-5s %-20s %s%s\n", t.name.c_str(), t.dtype.c_str(), t.shape.str().c_str(),
                t.storage_key.c_str(), t.contiguous ? "" : " (strided)");
  }
  if (rows < c.tensors().size())
    std::printf("  ... %zu more (--tensors lists all)\n", c.tensors().size() - rows);
  return 0;
}

int convert_torch(const std::string& path, const std::string& out, bool state_dict_only) {
  const torch::Checkpoint c = torch::Checkpoint::open(path);
  const std::string prefix = state_dict_only ? c.state_dict_prefix() : "";
  std::vector<safetensors::OutTensor> tensors;
  for (const auto& t : c.tensors()) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    Tensor data = c.tensor(t);
    if (!data.is_contiguous()) data = data.clone();
    tensors.push_back({t.name.substr(prefix.size()), t.dtype, data});
  }
  check(!tensors.empty(), "[convert] ", path, " holds no tensors to convert");
  const bool gguf_out = out.size() >= 5 && out.compare(out.size() - 5, 5, ".gguf") == 0;
  if (gguf_out) {
    gguf::Writer w;
    w.set("general.name", gguf::Value::string(std::filesystem::path(path).stem().string()));
    size_t longest = 0;
    for (const auto& t : tensors) {
      longest = std::max(longest, t.name.size());
      // U8/BOOL go in as I8 (the same bytes); GGUF has no 0-d tensors, so scalars become [1].
      w.add_tensor(t.name, t.data.dim() == 0 ? t.data.reshape({1}) : t.data);
    }
    if (longest > 63) {
      std::fprintf(stderr,
                   "eight convert: tensor names up to %zu bytes (llama.cpp reads at most 63)\n",
                   longest);
      w.set_max_name_bytes(longest);
    }
    w.write(out);
  } else {
    safetensors::write(out, tensors, {{"format", "pt"}, {"source", path}});
  }
  std::printf("%s: %zu tensors from %s (%s checkpoint%s)\n", out.c_str(), tensors.size(),
              path.c_str(), c.format().c_str(),
              prefix.empty() ? "" : cat(", state dict under '", prefix, "'").c_str());
  return 0;
}

}  // namespace eight::cli
