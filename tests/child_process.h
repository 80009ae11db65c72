#pragma once
// Runs a measurement in a forked child, so that it starts like a fresh process: no worker thread
// holds kernel scratch from an earlier run (thread_scratch keeps its buffers for the thread's
// life) and the memory tracker's peak is the child's own. The parent must not have started the
// thread pool, since threads do not survive fork.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <utility>

namespace eight::testing {

// fn() returns {planned, measured}; in_child returns the child's pair, or {0, -1} when the child
// failed (its exception message is on stderr).
template <class F>
std::pair<int64_t, int64_t> in_child(F&& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return {0, -1};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    int64_t out[2] = {0, -1};
    try {
      const std::pair<int64_t, int64_t> r = fn();
      out[0] = r.first;
      out[1] = r.second;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    const ssize_t n = ::write(fds[1], out, sizeof out);
    ::_exit(n == static_cast<ssize_t>(sizeof out) ? 0 : 1);
  }
  ::close(fds[1]);
  int64_t in[2] = {0, -1};
  if (pid < 0 || ::read(fds[0], in, sizeof in) != static_cast<ssize_t>(sizeof in)) in[1] = -1;
  ::close(fds[0]);
  int status = 0;
  if (pid > 0) ::waitpid(pid, &status, 0);
  return {in[0], in[1]};
}

}  // namespace eight::testing
