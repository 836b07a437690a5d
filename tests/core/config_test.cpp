#include <gtest/gtest.h>

#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/core/strings.hpp"
#include "hpcml/core/train_config.hpp"

using hpcml::ConfigDoc;
using hpcml::ConfigError;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(ConfigDoc, TypedGettersAndDefaults) {
  auto d = ConfigDoc::parse("[train]\nepochs = 3\nlr = 1\nname = \"x\"\n[model]\nhidden = [4, 5]\n",
                            "t.toml");
  EXPECT_EQ(d.get_int("train.epochs", 10), 3);
  EXPECT_DOUBLE_EQ(d.get_double("train.lr", 0.5), 1.0);  // integers are accepted as numbers
  EXPECT_EQ(d.get_string("train.name", ""), "x");
  EXPECT_EQ(d.get_int("train.missing", 7), 7);
  EXPECT_EQ(d.get_int_list("model.hidden", {}), (std::vector<std::int64_t>{4, 5}));
  EXPECT_NO_THROW(d.check_unknown());
  // Defaults show up in the effective document.
  EXPECT_NE(d.effective_toml().find("missing = 7"), std::string::npos);
}

TEST(ConfigDoc, WrongTypeNamesFileAndKey) {
  auto d = ConfigDoc::parse("[train]\nepochs = \"ten\"\n", "jobs/a.toml");
  auto msg = error_of([&] { d.get_int("train.epochs", 1); });
  EXPECT_EQ(msg, "jobs/a.toml: key 'train.epochs': expected an integer, got a string \"ten\"");
}

TEST(ConfigDoc, RangeErrors) {
  auto d = ConfigDoc::parse("[train]\nbatch_size = 0\n", "a.toml");
  EXPECT_EQ(error_of([&] { d.get_int("train.batch_size", 1, 1); }),
            "a.toml: key 'train.batch_size': expected an integer >= 1, got 0");
}

TEST(ConfigDoc, IntegerOrAuto) {
  auto d =
      ConfigDoc::parse("[data]\na = \"auto\"\nb = 0\nc = 65\nd = \"two\"\ne = 1.5\n", "p.toml");
  EXPECT_EQ(d.get_int_or_auto("data.a", 2, 0, 64, -1), -1);
  EXPECT_EQ(d.get_int_or_auto("data.b", 2, 0, 64, -1), 0);
  EXPECT_EQ(d.get_int_or_auto("data.missing", -1, 0, 64, -1), -1);
  EXPECT_EQ(error_of([&] { d.get_int_or_auto("data.c", -1, 0, 64, -1); }),
            "p.toml: key 'data.c': expected an integer in [0, 64] or \"auto\", got 65");
  EXPECT_EQ(error_of([&] { d.get_int_or_auto("data.d", -1, 0, 64, -1); }),
            "p.toml: key 'data.d': expected an integer in [0, 64] or \"auto\", got a string "
            "\"two\"");
  EXPECT_NE(error_of([&] { d.get_int_or_auto("data.e", -1, 0, 64, -1); }).find("got a float"),
            std::string::npos);
  EXPECT_NE(d.effective_toml().find("missing = \"auto\""), std::string::npos);
}

TEST(ConfigDoc, UnknownKeyIsAnErrorWithSuggestion) {
  auto d = ConfigDoc::parse("[train]\nepoch = 3\n", "a.toml");
  d.get_int("train.epochs", 1);
  EXPECT_EQ(error_of([&] { d.check_unknown(); }),
            "a.toml: key 'train.epoch': unknown key (did you mean 'train.epochs'?)");
}

TEST(ConfigDoc, SkippedTablesAreNotChecked) {
  auto d = ConfigDoc::parse("[slurm]\nnodes = 2\n[train]\nepochs = 1\n", "a.toml");
  d.get_int("train.epochs", 1);
  EXPECT_NO_THROW(d.check_unknown({"slurm"}));
  EXPECT_THROW(d.check_unknown(), ConfigError);
}

