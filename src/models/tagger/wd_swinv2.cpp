#include "core/error.h"
#include "models/tagger/wd_internal.h"
namespace eight::tagger::wd {
std::unique_ptr<Backbone> load_swinv2(const Config&, const Weights& w) {
  fail("[wd] ", w.source(), ": SwinV2 taggers are not supported yet");
}
}  // namespace eight::tagger::wd
