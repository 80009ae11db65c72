#pragma once
// Resumable HTTP(S) downloads with libcurl, for `eight pull`.
//
// A download appends to a partial file and resumes it with an HTTP Range request, retries
// transient failures a bounded number of times with exponential backoff, gives up on a stalled
// connection after a timeout, refuses to grow past the size the server stated, and hashes the
// bytes as they arrive so the SHA-256 the source states can be checked without a second read.
// Redirects are followed by hand so each hop can be checked: https only, plain http only to a
// loopback address (tests), and the bearer token only to the host it was meant for.
#include <cstdint>
#include <string>

namespace eight {

struct DownloadOptions {
  std::string url;
  std::string partial_path;     // appended to and resumed; left in place on failure
  std::string expected_sha256;  // optional (--sha256); checked with any hash the server states
  std::string bearer_token;     // optional (HF_TOKEN); sent to the original host only
  std::string label;            // shown in progress lines
  int max_retries = 5;          // further attempts after a failure without progress
  double stall_seconds = 30;    // no byte for this long -> the attempt fails
  int retry_base_ms = 1000;     // first backoff; doubles per retry, at most 30 s
  bool progress_tty = false;    // a redrawn bar (true) or a line every few seconds (false)
  bool quiet = false;           // no progress output at all
};

// Options with the environment applied: EIGHT_STALL_TIMEOUT (seconds), EIGHT_PULL_RETRIES,
// EIGHT_RETRY_BASE_MS; progress_tty from isatty(stderr).
DownloadOptions download_options_from_env(std::string url, std::string partial_path);

struct DownloadResult {
  std::string sha256;         // of the whole file (hex)
  std::string stated_sha256;  // what the source said (X-Linked-Etag or --sha256), "" when silent
  std::string stated_from;    // "X-Linked-Etag", "--sha256"
  uint64_t size = 0;
  uint64_t resumed_from = 0;  // bytes already present when the download started
  std::string final_url;      // after redirects
};

// Downloads opts.url into opts.partial_path (resuming what is there). Throws Error when the
// download fails for good; on a hash mismatch the partial file is deleted (its bytes are wrong)
// and the message names both hashes.
DownloadResult download_file(const DownloadOptions& opts);

// Throws Error unless `url` may be fetched: https://, or http:// to 127.0.0.0/8 or [::1].
void check_download_url(const std::string& url);
// The host part of a URL ("huggingface.co", "[::1]"); throws Error when it does not parse.
std::string url_host(const std::string& url);

}  // namespace eight
