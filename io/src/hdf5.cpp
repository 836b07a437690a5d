#include "hpcml/io/hdf5.hpp"

namespace hpcml::io {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

namespace {
// HDF5 prints its whole error stack to stderr by default; our messages are one
// line naming the file, so silence it once per process (under the lock).
void silence_hdf5_errors() {
  static const bool done = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}
}  // namespace

Hdf5Lock::Hdf5Lock() : guard_(hdf5_mutex()) { silence_hdf5_errors(); }

}  // namespace hpcml::io
