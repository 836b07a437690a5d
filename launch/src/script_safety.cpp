#include "hpcml/launch/script_safety.hpp"

#include <cctype>

namespace hpcml::launch {

namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool all_of(std::string_view v, std::string_view extra) {
  for (char c : v) {
    if (!is_alnum(c) && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// First offending character, for the message.
std::string first_bad(std::string_view v, std::string_view extra) {
  for (char c : v) {
    if (!is_alnum(c) && extra.find(c) == std::string_view::npos)
      return "character '" + printable(std::string_view(&c, 1)) + "' is not allowed";
  }
  return {};
}

std::string check_set(std::string_view v, std::string_view extra) {
  if (all_of(v, extra)) return {};
  return first_bad(v, extra);
}

}  // namespace

std::string_view describe(Field field) {
  switch (field) {
    case Field::kJobName:
      return "letters, digits, '.', '_', '+', '-' (at most 128, not starting with '-')";
    case Field::kPath:
      return "letters, digits, '/', '.', '_', '+', ',', '=', '@', '-' and Slurm's %j %A %a %x %u "
             "%N %%";
    case Field::kName:
      return "letters, digits, '.', '_', '+', '/', '@', ':', '-'";
    case Field::kConstraint:
      return "feature names joined by & | , * [ ] ( ) !";
    case Field::kGres:
      return "letters, digits, '_', ':', '.', ',', '-'";
    case Field::kMailUser:
      return "an address user@host of letters, digits, '.', '_', '+', '-'";
    case Field::kDirective:
      return "--option or --option=value (value of letters, digits, '_', ':', '.', ',', '-', '/', "
             "'=', '@', '%')";
    case Field::kEnvName:
      return "a shell variable name (letter or '_', then letters, digits, '_')";
    case Field::kText:
      return "any text without control characters";
  }
  return "";
}

bool has_control_char(std::string_view value) {
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string check_field(Field field, std::string_view v) {
  if (has_control_char(v)) return "contains a control character (newline, tab, ...)";
  if (field != Field::kText && v.empty()) return "is empty";
  switch (field) {
    case Field::kJobName:
      if (v.size() > 128) return "is longer than 128 characters";
      if (v.front() == '-') return "starts with '-'";
      return check_set(v, "._+-");
    case Field::kPath: {
      if (v.front() == '-') return "starts with '-'";
      if (auto why = check_set(v, "/._+,=@-%"); !why.empty()) return why;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '%') continue;
        if (i + 1 >= v.size() ||
            std::string_view("jAaxuN%").find(v[i + 1]) == std::string_view::npos)
          return "'%' must be followed by one of j A a x u N %";
        ++i;
      }
      return {};
    }
    case Field::kName:
      if (v.front() == '-') return "starts with '-'";
      return check_set(v, "._+/@:-");
    case Field::kConstraint:
      return check_set(v, "_.&|,*[]()!-");
    case Field::kGres:
      return check_set(v, "_:.,-");
    case Field::kMailUser: {
      auto at = v.find('@');
      if (at == std::string_view::npos || at == 0 || at + 1 == v.size() ||
          v.find('@', at + 1) != std::string_view::npos)
        return "is not of the form user@host";
      return check_set(v, "@._+-");
    }
    case Field::kDirective: {
      if (v.size() < 3 || v.substr(0, 2) != "--" || !std::islower(static_cast<unsigned char>(v[2])))
        return "must look like --option or --option=value";
      auto eq = v.find('=');
      std::string_view name = v.substr(2, eq == std::string_view::npos ? v.npos : eq - 2);
      if (!all_of(name, "-")) return "option name " + first_bad(name, "-");
      if (eq == std::string_view::npos) return {};
      std::string_view value = v.substr(eq + 1);
      if (value.empty()) return "has an empty value";
      return check_set(value, "_:.,-/=@%");
    }
    case Field::kEnvName:
      if (std::isdigit(static_cast<unsigned char>(v.front()))) return "starts with a digit";
      return check_set(v, "_");
    case Field::kText:
      return {};
  }
  return {};
}

std::string shell_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

}  // namespace hpcml::launch
