// download_file against cpp-httplib servers on loopback: URL policy, resume from a partial file,
// bearer token scoping across redirects, retries on 5xx, and the error messages.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "runtime/store/download.h"
#include "runtime/store/sha256.h"
#include "test_util.h"

using namespace eight;
namespace fs = std::filesystem;

namespace {

// One httplib server on `host` with an ephemeral port, run on its own thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(const std::string& host = "127.0.0.1") : host_(host) {
    port_ = server_.bind_to_any_port(host);
  }
  ~LoopbackServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Server& http() { return server_; }
  void start() {
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bool ok() const { return port_ > 0; }
  std::string url(const std::string& path) const {
    return "http://" + host_ + ":" + std::to_string(port_) + path;
  }

 private:
  std::string host_;
  int port_ = -1;
  httplib::Server server_;
  std::thread thread_;
};

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xFF);
  return s;
}

DownloadOptions options(const std::string& url, const std::string& partial) {
  DownloadOptions o;
  o.url = url;
  o.partial_path = partial;
  o.quiet = true;
  o.max_retries = 2;
  o.retry_base_ms = 10;
  o.stall_seconds = 5;
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DownloadUrl, OnlyHttpsOrLoopbackHttp) {
  for (const char* ok : {"https://huggingface.co/a/b/resolve/main/x.gguf",
                         "http://127.0.0.1:8080/x", "http://127.9.8.7/x", "http://[::1]:99/x"})
    EXPECT_NO_THROW(check_download_url(ok)) << ok;
  for (const char* bad : {"http://example.com/x", "http://localhost/x", "http://128.0.0.1/x",
                          "http://127.0.0.1.nip.io/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x",
                          "file:///etc/passwd", "not a url"})
    EXPECT_THROW(check_download_url(bad), Error) << bad;
  EXPECT_EQ(url_host("https://HuggingFace.co/x"), "huggingface.co");
}

TEST(Download, ResumesFromPartialFileWithRange) {
  LoopbackServer srv;
  ASSERT_TRUE(srv.ok());
  const std::string body = payload(300000);
  std::mutex mu;
  std::vector<std::string> ranges;
  srv.http().Get("/m.gguf", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    ranges.push_back(req.get_header_value("Range"));
    res.set_content(body, "application/octet-stream");  // httplib answers Range with 206
  });
  srv.start();
  eight::testing::TempDir dir;
  const std::string partial = dir.file("m.partial");
  std::ofstream(partial, std::ios::binary) << body.substr(0, 12345);
  DownloadOptions o = options(srv.url("/m.gguf"), partial);
  o.expected_sha256 = sha256_hex(body);
  const DownloadResult r = download_file(o);
  EXPECT_EQ(r.resumed_from, 12345u);
  EXPECT_EQ(r.size, body.size());
  EXPECT_EQ(r.sha256, sha256_hex(body));
  EXPECT_EQ(r.stated_from, "--sha256");
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0], "bytes=12345-");
  EXPECT_EQ(fs::file_size(partial), body.size());

  // A partial file with wrong bytes: the final hash disagrees, both hashes are named and the
  // partial file is dropped so the next pull starts clean.
  std::ofstream(partial, std::ios::binary | std::ios::trunc) << std::string(5000, 'x');
  const std::string err = error_of([&] { download_file(o); });
  EXPECT_NE(err.find(sha256_hex(body)), std::string::npos) << err;
  EXPECT_NE(err.find(sha256_hex(std::string(5000, 'x') + body.substr(5000))), std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(partial));
}