TEST(ConfigDoc, SetOverridesAndCreatesKeys) {
  auto d = ConfigDoc::parse("[train]\nepochs = 3\n", "a.toml");
  d.set("train.epochs=5");
  d.set("optimizer.lr=0.1");
  d.set("model.hidden=[8,8]");
  d.set("run.name=abc");  // bare word -> string
  EXPECT_EQ(d.get_int("train.epochs", 1), 5);
  EXPECT_DOUBLE_EQ(d.get_double("optimizer.lr", 1), 0.1);
  EXPECT_EQ(d.get_int_list("model.hidden", {}), (std::vector<std::int64_t>{8, 8}));
  EXPECT_EQ(d.get_string("run.name", ""), "abc");
}

TEST(ConfigDoc, SetErrorsSayTheyCameFromSet) {
  auto d = ConfigDoc::parse("[train]\nepochs = 3\n", "a.toml");
  d.set("train.epochs=-1");
  EXPECT_EQ(error_of([&] { d.get_int("train.epochs", 1, 1); }),
            "--set train.epochs: expected an integer >= 1, got -1");
  EXPECT_NE(error_of([&] { d.set("novalue"); }).find("expected KEY=VALUE"), std::string::npos);
  EXPECT_NE(error_of([&] { d.set("train.epochs.x=1"); }).find("'train.epochs' is a value"),
            std::string::npos);
}

