#pragma once
// Writes .safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length, the JSON header (padded with spaces to a multiple of 8 bytes so every tensor
// starts 8-byte aligned), then the tensors' bytes back to back in the order given.
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace eight::safetensors {

struct OutTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  Tensor data;        // contiguous host tensor holding exactly the bytes to write
};

// Writes via a temporary file renamed into place only when complete (an error leaves no file).
// Throws Error naming the path on I/O failure, duplicate names or a non-contiguous tensor.
void write(const std::string& path, const std::vector<OutTensor>& tensors,
           const std::map<std::string, std::string>& metadata = {});

}  // namespace eight::safetensors
