#include "formats/image_guard.h"

#include <algorithm>

#include "core/error.h"

namespace eight::image::detail {

void check_jpeg_tables(std::span<const uint8_t> f, const std::string& name) {
  // SOI may follow any number of 0xFF fill bytes, as stb reads it.
  size_t pos = 0;
  while (pos < f.size() && f[pos] == 0xFF) ++pos;
  if (pos == 0 || pos >= f.size() || f[pos] != 0xD8) return;
  ++pos;
  bool defined[2][4] = {};  // [class: 0 DC, 1 AC][table id]
  bool progressive = false, seen_frame = false;
  // Bytes past the end read as zero, as stb's reader returns them: a table cut short by the end
  // of the file is still decoded by stb, so it is checked the same way.
  auto at = [&](size_t i) -> size_t { return i < f.size() ? f[i] : 0; };
  auto be16 = [&](size_t i) { return at(i) << 8 | at(i + 1); };
  while (pos + 4 <= f.size()) {
    if (f[pos] != 0xFF) {  // padding between segments: stb scans forward for a marker too
      ++pos;
      continue;
    }
    const uint8_t marker = f[pos + 1];
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0x00 || marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    if (marker == 0xD9) return;
    const size_t len = be16(pos + 2);
    if (len < 2) return;
    const size_t body = pos + 4, end = pos + 2 + len;
    if (end > f.size() && marker != 0xC4 && marker != 0xDA) return;
    if (!seen_frame && marker >= 0xC0 && marker <= 0xC2) {  // stb reads the first frame only
      seen_frame = true;
      progressive = marker == 0xC2;
    }
    if (marker == 0xC4) {  // DHT: one or more tables of [Tc Th][16 counts][values]
      size_t p = body;
      while (p < end) {  // as stb: a table starts while any declared length remains
        const size_t tc = at(p) >> 4, th = at(p) & 15;
        size_t n = 0;
        for (int i = 1; i <= 16; ++i) n += at(p + i);
        // More than 256 codes overflows stb's symbol arrays (stb 2.28 added this check).
        check(n <= 256, "[image] cannot decode '", name, "' (JPEG): a Huffman table declares ", n,
              " codes (at most 256)");
        if (tc <= 1 && th <= 3) defined[tc][th] = true;
        p += 17 + n;
      }
    }
    if (marker == 0xDA) {  // SOS: [Ns][Ns × (Cs, Td Ta)][Ss][Se][Ah Al]
      if (body >= end) return;
      const size_t ns = at(body);
      if (body + 1 + 2 * ns + 3 > end) return;
      const size_t tail = body + 1 + 2 * ns;
      const size_t ss = at(tail), ah = at(tail + 2) >> 4;
      for (size_t c = 0; c < ns; ++c) {
        const size_t td = at(body + 2 + 2 * c) >> 4, ta = at(body + 2 + 2 * c) & 15;
        // Which tables a scan decodes with (ITU T.81 G.1.2): sequential scans both; progressive
        // DC first passes the DC table, AC passes the AC table, DC refinements none.
        const bool needs_dc = !progressive || (ss == 0 && ah == 0);
        const bool needs_ac = !progressive || ss > 0;
        if ((needs_dc && td <= 3 && !defined[0][td]) || (needs_ac && ta <= 3 && !defined[1][ta]))
          fail("[image] cannot decode '", name, "' (JPEG): a scan uses Huffman table ",
               needs_dc && td <= 3 && !defined[0][td] ? "DC " : "AC ",
               needs_dc && td <= 3 && !defined[0][td] ? td : ta, ", which the file never defines");
      }
      // Skip the entropy-coded data as stb's bit reader does: 0xFF, any further 0xFF fill, then
      // 0x00 is a stuffed data byte; anything else is a marker (restart markers are passed over,
      // which checks more of the file than stb reads, never less).
      pos = end;
      while (pos < f.size()) {
        if (f[pos] != 0xFF) {
          ++pos;
          continue;
        }
        size_t q = pos + 1;
        while (q < f.size() && f[q] == 0xFF) ++q;
        if (q < f.size() && (f[q] == 0x00 || (f[q] >= 0xD0 && f[q] <= 0xD7))) {
          pos = q + 1;
          continue;
        }
        pos = q - 1;  // at the 0xFF before the marker byte (or the end)
        break;
      }
      continue;
    }
    pos = end;
  }
}

void check_png_chunks(std::span<const uint8_t> f, const std::string& name) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (f.size() < 8 || !std::equal(kSignature, kSignature + 8, f.begin())) return;
  size_t pos = 8;
  while (pos + 8 <= f.size()) {
    const size_t len = static_cast<size_t>(f[pos]) << 24 | static_cast<size_t>(f[pos + 1]) << 16 |
                       static_cast<size_t>(f[pos + 2]) << 8 | f[pos + 3];
    const size_t left = f.size() - (pos + 8);
    const char type[5] = {static_cast<char>(f[pos + 4]), static_cast<char>(f[pos + 5]),
                          static_cast<char>(f[pos + 6]), static_cast<char>(f[pos + 7]), 0};
    check(len <= left, "[image] cannot decode '", name, "' (PNG): chunk '", type, "' at byte ", pos,
          " claims ", len, " bytes but only ", left, " remain (truncated or corrupt)");
    if (std::equal(type, type + 4, "IEND")) return;
    pos += 12 + len;  // length, type, data, CRC
  }
}

}  // namespace eight::image::detail