TEST(ConfigDoc, SyntaxAndMissingFileErrors) {
  auto msg = error_of([] { ConfigDoc::parse("[train]\nepochs = \n", "bad.toml"); });
  EXPECT_EQ(msg.rfind("bad.toml:2: TOML syntax error", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "error must be one line: " << msg;
  msg = error_of([] { ConfigDoc::load("/nonexistent/x.toml"); });
  EXPECT_EQ(msg, "/nonexistent/x.toml: cannot open config file (missing or unreadable)");
}

TEST(TrainConfig, DefaultsAndValidation) {
  auto d = ConfigDoc::parse("", "empty.toml");
  auto c = hpcml::read_train_config(d);
  EXPECT_EQ(c.train.epochs, 10);
  EXPECT_EQ(c.model.hidden, (std::vector<std::int64_t>{512, 256}));
  EXPECT_NO_THROW(d.check_unknown());

  auto bad = ConfigDoc::parse("[model]\nactivation = \"gelu\"\n", "m.toml");
  EXPECT_EQ(error_of([&] { hpcml::read_train_config(bad); }),
            "m.toml: key 'model.activation': expected one of 'relu', got 'gelu'");
  auto zero = ConfigDoc::parse("[train]\nbatch_size = 0\n", "z.toml");
  EXPECT_EQ(error_of([&] { hpcml::read_train_config(zero); }),
            "z.toml: key 'train.batch_size': expected an integer in [1, 16777216], got 0");
  auto lr = ConfigDoc::parse("[optimizer]\nlr = 0.0\n", "l.toml");
  EXPECT_NE(error_of([&] { hpcml::read_train_config(lr); }).find("optimizer.lr"),
            std::string::npos);
  auto name = ConfigDoc::parse("[run]\nname = \"../x\"\n", "n.toml");
  EXPECT_NE(error_of([&] { hpcml::read_train_config(name); }).find("run.name"), std::string::npos);
}

TEST(TrainConfig, PrecisionAndLossScaling) {
  auto d = ConfigDoc::parse("", "empty.toml");
  auto c = hpcml::read_train_config(d);
  EXPECT_EQ(c.train.precision, "fp32");
  EXPECT_FALSE(c.train.tf32);
  EXPECT_EQ(c.train.loss_scale, 65536.0);
  EXPECT_EQ(c.train.loss_scale_window, 2000);
  EXPECT_EQ(hpcml::gemm_precision(c.train), hpcml::GemmPrecision::kFp32);

  auto fp16 = ConfigDoc::parse(
      "[train]\nprecision = \"fp16\"\nloss_scale = 1024\nloss_scale_window = 10\n", "h.toml");
  c = hpcml::read_train_config(fp16);
  EXPECT_EQ(c.train.loss_scale, 1024.0);
  EXPECT_EQ(c.train.loss_scale_window, 10);
  EXPECT_EQ(hpcml::gemm_precision(c.train), hpcml::GemmPrecision::kFp16);
  auto tf32 = ConfigDoc::parse("[train]\ntf32 = true\n", "t.toml");
  EXPECT_EQ(hpcml::gemm_precision(hpcml::read_train_config(tf32).train),
            hpcml::GemmPrecision::kTf32);
  auto bf16 = ConfigDoc::parse("[train]\nprecision = \"bf16\"\n", "b.toml");
  EXPECT_EQ(hpcml::gemm_precision(hpcml::read_train_config(bf16).train),
            hpcml::GemmPrecision::kBf16);

  auto fp8 = ConfigDoc::parse("[train]\nprecision = \"fp8\"\n", "p.toml");
  EXPECT_EQ(error_of([&] { hpcml::read_train_config(fp8); }),
            "p.toml: key 'train.precision': expected one of 'fp32', 'bf16', 'fp16', got 'fp8'");
  auto both = ConfigDoc::parse("[train]\nprecision = \"bf16\"\ntf32 = true\n", "b.toml");
  EXPECT_EQ(error_of([&] { hpcml::read_train_config(both); }),
            "b.toml: key 'train.tf32': TF32 applies to train.precision = \"fp32\" only, not "
            "\"bf16\"");
  auto scale32 = ConfigDoc::parse("[train]\nloss_scale = 128\n", "s.toml");
  EXPECT_EQ(error_of([&] { hpcml::read_train_config(scale32); }),
            "s.toml: key 'train.loss_scale': loss scaling is for train.precision = \"fp16\" "
            "only, not \"fp32\"");
  auto window =
      ConfigDoc::parse("[train]\nprecision = \"fp16\"\nloss_scale_window = 0\n", "w.toml");
  EXPECT_NE(error_of([&] { hpcml::read_train_config(window); }).find("train.loss_scale_window"),
            std::string::npos);
  auto small = ConfigDoc::parse("[train]\nprecision = \"fp16\"\nloss_scale = 0.5\n", "x.toml");
  EXPECT_NE(error_of([&] { hpcml::read_train_config(small); }).find("train.loss_scale"),
            std::string::npos);
}

TEST(TrainConfig, PrefetchAutoNeedsASpareCore) {
  constexpr int kAuto = hpcml::TrainConfig::Data::kAutoPrefetch;
  // 2 ranks x 1 thread on 4 CPUs: a core is left for each reader thread.
  auto spare = hpcml::choose_prefetch(kAuto, 1, 4, 2, 4);
  EXPECT_EQ(spare.depth, 2u);
  EXPECT_EQ(spare.description, "reader thread 2 batches ahead (prefetch auto: spare core)");
  // 2 ranks x 1 thread on 2 CPUs, or a rank pinned to its thread's one CPU: none.
  EXPECT_EQ(hpcml::choose_prefetch(kAuto, 1, 2, 2, 2).depth, 0u);
  auto pinned = hpcml::choose_prefetch(kAuto, 1, 1, 1, 8);
  EXPECT_EQ(pinned.depth, 0u);
  EXPECT_EQ(pinned.description, "reads on the training thread (prefetch auto: no spare core)");
  // An explicit depth is taken as given.
  EXPECT_EQ(hpcml::choose_prefetch(3, 8, 1, 8, 8).description, "reader thread 3 batches ahead");
  auto none = hpcml::choose_prefetch(0, 1, 64, 1, 64);
  EXPECT_EQ(none.depth, 0u);
  EXPECT_EQ(none.description, "reads on the training thread (prefetch 0)");
}

// ---- hostile input (issue 10) ----------------------------------------------------------

TEST(ConfigDocHostile, DeepNestingIsRefusedBeforeParsing) {
  // toml11 recurses once per level: 10,000 levels used to crash with SIGSEGV.
  const std::string arrays = "x = " + std::string(10000, '[') + std::string(10000, ']') + "\n";
  auto msg = error_of([&] { ConfigDoc::parse("# deep\n" + arrays, "deep.toml"); });
  EXPECT_EQ(msg, "deep.toml:2: arrays or inline tables nested deeper than 64 levels");
  std::string tables = "x = ";
  for (int i = 0; i < 5000; ++i) tables += "{a = ";
  tables += "1" + std::string(5000, '}') + "\n";
  msg = error_of([&] { ConfigDoc::parse(tables, "inline.toml"); });
  EXPECT_EQ(msg, "inline.toml:1: arrays or inline tables nested deeper than 64 levels");
  std::string headers;
  for (int i = 0; i < 10000; ++i) headers += "[";
  msg = error_of([&] { ConfigDoc::parse(headers, "h.toml"); });
  EXPECT_EQ(msg.rfind("h.toml:1: ", 0), 0u) << msg;
  // Brackets inside strings and comments do not count; 64 levels still parse.
  auto ok = ConfigDoc::parse("s = \"" + std::string(200, '[') + "\"\n# " + std::string(200, '{') +
                                 "\nm = '''\n" + std::string(200, '[') +
                                 "'''\nd = " + std::string(64, '[') + std::string(64, ']') + "\n",
                             "ok.toml");
  EXPECT_EQ(ok.get_string("s", "").size(), 200u);
  ConfigDoc d;
  msg = error_of([&] { d.set("train.x=" + std::string(10000, '[') + std::string(10000, ']')); });
  EXPECT_EQ(msg, "--set train.x: value has arrays or inline tables nested deeper than 64 levels");
}

TEST(ConfigDocHostile, ADirectoryOrMissingFileIsAnError) {
  auto msg = error_of([] { ConfigDoc::load("/tmp"); });
  EXPECT_EQ(msg, "/tmp: is a directory, not a config file");
  msg = error_of([] { ConfigDoc::load("/tmp/"); });
  EXPECT_EQ(msg, "/tmp/: is a directory, not a config file");
  msg = error_of([] { ConfigDoc::load("/nonexistent-dir/"); });
  EXPECT_EQ(msg, "/nonexistent-dir/: cannot open config file (missing or unreadable)");
}

TEST(ConfigDocHostile, IntegersOutOfRangeAreErrorsNotClamped) {
  auto msg = error_of([] { ConfigDoc::parse("[train]\nseed = 9223372036854775808\n", "s.toml"); });
  EXPECT_EQ(msg, "s.toml:2: key 'train.seed': integer 9223372036854775808 does not fit in 64 bits");
  for (const char* lit : {"-9223372036854775809", "0xFFFFFFFFFFFFFFFFF", "0o7777777777777777777777",
                          "1_000_000_000_000_000_000_000",
                          "0b11111111111111111111111111111111111111111111111111111111111111111"}) {
    msg = error_of([&] { ConfigDoc::parse(std::string("v = [1, ") + lit + "]\n", "r.toml"); });
    EXPECT_EQ(msg, std::string("r.toml:1: key 'v': integer ") + lit + " does not fit in 64 bits");
  }
  // The limits themselves are fine.
  auto d = ConfigDoc::parse(
      "a = 9223372036854775807\nb = -9223372036854775808\nc = 0x7FFFFFFFFFFFFFFF\n", "ok.toml");
  EXPECT_EQ(d.get_int("a", 0), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(d.get_int("b", 0), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(d.get_int("c", 0), std::numeric_limits<std::int64_t>::max());
  ConfigDoc s;
  msg = error_of([&] { s.set("train.seed=9223372036854775808"); });
  EXPECT_EQ(msg, "--set train.seed: integer 9223372036854775808 does not fit in 64 bits");
  EXPECT_NO_THROW(s.set("train.seed=9223372036854775807"));
  EXPECT_EQ(s.get_int("train.seed", 0), std::numeric_limits<std::int64_t>::max());
}

TEST(ConfigDocHostile, EchoedValuesAreEscapedAndTruncated) {
  auto d = ConfigDoc::parse("[model]\nactivation = \"re\\nlu\\r\"\n", "e.toml");
  auto msg = error_of([&] { hpcml::read_train_config(d); });
  EXPECT_EQ(msg, "e.toml: key 'model.activation': expected one of 'relu', got 're\\nlu\\r'");
  auto big =
      ConfigDoc::parse("[model]\nactivation = \"" + std::string(2000000, 'x') + "\"\n", "b.toml");
  msg = error_of([&] { hpcml::read_train_config(big); });
  EXPECT_LT(msg.size(), 300u);
  EXPECT_NE(msg.find("xxx… (2000000 bytes)'"), std::string::npos) << msg;
  EXPECT_EQ(hpcml::printable("a\nb\x01\t\x7f"), "a\\nb\\x01\\t\\x7f");
  EXPECT_EQ(hpcml::printable(std::string(100, 'y'), 10), "yyyyyyyyyy… (100 bytes)");
  // A cut never splits a UTF-8 character.
  EXPECT_EQ(hpcml::printable("aé", 2), "a… (3 bytes)");
}

TEST(ConfigDocHostile, DottedKeysWithTooManyPartsAreRefused) {
  // 300,000 parts took toml11 minutes; 64 parts still parse.
  std::string key = "x";
  for (int i = 0; i < 300000; ++i) key += ".a";
  auto msg = error_of([&] { ConfigDoc::parse("# k\n" + key + " = 1\n", "k.toml"); });
  EXPECT_EQ(msg, "k.toml:2: a dotted key with more than 64 parts");
  msg = error_of([&] { ConfigDoc::parse("[" + key + "]\n", "t.toml"); });
  EXPECT_EQ(msg, "t.toml:1: a dotted key with more than 64 parts");
  msg = error_of([&] { ConfigDoc::parse("v = {" + key + " = 1}\n", "i.toml"); });
  EXPECT_EQ(msg, "i.toml:1: a dotted key with more than 64 parts");
  ConfigDoc d;
  msg = error_of([&] { d.set(key + "=1"); });
  EXPECT_EQ(msg.rfind("--set x.a.a.a", 0), 0u) << msg.substr(0, 200);
  EXPECT_NE(msg.find("… (600001 bytes): a dotted key with more than 64 parts"), std::string::npos)
      << msg.substr(0, 200);
  msg = error_of([&] { d.set("train.v={" + key + " = 1}"); });
  EXPECT_EQ(msg, "--set train.v: value has a dotted key with more than 64 parts");
  std::string ok_key = "x";
  for (int i = 1; i < 64; ++i) ok_key += ".a";
  auto ok = ConfigDoc::parse(ok_key + " = 1\nf = [1.5, 2.5,\n 3.5]\nd = 1979-05-27T07:32:00.999Z\n",
                             "ok.toml");
  EXPECT_EQ(ok.get_int(ok_key, 0), 1);
}

// toml11 3.7 read past its buffer (heap-buffer-overflow, found by fuzz_config)
// on a literal string, '...' or '''...''', holding an invalid UTF-8 byte. The
// text is checked for UTF-8 before parsing: one line naming the place.
TEST(ConfigDocHostile, InvalidUtf8IsRefusedBeforeParsing) {
  auto msg = error_of([] {
    ConfigDoc::parse(
        "# x\np = '''to\" a\xda"
        "cor\n'''\n",
        "ml.toml");
  });
  EXPECT_EQ(msg,
            "ml.toml:2: byte 0xDA at column 13 is not valid UTF-8 (a TOML file must be UTF-8)");
  msg = error_of([] { ConfigDoc::parse("p = 'a\xff'\n", "lit.toml"); });
  EXPECT_EQ(msg,
            "lit.toml:1: byte 0xFF at column 7 is not valid UTF-8 (a TOML file must be UTF-8)");
  // Overlong forms, surrogates, code points past U+10FFFF and cut sequences too.
  for (const char* bad :
       {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"})
    EXPECT_NE(error_of([&] {
                ConfigDoc::parse(std::string("s = \"") + bad + "\"\n", "b.toml");
              }).find("is not valid UTF-8"),
              std::string::npos)
        << bad;
  ConfigDoc d;
  msg = error_of([&] { d.set("run.name='''a\xda'''"); });
  EXPECT_EQ(msg, "--set run.name: byte 0xDA at column 14 is not valid UTF-8");
  // Valid UTF-8 (2, 3 and 4 bytes) is untouched, in every kind of string.
  auto ok = ConfigDoc::parse("a = 'é€😀'\nb = '''\né€😀'''\nc = \"é\"\n# ünïcödé\n", "ok.toml");
  EXPECT_EQ(ok.get_string("a", ""), "é€😀");
  EXPECT_EQ(ok.get_string("b", ""), "é€😀");
}
