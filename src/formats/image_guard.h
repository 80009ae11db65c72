#pragma once
// Checks run on the raw bytes before a file reaches stb_image, for inputs that stb 2.27 (Debian
// 12's libstb-dev) mishandles instead of rejecting: a JPEG scan that selects a Huffman table the
// file never defined makes stb decode with an uninitialized table (out-of-bounds reads, found by
// tests/fuzz/fuzz_image.cpp), and a Huffman table of more than 256 codes overruns its arrays.
#include <cstdint>
#include <span>
#include <string>

namespace eight::image::detail {

// Throws Error naming `name` when a JPEG scan uses an undefined Huffman table. Structure stb
// itself rejects (bad lengths, missing markers) is left to stb's own errors. Also refuses Huffman
// tables with more than 256 codes, which overflow stb's tables.
void check_jpeg_tables(std::span<const uint8_t> file, const std::string& name);

// Throws Error naming `name` when a PNG chunk claims more bytes than the file has left: stb sizes
// its IDAT buffer from the claim before reading, so a 300-byte file could make it allocate 2 GB.
void check_png_chunks(std::span<const uint8_t> file, const std::string& name);

}  // namespace eight::image::detail
