// Read-only file mappings for the shard reader, and a guard that turns a
// SIGBUS while copying from a mapping into a return value instead of a crash.
//
// Why the guard: a page of a mapping whose file was truncated after the
// mapping was made has no file behind it; touching it raises SIGBUS (a page
// only partly past the new end reads as zeros instead, which the reader's
// size check catches). The reader checks the file size before each copy, but
// the file can still shrink between that check and the copy; inside
// run_guarded() that race ends in a DataError naming the file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hpcml::io::detail {

/// A read-only private mapping of a byte range of a file (munmap on destruction).
class FileMap {
 public:
  FileMap() = default;
  /// Maps bytes [offset, offset + length) of `fd` (page-aligned internally).
  /// Returns an empty map (operator bool false) when mmap fails or length is 0.
  static FileMap map(int fd, std::uint64_t offset, std::size_t length);

  FileMap(const FileMap&) = delete;
  FileMap& operator=(const FileMap&) = delete;
  FileMap(FileMap&& other) noexcept;
  FileMap& operator=(FileMap&& other) noexcept;
  ~FileMap();

  explicit operator bool() const { return addr_ != nullptr; }
  /// The byte at file offset `file_offset` (must lie in the mapped range).
  const char* at(std::uint64_t file_offset) const {
    return static_cast<const char*>(addr_) + (file_offset - file_begin_);
  }
  void reset();

 private:
  void* addr_ = nullptr;
  std::size_t length_ = 0;        // of the mapping (from the page boundary)
  std::uint64_t file_begin_ = 0;  // file offset of addr_ (page-aligned)
};

/// Calls fn(arg) with a SIGBUS on this thread turned into `false` (the call is
/// abandoned at the faulting instruction). fn must only copy memory: no
/// allocation, no locks, no exceptions and no objects with destructors, since
/// a SIGBUS leaves its frames with siglongjmp. Returns true when fn completed.
/// The first call installs a process-wide SIGBUS handler that passes every
/// other SIGBUS on to the handler it replaced (or to the default action).
bool run_guarded(void (*fn)(void*), void* arg);

}  // namespace hpcml::io::detail
