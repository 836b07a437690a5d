#include "hpcml/launch/site.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "hpcml/config.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"
#include "hpcml/launch/job_spec.hpp"
#include "hpcml/launch/script_safety.hpp"
#include "validate.hpp"

namespace hpcml::launch {

std::string default_sites_dir() {
  if (const char* d = std::getenv("HPCML_SITES_DIR"); d && *d) return d;
  // An installed hpcml (<prefix>/bin/hpcml) uses <prefix>/share/hpcml/configs/sites,
  // so that it works once the source tree is gone.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed =
        (exe.parent_path() / HPCML_DATADIR_FROM_BINDIR / "configs" / "sites").lexically_normal();
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
  return std::string(HPCML_SOURCE_DIR) + "/configs/sites";
}

void apply_site_table(ConfigDoc& doc, const std::string& t, SiteProfile& s) {
  const std::string p = t + ".";
  s.partition = get_checked(doc, p + "partition", s.partition, Field::kName, true);
  s.account = get_checked(doc, p + "account", s.account, Field::kName, true);
  s.qos = get_checked(doc, p + "qos", s.qos, Field::kName, true);
  s.constraint = get_checked(doc, p + "constraint", s.constraint, Field::kConstraint, true);
  s.time = format_time(read_time_minutes(doc, p + "time", s.time));
  s.launcher = doc.get_choice(p + "launcher", s.launcher, {"srun", "mpiexec"});
  s.mpi = get_checked(doc, p + "mpi", s.mpi, Field::kName, false);
  s.cpu_bind = get_checked(doc, p + "cpu_bind", s.cpu_bind, Field::kGres, false);
  s.gpu_bind = get_checked(doc, p + "gpu_bind", s.gpu_bind, Field::kGres, false);
  s.mpiexec = get_checked(doc, p + "mpiexec", s.mpiexec, Field::kPath, false);
  s.module_init = get_checked(doc, p + "module_init", s.module_init, Field::kPath, true);
  s.module_purge = doc.get_bool(p + "module_purge", s.module_purge);
  s.modules = doc.get_string_list(p + "modules", s.modules);
  for (const auto& m : s.modules) require_field(doc, p + "modules", m, Field::kName);
  s.env_script = get_checked(doc, p + "env_script", s.env_script, Field::kPath, true);
  for (const auto& key : doc.leaf_keys(p + "env")) {
    const std::string var = key.substr(p.size() + 4);
    require_field(doc, key, var, Field::kEnvName);
    std::string value = doc.get_string(key, "");
    require_field(doc, key, value, Field::kText);
    bool replaced = false;
    for (auto& kv : s.env) {
      if (kv.first == var) {
        kv.second = value;
        replaced = true;
      }
    }
    if (!replaced) s.env.emplace_back(var, value);
  }
  s.max_array_size = doc.get_int(p + "max_array_size", s.max_array_size, 0, 1 << 30);
  s.hpcml = get_checked(doc, p + "hpcml", s.hpcml, Field::kPath, true);
}

SiteProfile load_site(const std::string& name_or_path, const std::string& sites_dir) {
  std::string path = name_or_path;
  const bool is_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".toml") == 0);
  if (!is_path) {
    if (auto why = check_field(Field::kJobName, name_or_path); !why.empty())
      HPCML_THROW(ConfigError, "site name '" + printable(name_or_path) + "': " + why);
    path = sites_dir + "/" + name_or_path + ".toml";
    if (!std::filesystem::exists(path))
      HPCML_THROW(ConfigError, "site '" + printable(name_or_path) + "': no profile " + path);
  }
  ConfigDoc doc = ConfigDoc::load(path);
  SiteProfile s;
  s.source = path;
  s.name = doc.get_string("site.name", std::filesystem::path(path).stem().string());
  require_field(doc, "site.name", s.name, Field::kJobName);
  apply_site_table(doc, "site", s);
  doc.check_unknown();
  return s;
}

}  // namespace hpcml::launch
