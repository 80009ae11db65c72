// safetensors writer: the header lists tensors in the given order with consecutive offsets.
#include "formats/safetensors_writer.h"

#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace eight::safetensors {

void write(const std::string& path, const std::vector<OutTensor>& tensors,
           const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    check(names.insert(t.name).second && t.name != "__metadata__", "[safetensors] '", path,
          "': tensor name '", t.name, "' is used twice (or reserved)");
    check(t.data.defined() && t.data.is_contiguous(), "[safetensors] tensor '", t.name,
          "' is not a contiguous host tensor");
    const uint64_t n = t.data.nbytes();
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", std::vector<int64_t>(t.data.shape().begin(), t.data.shape().end())},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  check(f != nullptr, "[safetensors] cannot create '", tmp, "': ", std::strerror(errno));
  uint8_t len[8];
  for (int k = 0; k < 8; ++k) len[k] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * k));
  bool ok =
      std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i)
    ok = std::fwrite(tensors[i].data.raw(), 1, tensors[i].data.nbytes(), f) ==
         tensors[i].data.nbytes();
  const int err = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail("[safetensors] writing '", path, "' failed: ", std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("[safetensors] renaming '", tmp, "' to '", path, "' failed: ", ec.message());
  }
}

}  // namespace eight::safetensors
