#include "hpcml/launch/job_spec.hpp"

#include <cctype>
#include <cstdio>

#include "hpcml/core/config_doc.hpp"
#include "validate.hpp"

namespace hpcml::launch {

namespace {

// Splits "a:b:c" into non-negative integers; false on anything else.
bool split_numbers(const std::string& s, std::vector<std::int64_t>& out) {
  out.clear();
  std::int64_t cur = 0;
  bool have = false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      if (cur > 100000000) return false;
      cur = cur * 10 + (c - '0');
      have = true;
    } else if (c == ':') {
      if (!have) return false;
      out.push_back(cur);
      cur = 0;
      have = false;
    } else {
      return false;
    }
  }
  if (!have) return false;
  out.push_back(cur);
  return true;
}

}  // namespace

std::int64_t parse_time_minutes(const ConfigDoc& doc, const std::string& key,
                                const std::string& text) {
  const std::string expect =
      "expected a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS) above zero, "
      "got '" +
      printable(text) + "'";
  std::int64_t days = 0;
  std::string rest = text;
  auto dash = text.find('-');
  std::vector<std::int64_t> parts;
  if (dash != std::string::npos) {
    std::vector<std::int64_t> d;
    if (!split_numbers(text.substr(0, dash), d) || d.size() != 1) doc.fail(key, expect);
    days = d[0];
    rest = text.substr(dash + 1);
  }
  if (!split_numbers(rest, parts) || parts.size() > 3) doc.fail(key, expect);
  std::int64_t seconds = 0;
  if (dash != std::string::npos) {
    // D-H, D-H:M, D-H:M:S
    seconds = days * 86400 + parts[0] * 3600;
    if (parts.size() > 1) seconds += parts[1] * 60;
    if (parts.size() > 2) seconds += parts[2];
  } else if (parts.size() == 1) {
    seconds = parts[0] * 60;
  } else if (parts.size() == 2) {
    seconds = parts[0] * 60 + parts[1];
  } else {
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
  }
  if (seconds <= 0) doc.fail(key, expect);
  return (seconds + 59) / 60;
}

std::int64_t parse_mem_mb(const ConfigDoc& doc, const std::string& key, const std::string& text) {
  const std::string expect =
      "expected a memory size like 500M, 4G or 1T, got '" + printable(text) + "'";
  if (text.empty()) doc.fail(key, expect);
  std::size_t i = 0;
  std::int64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (n > (std::int64_t{1} << 40)) doc.fail(key, expect);
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0 || n == 0) doc.fail(key, expect);
  std::string unit = text.substr(i);
  if (unit.empty() || unit == "M" || unit == "MB") return n;
  if (unit == "K" || unit == "KB") return (n + 1023) / 1024;
  if (unit == "G" || unit == "GB") return n * 1024;
  if (unit == "T" || unit == "TB") return n * 1024 * 1024;
  doc.fail(key, expect);
}

std::int64_t read_time_minutes(ConfigDoc& doc, const std::string& key, const std::string& def) {
  // `time = 30` (an integer: minutes, as sbatch --time=30) or any Slurm time string.
  auto raw = doc.raw(key);
  if (raw && !raw->empty() && raw->find_first_not_of("0123456789") == std::string::npos)
    return doc.get_int(key, 1, 1, 525600 * 100);
  return parse_time_minutes(doc, key, doc.get_string(key, def));
}

std::string format_time(std::int64_t minutes) {
  char buf[64];
  const std::int64_t d = minutes / 1440, h = (minutes % 1440) / 60, m = minutes % 60;
  if (d > 0) {
    std::snprintf(buf, sizeof(buf), "%lld-%02lld:%02lld:00", static_cast<long long>(d),
                  static_cast<long long>(h), static_cast<long long>(m));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld:00", static_cast<long long>(h),
                  static_cast<long long>(m));
  }
  return buf;
}

