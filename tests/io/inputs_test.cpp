// Input readers: IDX (gzip and plain), npy, CSV, raw, and validate().
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <limits>

#include "hpcml/io/inputs.hpp"
#include "io_test_util.hpp"

namespace hpcml::io {
namespace {

using test::TempDir;
using test::write_bytes;
using test::write_text;

std::vector<unsigned char> idx_bytes(const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& data,
                                     unsigned char type = 0x08) {
  std::vector<unsigned char> b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(IoIdx, ReadsGzipAndPlainAndScalesPixels) {
  TempDir dir;
  // 3 images of 2x2, pixel values chosen so x/255 is checked exactly.
  const std::vector<unsigned char> pixels = {0, 255, 51, 102, 1, 2, 3, 4, 250, 251, 252, 253};
  write_gz(dir / "img.gz", idx_bytes({3, 2, 2}, pixels));
  write_gz(dir / "lab.gz", idx_bytes({3}, {7, 0, 9}));
  const auto plain = idx_bytes({3, 2, 2}, pixels);
  write_bytes(dir / "img.raw", plain.data(), plain.size());
  for (const std::string& img : {dir / "img.gz", dir / "img.raw"}) {
    LabeledData d = read_idx(img, dir / "lab.gz");
    EXPECT_EQ(d.samples, 3u);
    EXPECT_EQ(d.features, 4u);
    EXPECT_EQ(d.feature_shape, (std::vector<std::size_t>{2, 2}));
    ASSERT_EQ(d.x.size(), 12u);
    for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(d.x[i], static_cast<float>(pixels[i]) / 255.0f);
    EXPECT_EQ(d.x[1], 1.0f);
    EXPECT_EQ(d.y, (std::vector<std::int32_t>{7, 0, 9}));
    EXPECT_NO_THROW(validate(d, 10));
    EXPECT_DATA_ERROR(validate(d, 9), "lab.gz", "label 9 of sample 2", "[0, 9)");
  }
}

TEST(IoIdx, RejectsBadFiles) {
  TempDir dir;
  write_gz(dir / "lab.gz", idx_bytes({3}, {1, 2, 3}));
  EXPECT_DATA_ERROR(read_idx(dir / "missing.gz", dir / "lab.gz"), "missing.gz", "no such file");
  // Truncated data: header says 3x2x2 but only 5 bytes follow.
  write_gz(dir / "short.gz", idx_bytes({3, 2, 2}, {1, 2, 3, 4, 5}));
  EXPECT_DATA_ERROR(read_idx(dir / "short.gz", dir / "lab.gz"), "short.gz", "truncated");
  write_gz(dir / "float.gz", idx_bytes({1, 1}, {0, 0, 0, 0}, 0x0D));
  EXPECT_DATA_ERROR(read_idx(dir / "float.gz", dir / "lab.gz"), "float.gz", "0x0D");
  write_text(dir / "text.gz", "hello world");
  EXPECT_DATA_ERROR(read_idx(dir / "text.gz", dir / "lab.gz"), "text.gz", "not an IDX file");
  write_gz(dir / "img.gz", idx_bytes({2, 1, 1}, {1, 2}));
  EXPECT_DATA_ERROR(read_idx(dir / "img.gz", dir / "lab.gz"), "lab.gz", "3 labels", "2 images");
}

// Zero-width samples and declared sizes that the file cannot hold are refused
// from the header alone, before anything of that size is allocated.
TEST(IoIdx, RejectsZeroWidthAndAbsurdDeclaredSizes) {
  TempDir dir;
  write_gz(dir / "lab.gz", idx_bytes({4}, {1, 2, 3, 0}));
  write_gz(dir / "zero.gz", idx_bytes({4, 28, 0}, {}));
  EXPECT_DATA_ERROR(read_idx(dir / "zero.gz", dir / "lab.gz"), "zero.gz",
                    "dimension 2 of shape (4, 28, 0) is 0");
  write_gz(dir / "zero_n.gz", idx_bytes({0, 2}, {}));
  EXPECT_DATA_ERROR(read_idx(dir / "zero_n.gz", dir / "lab.gz"), "zero_n.gz", "is 0");
  // 3 x 0xFFFFFFFF overflows 64 bits; 4 x 65536 wraps to exactly 0.
  write_bytes(dir / "huge", idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}).data(), 16);
  EXPECT_DATA_ERROR(read_idx(dir / "huge", dir / "lab.gz"), "huge", "more than 2^64");
  write_bytes(dir / "wrap", idx_bytes({65536, 65536, 65536, 65536}, {}).data(), 20);
  EXPECT_DATA_ERROR(read_idx(dir / "wrap", dir / "lab.gz"), "wrap", "more than 2^64");
  // Fits in 64 bits but not in the file: plain, then gzip (deflate's best is 1032:1).
  const auto plain = idx_bytes({0xFFFFFFFFu, 0xFFFFu}, std::vector<unsigned char>(16));
  write_bytes(dir / "plain", plain.data(), plain.size());
  EXPECT_DATA_ERROR(read_idx(dir / "plain", dir / "lab.gz"), "plain", "declares shape",
                    "holds only 28 bytes");
  write_gz(dir / "big.gz", idx_bytes({60000, 28, 28}, std::vector<unsigned char>(100)));
  EXPECT_DATA_ERROR(read_idx(dir / "big.gz", dir / "lab.gz"), "big.gz", "47040000 bytes",
                    "compressed file holds only");
  std::filesystem::create_directory(dir / "dir.gz");
  EXPECT_DATA_ERROR(read_idx(dir / "dir.gz", dir / "lab.gz"), "dir.gz", "is a directory");
}

// ---- npy -------------------------------------------------------------------

std::string npy(const std::string& descr, const std::string& shape, const void* data,
                std::size_t bytes, bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

TEST(IoNpy, ReadsSupportedDtypes) {
  TempDir dir;
  const float f4[6] = {0.5f, -1.0f, 2.25f, 3.0f, 4.0f, 1e-3f};
  const double f8[6] = {0.5, -1.0, 2.25, 3.0, 4.0, 1e-3};
  const unsigned char u1[6] = {0, 1, 2, 253, 254, 255};
  const std::int32_t i4[6] = {-3, 0, 7, 1 << 20, 5, 6};
  const std::int64_t labels8[2] = {1, 0};
  const std::int32_t labels4[2] = {2, 1};
  const unsigned char labels1[2] = {0, 3};
  write_text(dir / "f4.npy", npy("<f4", "(2, 3)", f4, sizeof f4));
  write_text(dir / "f8.npy", npy("<f8", "(2, 1, 3)", f8, sizeof f8));
  write_text(dir / "u1.npy", npy("|u1", "(2, 3)", u1, sizeof u1));
  write_text(dir / "i4.npy", npy("<i4", "(2, 3)", i4, sizeof i4));
  write_text(dir / "y8.npy", npy("<i8", "(2,)", labels8, sizeof labels8));
  write_text(dir / "y4.npy", npy("<i4", "(2, 1)", labels4, sizeof labels4));
  write_text(dir / "y1.npy", npy("|u1", "(2,)", labels1, sizeof labels1));

  LabeledData a = read_npy(dir / "f4.npy", dir / "y8.npy");
  EXPECT_EQ(a.samples, 2u);
  EXPECT_EQ(a.feature_shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(a.x, std::vector<float>(f4, f4 + 6));
  EXPECT_EQ(a.y, (std::vector<std::int32_t>{1, 0}));

  LabeledData b = read_npy(dir / "f8.npy", dir / "y4.npy");
  EXPECT_EQ(b.feature_shape, (std::vector<std::size_t>{1, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b.x[i], static_cast<float>(f8[i]));
  EXPECT_EQ(b.y, (std::vector<std::int32_t>{2, 1}));

  LabeledData c = read_npy(dir / "u1.npy", dir / "y1.npy", 1.0f / 255.0f);
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(c.x[i], static_cast<float>(u1[i]) * (1.0f / 255.0f));
  EXPECT_EQ(c.y, (std::vector<std::int32_t>{0, 3}));

  LabeledData d = read_npy(dir / "i4.npy", dir / "y1.npy");
  for (int i = 0; i < 6; ++i) EXPECT_EQ(d.x[i], static_cast<float>(i4[i]));
}

TEST(IoNpy, RejectsUnsupportedLayouts) {
  TempDir dir;
  const float f4[4] = {1, 2, 3, 4};
  const std::int64_t y[2] = {0, 1};
  const std::int64_t big[2] = {0, std::int64_t{1} << 40};
  write_text(dir / "y.npy", npy("<i8", "(2,)", y, sizeof y));
  write_text(dir / "fortran.npy", npy("<f4", "(2, 2)", f4, sizeof f4, true));
  EXPECT_DATA_ERROR(read_npy(dir / "fortran.npy", dir / "y.npy"), "fortran.npy", "Fortran");
  write_text(dir / "be.npy", npy(">f4", "(2, 2)", f4, sizeof f4));
  EXPECT_DATA_ERROR(read_npy(dir / "be.npy", dir / "y.npy"), "be.npy", "'>f4'", "not supported");
  write_text(dir / "c8.npy", npy("<c8", "(2, 1)", f4, sizeof f4));
  EXPECT_DATA_ERROR(read_npy(dir / "c8.npy", dir / "y.npy"), "c8.npy", "'<c8'");
  write_text(dir / "short.npy", npy("<f4", "(2, 3)", f4, sizeof f4));
  EXPECT_DATA_ERROR(read_npy(dir / "short.npy", dir / "y.npy"), "short.npy", "truncated");
  write_text(dir / "x.npy", npy("<f4", "(2, 2)", f4, sizeof f4));
  write_text(dir / "yf.npy", npy("<f4", "(2,)", f4, 8));
  EXPECT_DATA_ERROR(read_npy(dir / "x.npy", dir / "yf.npy"), "yf.npy", "integer dtype");
  write_text(dir / "y3.npy", npy("<i8", "(1,)", y, 8));
  EXPECT_DATA_ERROR(read_npy(dir / "x.npy", dir / "y3.npy"), "y3.npy", "1 labels", "2 samples");
  write_text(dir / "ybig.npy", npy("<i8", "(2,)", big, sizeof big));
  EXPECT_DATA_ERROR(read_npy(dir / "x.npy", dir / "ybig.npy"), "ybig.npy", "sample 1",
                    "does not fit in int32");
  write_text(dir / "garbage.npy", "not numpy at all");
  EXPECT_DATA_ERROR(read_npy(dir / "garbage.npy", dir / "y.npy"), "garbage.npy", "bad magic");
  EXPECT_DATA_ERROR(read_npy(dir / "nope.npy", dir / "y.npy"), "nope.npy", "no such file");
}

TEST(IoNpy, RejectsZeroWidthAndAbsurdDeclaredSizes) {
  TempDir dir;
  const std::int64_t y[4] = {0, 1, 0, 1};
  const float f4[8] = {};
  write_text(dir / "y.npy", npy("<i8", "(4,)", y, sizeof y));
  // (4, 0): zero-width samples (was a memcpy from a null pointer).
  write_text(dir / "w0.npy", npy("<f4", "(4, 0)", f4, 0));
  EXPECT_DATA_ERROR(read_npy(dir / "w0.npy", dir / "y.npy"), "w0.npy", "shape (4, 0)",
                    "zero-width");
  write_text(dir / "w1.npy", npy("<f4", "(4, 2, 0)", f4, 0));
  EXPECT_DATA_ERROR(read_npy(dir / "w1.npy", dir / "y.npy"), "w1.npy", "dimension 2 is 0");
  write_text(dir / "n0.npy", npy("<f4", "(0, 2)", f4, 0));
  EXPECT_DATA_ERROR(read_npy(dir / "n0.npy", dir / "y.npy"), "n0.npy", "no samples");
  // A 20-byte version-2 file declaring a 4 GiB header.
  std::string tiny = "\x93NUMPY";
  tiny += '\x02';
  tiny += '\x00';
  tiny += std::string("\xF0\xFF\xFF\xFF", 4);
  tiny += "{}      ";
  ASSERT_EQ(tiny.size(), 20u);
  write_text(dir / "hdr.npy", tiny);
  EXPECT_DATA_ERROR(read_npy(dir / "hdr.npy", dir / "y.npy"), "hdr.npy", "header length 4294967280",
                    "20 bytes");
  // Shapes whose byte count overflows, or exceeds what the file holds.
  write_text(dir / "ovf.npy", npy("<f4", "(4294967296, 4294967296, 4)", f4, sizeof f4));
  EXPECT_DATA_ERROR(read_npy(dir / "ovf.npy", dir / "y.npy"), "ovf.npy", "more than 2^64");
  write_text(dir / "big.npy", npy("<f8", "(1000000000000, 1000000)", f4, sizeof f4));
  EXPECT_DATA_ERROR(read_npy(dir / "big.npy", dir / "y.npy"), "big.npy",
                    "needs 8000000000000000000 data bytes", "holds 32");
}

// ---- CSV -------------------------------------------------------------------

TEST(IoCsv, HeaderAutoDetectAndLabelColumn) {
  TempDir dir;
  write_text(dir / "h.csv", "label,a,b\n1,0.5,2\n0,-1.5,3e2\r\n\n2, 4 ,5\n");
  LabeledData d = read_csv(dir / "h.csv");
  EXPECT_EQ(d.samples, 3u);
  EXPECT_EQ(d.features, 2u);
  EXPECT_EQ(d.x, (std::vector<float>{0.5f, 2.0f, -1.5f, 300.0f, 4.0f, 5.0f}));
  EXPECT_EQ(d.y, (std::vector<std::int32_t>{1, 0, 2}));

  write_text(dir / "n.csv", "0.5,2,1\n-1.5,300,0.0\n");
  CsvOptions last;
  last.label_column = -1;
  LabeledData e = read_csv(dir / "n.csv", last);
  EXPECT_EQ(e.samples, 2u);
  EXPECT_EQ(e.x, (std::vector<float>{0.5f, 2.0f, -1.5f, 300.0f}));
  EXPECT_EQ(e.y, (std::vector<std::int32_t>{1, 0}));

  // A numeric first line is data unless --header says otherwise.
  CsvOptions forced = last;
  forced.header = CsvOptions::Header::kYes;
  EXPECT_EQ(read_csv(dir / "n.csv", forced).samples, 1u);
  CsvOptions none;
  none.header = CsvOptions::Header::kNo;
  EXPECT_DATA_ERROR(read_csv(dir / "h.csv", none), "h.csv:1", "label");
}

TEST(IoCsv, RejectsMalformedRows) {
  TempDir dir;
  write_text(dir / "cols.csv", "1,2,3\n1,2\n");
  EXPECT_DATA_ERROR(read_csv(dir / "cols.csv"), "cols.csv:2", "2 columns", "expected 3");
  write_text(dir / "num.csv", "1,2,3\n1,x,3\n");
  EXPECT_DATA_ERROR(read_csv(dir / "num.csv"), "num.csv:2", "'x'", "sample 1");
  write_text(dir / "lab.csv", "1.5,2,3\n");
  EXPECT_DATA_ERROR(read_csv(dir / "lab.csv"), "lab.csv:1", "not an integer");
  CsvOptions far;
  far.label_column = 5;
  EXPECT_DATA_ERROR(read_csv(dir / "num.csv", far), "num.csv", "label column 5");
  write_text(dir / "empty.csv", "a,b\n");
  EXPECT_DATA_ERROR(read_csv(dir / "empty.csv"), "empty.csv", "no samples");
  write_text(dir / "nan.csv", "1,2\n0,nan\n");
  LabeledData d = read_csv(dir / "nan.csv");
  EXPECT_DATA_ERROR(validate(d, 3), "nan.csv", "sample 1", "NaN");
  write_text(dir / "inf.csv", "1,2\n0,1\n1,1e40\n");
  LabeledData big = read_csv(dir / "inf.csv");
  EXPECT_DATA_ERROR(validate(big, 3), "inf.csv", "first bad sample: 2", "infinite");
}

// ---- raw -------------------------------------------------------------------

TEST(IoRaw, ReadsFloatFeaturesWithUint8OrInt32Labels) {
  TempDir dir;
  const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8.5f};
  const unsigned char y1[2] = {3, 1};
  const std::int32_t y4[2] = {4, 0};
  write_bytes(dir / "x.bin", x, sizeof x);
  write_bytes(dir / "y1.bin", y1, sizeof y1);
  write_bytes(dir / "y4.bin", y4, sizeof y4);
  LabeledData a = read_raw(dir / "x.bin", dir / "y1.bin", 4, RawLabelType::kUint8, {2, 2});
  EXPECT_EQ(a.samples, 2u);
  EXPECT_EQ(a.feature_shape, (std::vector<std::size_t>{2, 2}));
  EXPECT_EQ(a.x, std::vector<float>(x, x + 8));
  EXPECT_EQ(a.y, (std::vector<std::int32_t>{3, 1}));
  LabeledData b = read_raw(dir / "x.bin", dir / "y4.bin", 4, RawLabelType::kInt32);
  EXPECT_EQ(b.feature_shape, (std::vector<std::size_t>{4}));
  EXPECT_EQ(b.y, (std::vector<std::int32_t>{4, 0}));
  EXPECT_DATA_ERROR(validate(b, 4), "y4.bin", "label 4 of sample 0");

  EXPECT_DATA_ERROR(read_raw(dir / "x.bin", dir / "y1.bin", 3, RawLabelType::kUint8), "x.bin",
                    "not a multiple");
  EXPECT_DATA_ERROR(read_raw(dir / "x.bin", dir / "y1.bin", 2, RawLabelType::kUint8), "y1.bin",
                    "2 labels", "4 samples");
  EXPECT_DATA_ERROR(read_raw(dir / "x.bin", dir / "y1.bin", 4, RawLabelType::kUint8, {3, 2}),
                    "x.bin", "(3, 2)");
  EXPECT_DATA_ERROR(read_raw(dir / "none.bin", dir / "y1.bin", 4, RawLabelType::kUint8), "none.bin",
                    "no such file");
}

TEST(IoCsv, EchoedValuesAreShortAndEscaped) {
  TempDir dir;
  CsvOptions no_header;
  no_header.header = CsvOptions::Header::kNo;
  write_text(dir / "long.csv", "0," + std::string(2'000'000, 'x') + ",1\n");
  try {
    read_csv(dir / "long.csv", no_header);
    ADD_FAILURE() << "accepted a 2 MB non-numeric field";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_LT(msg.size(), 400u) << msg.substr(0, 400);
    EXPECT_NE(msg.find("long.csv:1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2000000 bytes)"), std::string::npos) << msg;
  }
  write_text(dir / "ctl.csv", "0,a\x1b[2J\rb,1\n");
  EXPECT_DATA_ERROR(read_csv(dir / "ctl.csv", no_header), "ctl.csv:1", "'a\\x1b[2J\\rb'");
  std::filesystem::create_directory(dir / "d.csv");
  EXPECT_DATA_ERROR(read_csv(dir / "d.csv"), "d.csv", "is a directory");
}

TEST(IoRaw, RejectsAbsurdFeatureCounts) {
  TempDir dir;
  const float x[4] = {1, 2, 3, 4};
  const std::int32_t y[1] = {0};
  write_bytes(dir / "x.bin", x, sizeof x);
  write_bytes(dir / "y.bin", y, sizeof y);
  EXPECT_DATA_ERROR(read_raw(dir / "x.bin", dir / "y.bin", std::numeric_limits<std::size_t>::max(),
                             RawLabelType::kInt32),
                    "x.bin", "features per sample is more than");
  EXPECT_DATA_ERROR(read_raw(dir / "x.bin", dir / "y.bin", 4, RawLabelType::kInt32,
                             {std::size_t{1} << 32, std::size_t{1} << 32, 4}),
                    "x.bin", "more than 2^64");
}

}  // namespace
}  // namespace hpcml::io
