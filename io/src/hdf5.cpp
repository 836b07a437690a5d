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

std::string hdf5_error_detail() {
  std::string detail;
  // Walking upward starts at the innermost frame, where the problem was found.
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
        if (n == 0 && e && e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &detail);
  H5Eclear2(H5E_DEFAULT);
  for (char& c : detail)
    if (c == '\n' || c == '\r') c = ' ';
  return detail.empty() ? detail : ": " + detail;
}

Hdf5Lock::Hdf5Lock() : guard_(hdf5_mutex()) { silence_hdf5_errors(); }

}  // namespace hpcml::io