JobSpec read_job_spec(ConfigDoc& doc, const SiteProfile& site) {
  JobSpec j;
  j.job_name = get_checked(doc, "slurm.job_name", j.job_name, Field::kJobName, false);
  j.nodes = static_cast<int>(doc.get_int("slurm.nodes", 1, 1, 100000));
  j.ntasks_per_node = static_cast<int>(doc.get_int("slurm.ntasks_per_node", 1, 1, 4096));
  j.cpus_per_task = static_cast<int>(doc.get_int("slurm.cpus_per_task", 1, 1, 4096));
  j.gpus_per_node = static_cast<int>(doc.get_int("slurm.gpus_per_node", 0, 0, 64));
  j.gres = get_checked(doc, "slurm.gres", "", Field::kGres, true);
  if (j.gpus_per_node > 0 && !j.gres.empty())
    doc.fail("slurm.gres", "give either slurm.gpus_per_node or slurm.gres, not both");
  const std::string mem = doc.get_string("slurm.mem", "");
  const std::string mem_per_cpu = doc.get_string("slurm.mem_per_cpu", "");
  if (!mem.empty() && !mem_per_cpu.empty())
    doc.fail("slurm.mem_per_cpu", "give either slurm.mem or slurm.mem_per_cpu, not both");
  if (!mem.empty()) j.mem_mb = parse_mem_mb(doc, "slurm.mem", mem);
  if (!mem_per_cpu.empty()) {
    j.mem_mb = parse_mem_mb(doc, "slurm.mem_per_cpu", mem_per_cpu);
    j.mem_per_cpu = true;
  }
  j.time_minutes = read_time_minutes(doc, "slurm.time", site.time);
  j.partition = get_checked(doc, "slurm.partition", site.partition, Field::kName, true);
  j.account = get_checked(doc, "slurm.account", site.account, Field::kName, true);
  j.qos = get_checked(doc, "slurm.qos", site.qos, Field::kName, true);
  j.constraint = get_checked(doc, "slurm.constraint", site.constraint, Field::kConstraint, true);
  j.exclusive = doc.get_bool("slurm.exclusive", false);
  j.output = get_checked(doc, "slurm.output", "", Field::kPath, true);
  j.error = get_checked(doc, "slurm.error", "", Field::kPath, true);
  j.mail_type = doc.get_string_list("slurm.mail_type", {});
  static const std::vector<std::string> kMailTypes{
      "NONE",          "BEGIN",          "END",        "FAIL",       "REQUEUE",
      "ALL",           "INVALID_DEPEND", "STAGE_OUT",  "TIME_LIMIT", "TIME_LIMIT_90",
      "TIME_LIMIT_80", "TIME_LIMIT_50",  "ARRAY_TASKS"};
  for (const auto& t : j.mail_type) {
    bool ok = false;
    for (const auto& k : kMailTypes) ok = ok || k == t;
    if (!ok)
      doc.fail("slurm.mail_type", cat("'", printable(t),
                                      "' is not a Slurm mail type (NONE, BEGIN, END, FAIL, "
                                      "REQUEUE, ALL, TIME_LIMIT, ...)"));
  }
  j.mail_user = get_checked(doc, "slurm.mail_user", "", Field::kMailUser, true);
  j.extra = doc.get_string_list("slurm.extra", {});
  for (const auto& e : j.extra) require_field(doc, "slurm.extra", e, Field::kDirective);
  j.launcher = doc.get_choice("slurm.launcher", site.launcher, {"srun", "mpiexec", "none"});
  j.mpi = get_checked(doc, "slurm.mpi", site.mpi, Field::kName, false);
  j.cpu_bind = get_checked(doc, "slurm.cpu_bind", site.cpu_bind, Field::kGres, false);
  j.gpu_bind = get_checked(doc, "slurm.gpu_bind", site.gpu_bind, Field::kGres, false);
  j.mpiexec = site.mpiexec;
  j.omp_places = get_checked(doc, "slurm.omp_places", j.omp_places, Field::kGres, false);
  j.omp_proc_bind = doc.get_choice("slurm.omp_proc_bind", j.omp_proc_bind,
                                   {"close", "spread", "master", "primary", "true", "false"});
  j.signal_seconds = static_cast<int>(doc.get_int("slurm.signal_seconds", 0, 0, 65535));
  j.requeue = doc.get_bool("slurm.requeue", false);
  j.dependency = doc.get_choice("slurm.dependency", "", {"", "afterok", "afterany", "afternotok"});
  j.command = doc.get_string_list("slurm.command", j.command);
  if (j.command.empty()) doc.fail("slurm.command", "expected at least the hpcml subcommand");
  require_field(doc, "slurm.command", j.command[0], Field::kJobName);
  for (const auto& a : j.command) require_field(doc, "slurm.command", a, Field::kText);
  for (const auto& key : doc.leaf_keys("slurm.env")) {
    const std::string var = key.substr(std::string("slurm.env.").size());
    require_field(doc, key, var, Field::kEnvName);
    std::string value = doc.get_string(key, "");
    require_field(doc, key, value, Field::kText);
    j.env.emplace_back(var, value);
  }
  return j;
}

}  // namespace hpcml::launch
