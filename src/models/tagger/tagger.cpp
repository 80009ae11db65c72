// The tagger format registry and selected_tags.csv.
#include "models/tagger/tagger.h"

#include <utility>

#include "core/error.h"

namespace eight::tagger {
namespace {

std::vector<Format>& registry() {
  static std::vector<Format> formats;
  return formats;
}

// One CSV record's fields (RFC 4180: "a,""b""" is a field holding a,"b"). `pos` advances past
// the record's line end.
std::vector<std::string> csv_record(const std::string& text, size_t& pos, const std::string& source,
                                    int line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  while (pos < text.size()) {
    const char c = text[pos++];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (pos < text.size() && text[pos] == '"') {
        fields.back() += '"';
        ++pos;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      break;
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  check(!quoted, "[tagger] ", source, " line ", line, ": a quoted field never ends");
  return fields;
}

}  // namespace

void register_format(Format format) {
  registry().push_back(std::move(format));
}

const std::vector<Format>& formats() {
  return registry();
}

std::shared_ptr<const Tagger> open(const std::string& path) {
  for (const Format& f : registry())
    if (f.recognizes(path)) return f.open(path);
  std::string known;
  for (const Format& f : registry()) known += cat("\n  ", f.name, ": ", f.what);
  if (known.empty()) known = " (no tagger formats are built in)";
  throw Error(cat("[tagger] ", path, " is not a tagger model eight reads; it reads:", known));
}

std::vector<Tag> parse_selected_tags(const std::string& text, const std::string& source) {
  size_t pos = 0;
  int line = 1;
  const std::vector<std::string> header = csv_record(text, pos, source, line);
  int name_col = -1, category_col = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "name") name_col = static_cast<int>(i);
    if (header[i] == "category") category_col = static_cast<int>(i);
  }
  check(name_col >= 0 && category_col >= 0, "[tagger] ", source,
        " has no 'name' and 'category' columns in its header (a selected_tags.csv starts "
        "tag_id,name,category,count)");
  std::vector<Tag> tags;
  while (pos < text.size()) {
    ++line;
    const std::vector<std::string> f = csv_record(text, pos, source, line);
    if (f.size() == 1 && f[0].empty()) continue;  // blank line (the file's last newline)
    check(f.size() == header.size(), "[tagger] ", source, " line ", line, " has ", f.size(),
          " fields, the header ", header.size());
    const std::string& name = f[static_cast<size_t>(name_col)];
    const std::string& code = f[static_cast<size_t>(category_col)];
    check(!name.empty(), "[tagger] ", source, " line ", line, ": empty tag name");
    Category category;
    if (code == "0")
      category = Category::General;
    else if (code == "4")
      category = Category::Character;
    else if (code == "9")
      category = Category::Rating;
    else
      throw Error(cat("[tagger] ", source, " line ", line, ": category '", code,
                      "' is none of 0 (general), 4 (character), 9 (rating)"));
    tags.push_back({name, category});
  }
  check(!tags.empty(), "[tagger] ", source, " lists no tags");
  return tags;
}

}  // namespace eight::tagger
