// RAII handles and the HDF5 check macro.
#include <gtest/gtest.h>

#include "hpcml/io/hdf5.hpp"
#include "io_test_util.hpp"

namespace hpcml::io {
namespace {

TEST(IoHdf5, HandlesCloseOnceAndMovesEmptyTheSource) {
  test::TempDir dir;
  const std::string path = dir / "f.h5";
  Hdf5Lock lock;
  File a(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(a);
  const hid_t id = a.get();
  File b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_EQ(a.get(), H5I_INVALID_HID);
  EXPECT_EQ(b.get(), id);
  EXPECT_GT(H5Iis_valid(id), 0);

  DataSpace s1(H5Screate(H5S_SCALAR)), s2(H5Screate(H5S_SCALAR));
  const hid_t old = s2.get();
  s2 = std::move(s1);  // closes what s2 held
  EXPECT_LE(H5Iis_valid(old), 0);
  EXPECT_FALSE(s1);
  s2 = std::move(s2);  // self-move keeps the handle
  EXPECT_TRUE(s2);

  b.reset();
  EXPECT_LE(H5Iis_valid(id), 0);
  b.reset();  // closing an empty handle is a no-op
  const hid_t released = File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)).release();
  EXPECT_GT(H5Iis_valid(released), 0);
  H5Fclose(released);
}

TEST(IoHdf5, CheckMacroThrowsOneLineDataErrorWithContext) {
  Hdf5Lock lock;
  EXPECT_DATA_ERROR(HPCML_CHECK_HDF5(H5Fopen("/nonexistent/x.h5", H5F_ACC_RDONLY, H5P_DEFAULT),
                                     std::string("/nonexistent/x.h5: cannot open")),
                    "/nonexistent/x.h5: cannot open", "H5Fopen", "failed: ");
  // Success returns the value unchanged.
  const hid_t space = HPCML_CHECK_HDF5(H5Screate(H5S_SCALAR), "ctx");
  EXPECT_GE(space, 0);
  EXPECT_GE(HPCML_CHECK_HDF5(H5Sclose(space), "ctx"), 0);
}

}  // namespace
}  // namespace hpcml::io
