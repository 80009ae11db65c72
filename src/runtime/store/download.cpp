// Resumable downloads with libcurl (see download.h for the policy).
#include "runtime/store/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "runtime/store/sha256.h"

namespace eight {
namespace {

using Clock = std::chrono::steady_clock;

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  check(end && *end == '\0' && d >= 0, "[pull] ", name, "='", v, "' is not a non-negative number");
  return d;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  *out = v;
  return true;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

struct CurlHandle {
  CURL* h = curl_easy_init();
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

struct HeaderList {
  curl_slist* list = nullptr;
  void add(const std::string& line) { list = curl_slist_append(list, line.c_str()); }
  ~HeaderList() { curl_slist_free_all(list); }
};

struct FileCloser {
  FILE* f = nullptr;
  ~FileCloser() {
    if (f) std::fclose(f);
  }
};

// What one HTTP response said about itself (reset at each status line, i.e. per redirect hop).
struct Response {
  long status = 0;
  bool has_length = false;
  uint64_t content_length = 0;
  bool has_range = false;
  uint64_t range_start = 0;
  bool has_total = false;
  uint64_t range_total = 0;
};

// State shared by the curl callbacks of one attempt. Callbacks cannot throw through libcurl, so
// they record an error and return a value that makes curl stop.
struct Transfer {
  const DownloadOptions* opts = nullptr;
  FILE* file = nullptr;
  Sha256* hasher = nullptr;
  uint64_t* have = nullptr;      // bytes in the partial file (and in the hasher)
  uint64_t* expected = nullptr;  // total size once stated, 0 when unknown
  std::string* linked_sha = nullptr;
  uint64_t linked_size = 0;
  Response resp;
  bool body_started = false;
  std::string error_body;  // start of a non-2xx body, for the error message
  std::string fatal;       // a non-retryable error found in a callback
  // Progress.
  uint64_t start_bytes = 0;
  Clock::time_point start = Clock::now(), last_print{};
  bool printed = false;
};

size_t on_header(char* data, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nitems;
  const std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp = Response{};
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) t->resp.status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  const std::string key = lower(trim(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (key == "content-length") {
    t->resp.has_length = parse_u64(value, &t->resp.content_length);
  } else if (key == "content-range") {
    // "bytes START-END/TOTAL" or "bytes */TOTAL" (416).
    const std::string v = lower(value);
    if (v.rfind("bytes ", 0) == 0) {
      const std::string spec = v.substr(6);
      const size_t dash = spec.find('-'), slash = spec.find('/');
      if (dash != std::string::npos && slash != std::string::npos && dash < slash)
        t->resp.has_range = parse_u64(spec.substr(0, dash), &t->resp.range_start);
      if (slash != std::string::npos)
        t->resp.has_total = parse_u64(spec.substr(slash + 1), &t->resp.range_total);
    }
  } else if (key == "x-linked-etag") {
    // Hugging Face's LFS files: the sha256 of the content, quoted (sometimes weak: W/"...").
    std::string v = value;
    if (v.rfind("W/", 0) == 0) v = v.substr(2);
    v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
    v = lower(v);
    if (is_sha256_hex(v) && t->linked_sha->empty()) *t->linked_sha = v;
  } else if (key == "x-linked-size") {
    uint64_t s = 0;
    if (parse_u64(value, &s) && t->linked_size == 0) t->linked_size = s;
  }
  return n;
}

// Called once, at the first body byte of a 200/206 response: decides whether this continues the
// partial file or starts over, and what total size the server stated.
bool begin_body(Transfer* t) {
  const Response& r = t->resp;
  if (r.status == 206) {
    if (!r.has_range || r.range_start != *t->have) {
      t->fatal = cat("[pull] asked to resume at byte ", *t->have, " but the server sent range ",
                     r.has_range ? std::to_string(r.range_start) : std::string("(none)"));
      return false;
    }
  } else if (*t->have > 0) {
    // 200 to a Range request: the server sends everything again, so the partial file restarts.
    log_info("[pull] the server ignored the resume request; starting over");
    if (std::fflush(t->file) != 0 || ::ftruncate(fileno(t->file), 0) != 0 ||
        std::fseek(t->file, 0, SEEK_SET) != 0) {
      t->fatal = cat("[pull] cannot truncate '", t->opts->partial_path, "'");
      return false;
    }
    *t->have = 0;
    t->hasher->reset();
    t->start_bytes = 0;
  }
  uint64_t total = 0;
  if (r.status == 206 && r.has_total)
    total = r.range_total;
  else if (r.has_length)
    total = *t->have + r.content_length;
  if (total == 0 && t->linked_size) total = t->linked_size;
  if (total && t->linked_size && total != t->linked_size) {
    t->fatal = cat("[pull] the server states two sizes: ", total, " bytes (Content-Length) and ",
                   t->linked_size, " (X-Linked-Size)");
    return false;
  }
  if (total) *t->expected = total;
  // Fail now, not after hours, when the rest cannot fit on the disk.
  struct statvfs fs_info;
  const std::string dir = std::filesystem::path(t->opts->partial_path).parent_path().string();
  if (total > *t->have && ::statvfs(dir.empty() ? "." : dir.c_str(), &fs_info) == 0) {
    const uint64_t avail = uint64_t(fs_info.f_bavail) * uint64_t(fs_info.f_frsize);
    if (total - *t->have > avail) {
      t->fatal = cat("[pull] needs ", format_bytes(int64_t(total - *t->have)), " more but only ",
                     format_bytes(int64_t(avail)), " is free in ", dir);
      return false;
    }
  }
  t->body_started = true;
  return true;
}

size_t on_body(char* data, size_t size, size_t nitems, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nitems;
  if (t->resp.status != 200 && t->resp.status != 206) {
    // A redirect's or an error's body: keep the start of it for the message.
    if (t->error_body.size() < 512) t->error_body.append(data, std::min<size_t>(n, 512));
    return n;
  }
  if (!t->body_started && !begin_body(t)) return 0;
  if (*t->expected && *t->have + n > *t->expected) {
    t->fatal = cat("[pull] the server sent more than the ", *t->expected,
                   " bytes it stated; cut off at ", *t->have + n);
    return 0;
  }
  if (std::fwrite(data, 1, n, t->file) != n) {
    t->fatal = cat("[pull] cannot write '", t->opts->partial_path, "': ", std::strerror(errno));
    return 0;
  }
  t->hasher->update(data, n);
  *t->have += n;
  return n;
}

std::string format_duration(double s) {
  if (s < 0 || s > 99 * 3600) return "--:--";
  const int64_t secs = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (secs >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(secs / 3600),
                  (long long)(secs / 60 % 60), (long long)(secs % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(secs / 60), (long long)(secs % 60));
  return buf;
}

void print_progress(Transfer* t, bool final) {
  const auto now = Clock::now();
  const double interval = t->opts->progress_tty ? 0.2 : 5.0;
  if (t->opts->quiet ||
      (!final && std::chrono::duration<double>(now - t->last_print).count() < interval))
    return;
  if (final && !t->printed) return;
  if (!final && *t->have == t->start_bytes) return;  // nothing received yet
  t->last_print = now;
  t->printed = true;
  const double elapsed = std::chrono::duration<double>(now - t->start).count();
  const uint64_t got = *t->have >= t->start_bytes ? *t->have - t->start_bytes : 0;
  const double rate = elapsed > 0 ? double(got) / elapsed : 0;
  const uint64_t total = *t->expected;
  std::string line = t->opts->label + "  " + format_bytes(int64_t(*t->have));
  if (total) {
    line += " / " + format_bytes(int64_t(total));
    line += cat("  ", int(100.0 * double(*t->have) / double(total)), "%");
  }
  line += "  " + format_bytes(int64_t(rate)) + "/s";
  if (total && rate > 0) line += "  ETA " + format_duration(double(total - *t->have) / rate);
  if (t->opts->progress_tty)
    std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");  // clear the rest
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  print_progress(static_cast<Transfer*>(user), false);
  return 0;
}

bool is_loopback_host(const std::string& host) {
  if (host == "[::1]" || host == "::1") return true;
  // 127.0.0.0/8 written as a dotted quad.
  int parts = 0;
  size_t i = 0;
  int first = -1;
  while (i <= host.size()) {
    size_t j = i;
    while (j < host.size() && std::isdigit(static_cast<unsigned char>(host[j]))) ++j;
    if (j == i || j - i > 3) return false;
    const int v = std::atoi(host.substr(i, j - i).c_str());
    if (v > 255) return false;
    if (parts == 0) first = v;
    ++parts;
    if (j == host.size()) break;
    if (host[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4 && first == 127;
}

std::string url_part(const std::string& url, CURLUPart part) {
  CURLU* u = curl_url();
  check(u != nullptr, "[pull] out of memory parsing a URL");
  std::string out;
  const CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0);
  char* value = nullptr;
  const bool ok = rc == CURLUE_OK && curl_url_get(u, part, &value, 0) == CURLUE_OK && value;
  if (ok) out = value;
  curl_free(value);
  curl_url_cleanup(u);
  check(ok, "[pull] cannot parse URL '", url, "'");
  return out;
}

enum class Outcome { Done, Retry };

}  // namespace

std::string url_host(const std::string& url) {
  return lower(url_part(url, CURLUPART_HOST));
}

void check_download_url(const std::string& url) {
  const std::string scheme = lower(url_part(url, CURLUPART_SCHEME));
  if (scheme == "https") return;
  check(scheme == "http", "[pull] refusing '", url, "': only https:// URLs are fetched");
  check(is_loopback_host(url_host(url)), "[pull] refusing '", url,
        "': plain http is allowed only to a loopback address (127.0.0.0/8, ::1); use https");
}

DownloadOptions download_options_from_env(std::string url, std::string partial_path) {
  DownloadOptions o;
  o.url = std::move(url);
  o.partial_path = std::move(partial_path);
  o.stall_seconds = env_number("EIGHT_STALL_TIMEOUT", o.stall_seconds);
  o.max_retries = static_cast<int>(env_number("EIGHT_PULL_RETRIES", o.max_retries));
  o.retry_base_ms = static_cast<int>(env_number("EIGHT_RETRY_BASE_MS", o.retry_base_ms));
  o.progress_tty = ::isatty(STDERR_FILENO) != 0;
  return o;
}

namespace {

// One attempt: follows redirects by hand, appends to the partial file. Returns Done or Retry
// (with `why` set); throws for failures that another attempt would not fix.
Outcome attempt(const DownloadOptions& o, Transfer* t, std::string* final_url, std::string* why) {
  static CurlGlobal global;
  const std::string first_host = url_host(o.url);
  std::string url = o.url;
  for (int hop = 0; hop <= 10; ++hop) {
    check_download_url(url);
    CurlHandle c;
    check(c.h != nullptr, "[pull] curl_easy_init failed");
    HeaderList headers;
    if (*t->have > 0) headers.add(cat("Range: bytes=", *t->have, "-"));
    if (!o.bearer_token.empty() && url_host(url) == first_host)
      headers.add("Authorization: Bearer " + o.bearer_token);
    char curl_error[CURL_ERROR_SIZE] = {};
    t->resp = Response{};
    t->body_started = false;
    t->error_body.clear();
    curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c.h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(c.h, CURLOPT_USERAGENT, ("eight/" + eight_version()).c_str());
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.h, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT_MS, long(std::max(1.0, o.stall_seconds) * 1000));
    // A stall: under 1 byte/s for stall_seconds. Integer seconds are what libcurl takes.
    curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_TIME, std::max(1L, long(o.stall_seconds + 0.5)));
    const CURLcode rc = curl_easy_perform(c.h);
    std::fflush(t->file);
    if (!t->fatal.empty()) fail(t->fatal);
    long status = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    const std::string where =
        cat(" at byte ", *t->have, *t->expected ? cat(" of ", *t->expected) : std::string(),
            " from ", url);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      *why = cat("download stalled: no data for ", long(o.stall_seconds + 0.5),
                 " s (EIGHT_STALL_TIMEOUT)", where);
      return Outcome::Retry;
    }
    if (rc != CURLE_OK) {
      *why = cat(curl_error[0] ? curl_error : curl_easy_strerror(rc), where);
      return Outcome::Retry;
    }
    if (status >= 300 && status < 400) {
      char* next = nullptr;
      curl_easy_getinfo(c.h, CURLINFO_REDIRECT_URL, &next);
      check(next != nullptr, "[pull] HTTP ", status, " without a Location from ", url);
      url = next;
      log_debug("[pull] redirected to ", url);
      continue;
    }
    if (status == 416 && *t->have > 0) {
      // Nothing left to send from our offset: the partial file is complete if the server says
      // the resource has exactly that many bytes; otherwise it is stale and starts over.
      if (t->resp.has_total && t->resp.range_total == *t->have) {
        *t->expected = *t->have;
        *final_url = url;
        return Outcome::Done;
      }
      log_info("[pull] the partial download does not fit the file on the server; starting over");
      check(::truncate(o.partial_path.c_str(), 0) == 0, "[pull] cannot truncate '", o.partial_path,
            "'");
      std::fseek(t->file, 0, SEEK_SET);
      *t->have = 0;
      t->hasher->reset();
      *why = "stale partial download";
      return Outcome::Retry;
    }
    if (status == 408 || status == 429 || status >= 500) {
      *why = cat("HTTP ", status, where);
      return Outcome::Retry;
    }
    if (status != 200 && status != 206) {
      std::string hint;
      if (status == 401 || status == 403)
        hint = o.bearer_token.empty() ? "; a gated repository needs HF_TOKEN set"
                                      : "; check that HF_TOKEN grants access";
      fail("[pull] HTTP ", status, " from ", url, hint,
           t->error_body.empty() ? std::string() : ": " + trim(t->error_body.substr(0, 200)));
    }
    if (!t->body_started && !begin_body(t)) fail(t->fatal);  // an empty 200 body
    if (*t->expected && *t->have < *t->expected) {
      *why = cat("connection closed early", where);
      return Outcome::Retry;
    }
    *final_url = url;
    return Outcome::Done;
  }
  fail("[pull] more than 10 redirects starting at ", o.url);
}

}  // namespace

DownloadResult download_file(const DownloadOptions& o) {
  check_download_url(o.url);
  DownloadResult res;
  std::error_code ec;
  res.resumed_from = std::filesystem::exists(o.partial_path, ec)
                         ? std::filesystem::file_size(o.partial_path, ec)
                         : 0;
  // O_NOFOLLOW: a link planted at the partial file's name must not redirect the write.
  const int fd =
      ::open(o.partial_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  check(fd >= 0, "[pull] cannot open '", o.partial_path, "': ", std::strerror(errno));
  FileCloser file{::fdopen(fd, "ab+")};
  if (!file.f) ::close(fd);
  check(file.f != nullptr, "[pull] cannot open '", o.partial_path, "': ", std::strerror(errno));
  // Hash what an earlier, interrupted pull left, so the final hash covers the whole file.
  Sha256 hasher;
  uint64_t have = 0;
  if (res.resumed_from > 0) {
    constexpr size_t kChunk = size_t{1} << 20;
    HostBuffer buf(kChunk);
    std::fseek(file.f, 0, SEEK_SET);
    size_t n;
    while ((n = std::fread(buf.data(), 1, kChunk, file.f)) > 0) {
      hasher.update(buf.data(), n);
      have += n;
    }
    std::fseek(file.f, 0, SEEK_END);
    log_info("[pull] resuming ", o.label, " at ", format_bytes(int64_t(have)));
  }
  uint64_t expected = 0;
  std::string linked_sha;
  int failures = 0;
  for (;;) {
    Transfer t;
    t.opts = &o;
    t.file = file.f;
    t.hasher = &hasher;
    t.have = &have;
    t.expected = &expected;
    t.linked_sha = &linked_sha;
    t.start_bytes = have;
    // Quiet lines start after one interval; a bar as soon as bytes arrive.
    if (!o.progress_tty) t.last_print = t.start;
    const uint64_t before = have;
    std::string why;
    Outcome out;
    try {
      out = attempt(o, &t, &res.final_url, &why);
    } catch (const Error&) {
      if (have == 0) std::remove(o.partial_path.c_str());  // nothing worth resuming
      throw;
    }
    print_progress(&t, true);
    if (out == Outcome::Done) break;
    // Retries are bounded by failures in a row that brought no new bytes.
    failures = have > before ? 1 : failures + 1;
    if (failures > o.max_retries) {
      if (have == 0) std::remove(o.partial_path.c_str());
      fail("[pull] ", why, "; gave up after ", failures, " attempt", failures == 1 ? "" : "s",
           have ? ". The partial download is kept; run the pull again to resume" : "");
    }
    const int delay = std::min(30000, o.retry_base_ms << std::min(failures - 1, 15));
    log_warn("[pull] ", why, "; retrying in ", delay, " ms (", failures, "/", o.max_retries, ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
  res.size = have;
  res.sha256 = hasher.hex_digest();
  if (!o.expected_sha256.empty()) {
    res.stated_sha256 = lower(o.expected_sha256);
    res.stated_from = "--sha256";
  } else if (!linked_sha.empty()) {
    res.stated_sha256 = linked_sha;
    res.stated_from = "X-Linked-Etag";
  }
  const bool both_disagree =
      !o.expected_sha256.empty() && !linked_sha.empty() && lower(o.expected_sha256) != linked_sha;
  if ((!res.stated_sha256.empty() && res.stated_sha256 != res.sha256) || both_disagree) {
    std::remove(o.partial_path.c_str());
    fail("[pull] SHA-256 mismatch for ", o.url, ": expected ",
         both_disagree && res.stated_sha256 == res.sha256 ? linked_sha : res.stated_sha256, " (",
         both_disagree && res.stated_sha256 == res.sha256 ? "X-Linked-Etag" : res.stated_from,
         ") but the ", res.size, " bytes received hash to ", res.sha256,
         "; the download was discarded");
  }
  return res;
}

}  // namespace eight
