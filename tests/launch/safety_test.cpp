// Allowlists and quoting: what may reach a batch script and how it is written.
#include <gtest/gtest.h>

#include "hpcml/launch/process.hpp"
#include "hpcml/launch/script_safety.hpp"

namespace hpcml::launch {
namespace {

const char* const kHostile[] = {
    "$(touch /tmp/hpcml-pwned)",
    "`touch /tmp/hpcml-pwned`",
    "a; touch /tmp/hpcml-pwned",
    "x\ntouch /tmp/hpcml-pwned",
    "x # comment",
    "a'b\"c",
    "${HOME}",
    "a|b&c>d<e",
    "\\",
    "x\r",
    "tab\there",
    "--partition=x",
};

TEST(LaunchSafety, ControlCharactersAreRejectedEverywhere) {
  for (Field f : {Field::kJobName, Field::kPath, Field::kName, Field::kConstraint, Field::kGres,
                  Field::kMailUser, Field::kDirective, Field::kEnvName, Field::kText}) {
    EXPECT_FALSE(check_field(f, "ok\nsrun evil").empty()) << describe(f);
    EXPECT_FALSE(check_field(f, std::string("a\0b", 3)).empty()) << describe(f);
    EXPECT_FALSE(check_field(f, "a\x7f").empty()) << describe(f);
  }
}

TEST(LaunchSafety, ShellMetacharactersAreRejectedOutsideFreeText) {
  for (const char* v : kHostile) {
    for (Field f : {Field::kJobName, Field::kPath, Field::kName, Field::kGres, Field::kEnvName}) {
      EXPECT_FALSE(check_field(f, v).empty())
          << "field " << describe(f) << " accepted '" << printable(v) << "'";
    }
  }
  EXPECT_FALSE(check_field(Field::kDirective, "--comment=$(id)").empty());
  EXPECT_FALSE(check_field(Field::kDirective, "--comment=a b").empty());
  EXPECT_FALSE(check_field(Field::kDirective, "-p x").empty());
  EXPECT_FALSE(check_field(Field::kMailUser, "a@b;c").empty());
  EXPECT_FALSE(check_field(Field::kPath, "/runs/%q").empty());  // only Slurm's % patterns
  EXPECT_FALSE(check_field(Field::kPath, "-o").empty());
}

TEST(LaunchSafety, OrdinaryValuesPass) {
  EXPECT_EQ(check_field(Field::kJobName, "fmnist-mlp_v2.1"), "");
  EXPECT_EQ(check_field(Field::kPath, "/scratch/u/runs/x-%j.out"), "");
  EXPECT_EQ(check_field(Field::kPath, "logs/%x_%A_%a.err"), "");
  EXPECT_EQ(check_field(Field::kName, "mpich/4.0.2@gcc-12"), "");
  EXPECT_EQ(check_field(Field::kConstraint, "[rack1|rack2]&ib"), "");
  EXPECT_EQ(check_field(Field::kGres, "gpu:a100:2"), "");
  EXPECT_EQ(check_field(Field::kMailUser, "first.last+hpc@uni-x.edu"), "");
  EXPECT_EQ(check_field(Field::kDirective, "--reservation=maint"), "");
  EXPECT_EQ(check_field(Field::kDirective, "--exclusive"), "");
  EXPECT_EQ(check_field(Field::kEnvName, "_HPCML_X1"), "");
  EXPECT_EQ(check_field(Field::kText, "$(this) `is` fine; # once quoted"), "");
}

// The quoted text, read back by a real shell, is the original text: no
// expansion, no command substitution, no word splitting.
TEST(LaunchSafety, ShellQuoteRoundTripsThroughBash) {
  for (const char* v : kHostile) {
    std::string value(v);
    ProcessResult r = run_process({"bash", "-c", "printf '%s' " + shell_quote(value)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, value);
  }
  ProcessResult r = run_process({"bash", "-c", "set -- " + shell_quote("a b  c") + "; echo $#"});
  EXPECT_EQ(r.out, "1\n");
}

TEST(LaunchSafety, PrintableShowsControlCharacters) {
  EXPECT_EQ(printable("a\nb\x01"), "a\\nb\\x01");
}

TEST(LaunchProcess, CapturesOutputAndExitCodeWithoutAShell) {
  ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  // An argument is one argv word: no shell sees it.
  r = run_process({"printf", "%s", "$(echo no)"});
  EXPECT_EQ(r.out, "$(echo no)");
  r = run_process({"/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127);
}

}  // namespace
}  // namespace hpcml::launch
