// `eight inspect FILE`: what a GGUF file holds — metadata, architecture, parameter count, the quant
// mix (tensors and bytes per type) and the tensor table — for people (default) or machines
// (--json). `--tensor NAME --dump OUT.npy` writes one tensor dequantized to float32. PyTorch
// checkpoints (.pt/.pth/.bin/.ckpt) are listed by cli/torch_cli.cpp.
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "cli/args.h"
#include "cli/torch_cli.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/npy.h"
#include "formats/torch_checkpoint.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct TypeMix {
  int64_t tensors = 0, bytes = 0, params = 0;
};

// Per-type totals, largest share of the file first.
std::vector<std::pair<DType, TypeMix>> quant_mix(const gguf::File& f) {
  std::map<DType, TypeMix> by_type;
  for (const auto& t : f.tensors()) {
    auto& m = by_type[t.type];
    ++m.tensors;
    m.bytes += static_cast<int64_t>(t.nbytes);
    m.params += t.numel();
  }
  std::vector<std::pair<DType, TypeMix>> out(by_type.begin(), by_type.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
  return out;
}

std::string format_count(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000)
    std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1'000'000)
    std::snprintf(buf, sizeof buf, "%.1f M", n / 1e6);
  else if (n >= 1'000)
    std::snprintf(buf, sizeof buf, "%.1f K", n / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

std::string type_label(const gguf::Value& v) {
  if (!v.is_array()) return gguf::value_type_name(v.type());
  return cat("[", gguf::value_type_name(v.elem_type()), "]");
}

// general.file_type as "Q4_K_M", or "" when absent or unknown.
std::string file_type(const gguf::File& f, int64_t* id) {
  *id = -1;
  const gguf::Value* v = f.find("general.file_type");
  if (!v || !v->is_integer() || v->as_i64() < 0 || v->as_i64() > UINT32_MAX) return "";
  *id = v->as_i64();
  return gguf::file_type_name(static_cast<uint32_t>(*id));
}

ojson to_json(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::BOOL:
      return v.as_bool();
    case ValueType::STRING:
      return v.as_string();
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
      return v.as_f64();
    case ValueType::ARRAY: {
      ojson a = ojson::array();
      if (v.elem_type() == ValueType::STRING) {
        for (size_t i = 0; i < v.size(); ++i) a.push_back(std::string(v.string_at(i)));
      } else {
        for (size_t i = 0; i < v.size(); ++i) a.push_back(to_json(v.at(i)));
      }
      return a;
    }
    default:
      if (v.as_f64() < 0) return v.as_i64();
      return v.as_u64();
  }
}

ojson tensor_json(const gguf::File& f, const gguf::TensorInfo& t) {
  return {{"name", t.name},
          {"type", std::string(dtype_name(t.type))},
          {"shape", std::vector<int64_t>(t.shape.begin(), t.shape.end())},
          {"ne", t.ne},
          {"parameters", t.numel()},
          {"bytes", t.nbytes},
          {"offset", t.offset},
          {"file_offset", f.data_offset() + t.offset}};
}

// The tensor as float32, shape as stored (PyTorch order).
Tensor dequantized(const gguf::File& f, const gguf::TensorInfo& info) {
  const Tensor src = f.tensor(info);
  Tensor out = Tensor::empty(info.shape, DType::F32);
  float* dst = out.data<float>();
  const int64_t n = info.numel();
  if (can_dequantize(info.type)) {
    const int64_t row = info.ne.empty() ? 1 : info.ne[0];
    dequantize_rows(info.type, src.raw(), dst, n / row, row, &global_thread_pool());
    return out;
  }
  auto convert = [&](auto tag) {
    using T = decltype(tag);
    const T* p = src.data<T>();
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(p[i]);
  };
  switch (info.type) {
    case DType::I8:
      convert(int8_t{});
      break;
    case DType::I16:
      convert(int16_t{});
      break;
    case DType::I32:
      convert(int32_t{});
      break;
    case DType::I64:
      convert(int64_t{});
      break;
    case DType::F64:
      convert(double{});
      break;
    default:
      fail("[inspect] tensor '", info.name, "' is ", dtype_name(info.type),
           ", which eight cannot dequantize yet");
  }
  return out;
}

struct Stats {
  double min = INFINITY, max = -INFINITY, mean = 0, rms = 0;
  int64_t nonfinite = 0;
};

Stats stats_of(const Tensor& x) {
  Stats s;
  const float* p = x.data<float>();
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (!std::isfinite(p[i])) {
      ++s.nonfinite;
      continue;
    }
    s.min = std::min<double>(s.min, p[i]);
    s.max = std::max<double>(s.max, p[i]);
    sum += p[i];
    sq += double(p[i]) * p[i];
    ++n;
  }
  if (n) {
    s.mean = sum / n;
    s.rms = std::sqrt(sq / n);
  }
  return s;
}

