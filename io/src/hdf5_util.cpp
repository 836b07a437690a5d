#include "hdf5_util.hpp"

namespace hpcml::io {

namespace {
void write_attribute(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, hid_t space,
                     const void* data, const std::string& ctx) {
  const std::string what = ctx + ": cannot write attribute '" + name + "'";
  Attribute attr(
      HPCML_CHECK_HDF5(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), what));
  HPCML_CHECK_HDF5(H5Awrite(attr.get(), mem_type, data), what);
}
}  // namespace

void write_int_attribute(hid_t obj, const char* name, std::int64_t value, const std::string& ctx) {
  DataSpace space(HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), ctx));
  write_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value, ctx);
}

void write_int_array_attribute(hid_t obj, const char* name, const std::vector<std::int64_t>& values,
                               const std::string& ctx) {
  const hsize_t dims[1] = {values.size()};
  DataSpace space(HPCML_CHECK_HDF5(H5Screate_simple(1, dims, nullptr), ctx));
  write_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data(), ctx);
}

void write_string_attribute(hid_t obj, const char* name, const std::string& value,
                            const std::string& ctx) {
  // Variable-length UTF-8 so h5py returns a str rather than bytes.
  DataType type(HPCML_CHECK_HDF5(H5Tcopy(H5T_C_S1), ctx));
  HPCML_CHECK_HDF5(H5Tset_size(type.get(), H5T_VARIABLE), ctx);
  HPCML_CHECK_HDF5(H5Tset_cset(type.get(), H5T_CSET_UTF8), ctx);
  DataSpace space(HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), ctx));
  const char* p = value.c_str();
  write_attribute(obj, name, type.get(), type.get(), space.get(), &p, ctx);
}

std::vector<std::int64_t> read_int_attribute(hid_t obj, const char* name, const std::string& ctx) {
  const std::string what = ctx + ": attribute '" + std::string(name) + "'";
  if (HPCML_CHECK_HDF5(H5Aexists(obj, name), what) == 0)
    HPCML_THROW(DataError, what + " is missing");
  Attribute attr(HPCML_CHECK_HDF5(H5Aopen(obj, name, H5P_DEFAULT), what));
  DataType type(HPCML_CHECK_HDF5(H5Aget_type(attr.get()), what));
  if (H5Tget_class(type.get()) != H5T_INTEGER) HPCML_THROW(DataError, what + " is not an integer");
  DataSpace space(HPCML_CHECK_HDF5(H5Aget_space(attr.get()), what));
  const hssize_t n = HPCML_CHECK_HDF5(H5Sget_simple_extent_npoints(space.get()), what);
  if (n < 1 || n > 64) HPCML_THROW(DataError, what + " has " + std::to_string(n) + " elements");
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  HPCML_CHECK_HDF5(H5Aread(attr.get(), H5T_NATIVE_INT64, out.data()), what);
  return out;
}

}  // namespace hpcml::io
