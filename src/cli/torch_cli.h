#pragma once
// `eight inspect` and `eight convert` for PyTorch checkpoints (.pt/.pth/.bin/.ckpt), read by the
// safe reader in formats/torch_checkpoint.h.
#include <string>

namespace eight::cli {

// Lists the tensors (and with --json the non-tensor values) of a checkpoint, or with `tensor`
// shows one tensor's statistics and with `dump` writes it as float32 .npy.
int inspect_torch(const std::string& path, bool json, bool all_tensors, const std::string& tensor,
                  const std::string& dump);

// Writes every tensor to OUT.safetensors (dtypes as stored) or OUT.gguf (F32/F16/BF16 as stored,
// integer tensors as the same GGUF integer type, U8 and BOOL as I8). With `state_dict_only`, only
// the tensors under the state dict's prefix, named without it. Returns the exit code.
int convert_torch(const std::string& path, const std::string& out, bool state_dict_only);

}  // namespace eight::cli
