// What `eight list` shows about a model file: its container format and, for GGUF, the
// architecture and quantization mix recorded in its metadata.
#include "core/error.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "runtime/store/store.h"

namespace eight {

ModelFileInfo read_model_file_info(const std::string& path) {
  ModelFileInfo info;
  info.format = detect_model_format_file(path);
  if (info.format != "gguf") return info;
  try {
    const gguf::File f = gguf::File::open(path);
    info.architecture = f.architecture();
    if (const gguf::Value* ft = f.find("general.file_type"); ft && ft->is_integer())
      info.quant = gguf::file_type_name(static_cast<uint32_t>(ft->as_u64()));
  } catch (const Error& e) {
    // The store keeps what it was given; loading the model later reports the problem in full.
    log_warn("[store] '", path, "' has a GGUF magic but its metadata did not parse: ", e.what());
  }
  return info;
}

}  // namespace eight
