#include "core/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace eight {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "[file] cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("[file] cannot stat '", path, "': ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("[file] '", path, "' is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    check(p != MAP_FAILED, "[file] cannot map '", path, "' (", size_,
          " bytes): ", std::strerror(err));
    data_ = p;
    memory_tracker().add(MemoryKind::Mapped, static_cast<int64_t>(size_));
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (data_) {
    ::munmap(data_, size_);
    memory_tracker().sub(MemoryKind::Mapped, static_cast<int64_t>(size_));
  }
}

void MappedFile::advise_willneed(size_t offset, size_t len) const {
  if (!data_ || offset >= size_) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  const size_t end = std::min(size_, offset + len);
  ::madvise(static_cast<char*>(data_) + start, end - start, MADV_WILLNEED);
}

std::string read_small_file(const std::string& path, const char* who, int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  check(in.good(), who, " cannot open '", path, "'");
  const std::streamoff size = in.tellg();
  check(size >= 0 && size <= max_bytes, who, " '", path, "' has ", static_cast<int64_t>(size),
        " bytes, more than the ", max_bytes, " such a file may have");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  check(in.gcount() == size, who, " cannot read '", path, "'");
  return bytes;
}

}  // namespace eight