TEST(Download, TokenGoesOnlyToTheOriginalHost) {
  LoopbackServer a("127.0.0.1"), b("127.0.0.2");
  if (!b.ok()) GTEST_SKIP() << "SKIPPED: cannot bind 127.0.0.2 here";
  const std::string body = payload(5000);
  std::string auth_a = "(none)", auth_b = "(none)";
  a.http().Get("/owner/repo/resolve/main/x.gguf",
               [&](const httplib::Request& req, httplib::Response& res) {
                 auth_a = req.get_header_value("Authorization");
                 res.status = 302;
                 res.set_header("Location", b.url("/cdn/x"));
                 res.set_header("X-Linked-Etag", "\"" + sha256_hex(body) + "\"");
               });
  b.http().Get("/cdn/x", [&](const httplib::Request& req, httplib::Response& res) {
    auth_b = req.get_header_value("Authorization");
    res.set_content(body, "application/octet-stream");
  });
  a.start();
  b.start();
  eight::testing::TempDir dir;
  DownloadOptions o = options(a.url("/owner/repo/resolve/main/x.gguf"), dir.file("x.partial"));
  o.bearer_token = "hf_secret";
  const DownloadResult r = download_file(o);
  EXPECT_EQ(auth_a, "Bearer hf_secret");
  EXPECT_EQ(auth_b, "");
  EXPECT_EQ(r.stated_from, "X-Linked-Etag");
  EXPECT_EQ(r.stated_sha256, sha256_hex(body));
  EXPECT_EQ(r.final_url, b.url("/cdn/x"));
}

TEST(Download, RetriesServerErrorsThenSucceeds) {
  LoopbackServer srv;
  const std::string body = payload(10000);
  std::atomic<int> calls{0};
  srv.http().Get("/flaky", [&](const httplib::Request&, httplib::Response& res) {
    if (calls++ < 2) {
      res.status = 503;
      res.set_content("busy", "text/plain");
      return;
    }
    res.set_content(body, "application/octet-stream");
  });
  srv.start();
  eight::testing::TempDir dir;
  const DownloadResult r = download_file(options(srv.url("/flaky"), dir.file("f.partial")));
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(r.sha256, sha256_hex(body));
  // With no retries left the 503 is reported, and an empty partial file is not kept.
  calls = 0;
  DownloadOptions o = options(srv.url("/flaky"), dir.file("g.partial"));
  o.max_retries = 0;
  const std::string err = error_of([&] { download_file(o); });
  EXPECT_NE(err.find("HTTP 503"), std::string::npos) << err;
  EXPECT_NE(err.find("gave up after 1 attempt"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir.file("g.partial")));
}

TEST(Download, ClientErrorsAreFinalAndExplained) {
  LoopbackServer srv;
  std::atomic<int> calls{0};
  srv.http().Get("/gated", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 401;
    res.set_content("Access to model is restricted", "text/plain");
  });
  srv.start();
  eight::testing::TempDir dir;
  const std::string err =
      error_of([&] { download_file(options(srv.url("/gated"), dir.file("g.partial"))); });
  EXPECT_NE(err.find("HTTP 401"), std::string::npos) << err;
  EXPECT_NE(err.find("HF_TOKEN"), std::string::npos) << err;
  EXPECT_NE(err.find("restricted"), std::string::npos) << err;
  EXPECT_EQ(calls.load(), 1);  // not retried
  const std::string missing =
      error_of([&] { download_file(options(srv.url("/nope"), dir.file("n.partial"))); });
  EXPECT_NE(missing.find("HTTP 404"), std::string::npos) << missing;
}

TEST(Download, CompletePartialFileAnswered416IsDone) {
  LoopbackServer srv;
  const std::string body = payload(4096);
  srv.http().Get("/done", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.has_header("Range")) {
      res.status = 416;
      res.set_header("Content-Range", "bytes */" + std::to_string(body.size()));
      return;
    }
    res.set_content(body, "application/octet-stream");
  });
  srv.start();
  eight::testing::TempDir dir;
  std::ofstream(dir.file("d.partial"), std::ios::binary) << body;
  const DownloadResult r = download_file(options(srv.url("/done"), dir.file("d.partial")));
  EXPECT_EQ(r.size, body.size());
  EXPECT_EQ(r.sha256, sha256_hex(body));
}