int inspect_tensor(const gguf::File& f, const std::string& name, const std::string& dump,
                   bool json) {
  const gguf::TensorInfo* info = f.find_tensor(name);
  check(info != nullptr, "[inspect] no tensor '", name, "' in ", f.path(), " (it has ",
        f.tensors().size(), " tensors; 'eight inspect FILE --tensors' lists them)");
  const Tensor x = dequantized(f, *info);
  const Stats s = stats_of(x);
  if (!dump.empty()) npy::write(dump, x);
  if (json) {
    ojson j = tensor_json(f, *info);
    j["stats"] = {{"min", s.min},
                  {"max", s.max},
                  {"mean", s.mean},
                  {"rms", s.rms},
                  {"nonfinite", s.nonfinite}};
    if (!dump.empty()) j["dump"] = dump;
    std::printf("%s\n", j.dump(2, ' ', false, ojson::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf(
      "tensor:   %s\ntype:     %s\nshape:    %s (ggml ne %s)\nbytes:    %s at data offset "
      "%llu\nvalues:   min %.6g, max %.6g, mean %.6g, rms %.6g",
      info->name.c_str(), std::string(dtype_name(info->type)).c_str(), info->shape.str().c_str(),
      Dims(info->ne.begin(), info->ne.end()).str().c_str(),
      format_bytes(static_cast<int64_t>(info->nbytes)).c_str(),
      static_cast<unsigned long long>(info->offset), s.min, s.max, s.mean, s.rms);
  if (s.nonfinite) std::printf(", %lld not finite", static_cast<long long>(s.nonfinite));
  std::printf("\n");
  if (!dump.empty())
    std::printf("wrote:    %s (float32 %s)\n", dump.c_str(), x.shape().str().c_str());
  return 0;
}

void print_json(const gguf::File& f) {
  int64_t ft_id;
  const std::string ft = file_type(f, &ft_id);
  ojson j;
  j["file"] = f.path();
  j["size"] = f.file_size();
  j["version"] = f.version();
  j["alignment"] = f.alignment();
  j["data_offset"] = f.data_offset();
  j["architecture"] = f.architecture();
  j["file_type"] = ft_id < 0 ? ojson(nullptr) : ojson{{"id", ft_id}, {"name", ft}};
  j["parameters"] = f.parameter_count();
  ojson mix = ojson::array();
  for (const auto& [type, m] : quant_mix(f))
    mix.push_back({{"type", std::string(dtype_name(type))},
                   {"tensors", m.tensors},
                   {"bytes", m.bytes},
                   {"parameters", m.params}});
  j["types"] = mix;
  ojson meta = ojson::object(), types = ojson::object();
  for (const auto& [k, v] : f.metadata()) {
    meta[k] = to_json(v);
    types[k] = type_label(v);
  }
  j["metadata"] = meta;
  j["metadata_types"] = types;
  ojson tensors = ojson::array();
  for (const auto& t : f.tensors()) tensors.push_back(tensor_json(f, t));
  j["tensors"] = tensors;
  std::printf("%s\n", j.dump(2, ' ', false, ojson::error_handler_t::replace).c_str());
}

void print_human(const gguf::File& f, bool all_tensors) {
  int64_t ft_id;
  const std::string ft = file_type(f, &ft_id);
  const int64_t params = f.parameter_count();
  std::printf("file:          %s\n", f.path().c_str());
  std::printf("format:        GGUF v%u, %s, alignment %llu, data at byte %llu\n", f.version(),
              format_bytes(static_cast<int64_t>(f.file_size())).c_str(),
              static_cast<unsigned long long>(f.alignment()),
              static_cast<unsigned long long>(f.data_offset()));
  std::printf("architecture:  %s\n", f.architecture().empty() ? "-" : f.architecture().c_str());
  if (f.has("general.name") && f.get("general.name").is_string())
    std::printf("name:          %s\n", f.get("general.name").as_string().c_str());
  if (ft_id >= 0)
    std::printf("file type:     %s (general.file_type = %lld)\n",
                ft.empty() ? "unknown" : ft.c_str(), static_cast<long long>(ft_id));
  std::printf("parameters:    %s (%lld)\n", format_count(params).c_str(),
              static_cast<long long>(params));
  std::printf("tensors:       %zu\n", f.tensors().size());
  if (!f.tensors().empty()) {
    std::printf("\nquant mix:\n  %-8s %8s %12s %14s\n", "type", "tensors", "bytes", "parameters");
    for (const auto& [type, m] : quant_mix(f))
      std::printf("  %-8s %8lld %12s %14s\n", std::string(dtype_name(type)).c_str(),
                  static_cast<long long>(m.tensors), format_bytes(m.bytes).c_str(),
                  format_count(m.params).c_str());
  }
  std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
  for (const auto& [k, v] : f.metadata())
    std::printf("  %-40s %-9s %s\n", k.c_str(), type_label(v).c_str(), v.str().c_str());
  if (f.tensors().empty()) return;
  constexpr size_t kDefaultRows = 24;
  const size_t rows = all_tensors ? f.tensors().size() : std::min(f.tensors().size(), kDefaultRows);
  std::printf("\ntensors:\n  %-36s %-8s %-20s %12s %12s\n", "name", "type", "shape", "bytes",
              "offset");
  for (size_t i = 0; i < rows; ++i) {
    const auto& t = f.tensors()[i];
    std::printf("  %-36s %-8s %-20s %12llu %12llu\n", t.name.c_str(),
                std::string(dtype_name(t.type)).c_str(), t.shape.str().c_str(),
                static_cast<unsigned long long>(t.nbytes),
                static_cast<unsigned long long>(t.offset));
  }
  if (rows < f.tensors().size())
    std::printf("  ... %zu more (--tensors lists all)\n", f.tensors().size() - rows);
}

int run(int argc, char** argv) {
  ArgParser p("inspect", "FILE",
              "Show what a GGUF model file holds: metadata, architecture, parameter count, the "
              "quant mix and the tensor table; or a PyTorch checkpoint's (.pt, .pth, .bin, .ckpt) "
              "tensors and, with --json, its other values, read without running its pickle.");
  bool json = false, all_tensors = false;
  std::string tensor, dump;
  p.flag("--json", &json, "print everything as JSON (all metadata values in full)");
  p.flag("--tensors", &all_tensors, "list every tensor (the default shows the first 24)");
  p.option("--tensor", &tensor, "NAME", "show one tensor: its info and value statistics");
  p.option("--dump", &dump, "OUT.npy",
           "with --tensor: write the tensor dequantized to float32 as a NumPy .npy file, shape in "
           "PyTorch order (outermost first)");
  p.positional_count(1, 1);
  p.epilog(
      "examples:\n  eight inspect model.gguf\n  eight inspect model.gguf --json\n"
      "  eight inspect model.gguf --tensor blk.0.attn_q.weight --dump q.npy\n"
      "  eight inspect pytorch_model.bin --json");
  if (auto rc = p.parse(argc, argv)) return *rc;
  if (!dump.empty() && tensor.empty()) {
    std::fprintf(stderr, "eight inspect: --dump needs --tensor NAME\n");
    return 2;
  }
  if (torch::looks_like_checkpoint(p.positionals()[0]))
    return inspect_torch(p.positionals()[0], json, all_tensors, tensor, dump);
  const gguf::File f = gguf::File::open(p.positionals()[0]);
  if (!tensor.empty()) return inspect_tensor(f, tensor, dump, json);
  if (json)
    print_json(f);
  else
    print_human(f, all_tensors);
  return 0;
}

const Registration reg(
    {.name = "inspect",
     .summary = "show a GGUF file's (or PyTorch checkpoint's) metadata and tensors",
     .run = run,
     .order = 40});

}  // namespace
}  // namespace eight::cli
