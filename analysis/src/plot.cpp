#include "hpcml/analysis/plot.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "hpcml/core/process_path.hpp"

extern char** environ;

namespace hpcml::analysis {

namespace {

constexpr double kWidth = 990, kHeight = 500;
constexpr double kLeft = 90, kRight = 650, kTop = 50, kBottom = 420;

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string f(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_text(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// "Nice" linear ticks covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi) {
  const double span = hi - lo > 0 ? hi - lo : 1.0;
  const double raw = span / 6.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step)
    t.push_back(std::fabs(v) < 1e-12 * step ? 0.0 : v);
  return t;
}

std::string header(const std::string& title) {
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << kWidth
    << "\" height=\"" << kHeight << "\" viewBox=\"0 0 " << kWidth << ' ' << kHeight
    << "\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n"
    << "<title>" << esc(title) << "</title>\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" fill=\"white\"/>\n"
    << "<text x=\"" << f((kLeft + kRight) / 2)
    << "\" y=\"30\" font-size=\"18\" font-weight=\"bold\" "
       "text-anchor=\"middle\">"
    << esc(title) << "</text>\n";
  return o.str();
}

void axis_labels(std::ostringstream& o, const std::string& x_label, const std::string& y_label) {
  o << "<text x=\"" << f((kLeft + kRight) / 2) << "\" y=\"" << f(kBottom + 50)
    << "\" font-size=\"14\" text-anchor=\"middle\">" << esc(x_label) << "</text>\n";
  o << "<text x=\"0\" y=\"0\" font-size=\"14\" text-anchor=\"middle\" transform=\"translate(24,"
    << f((kTop + kBottom) / 2) << ") rotate(-90)\">" << esc(y_label) << "</text>\n";
}

struct Legend {
  double y = kTop + 10;
  void entry(std::ostringstream& o, const std::string& label, const std::string& color,
             const std::string& dash, bool line, bool marker, bool box) {
    const double x = kRight + 20;
    if (box) {
      o << "<rect x=\"" << f(x) << "\" y=\"" << f(y - 6) << "\" width=\"24\" height=\"12\" fill=\""
        << color << "\" stroke=\"#333\" stroke-width=\"0.5\"/>\n";
    }
    if (line)
      o << "<line x1=\"" << f(x) << "\" y1=\"" << f(y) << "\" x2=\"" << f(x + 24) << "\" y2=\""
        << f(y) << "\" stroke=\"" << color << "\" stroke-width=\"2.5\""
        << (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"") << "/>\n";
    if (marker)
      o << "<circle cx=\"" << f(x + 12) << "\" cy=\"" << f(y) << "\" r=\"4.5\" fill=\"" << color
        << "\"/>\n";
    // Long labels wrap at ~30 characters on word boundaries.
    std::istringstream words(label);
    std::string word, cur;
    std::vector<std::string> lines;
    while (words >> word) {
      if (!cur.empty() && cur.size() + word.size() > 30) {
        lines.push_back(cur);
        cur.clear();
      }
      cur += (cur.empty() ? "" : " ") + word;
    }
    if (!cur.empty()) lines.push_back(cur);
    for (std::size_t i = 0; i < lines.size(); ++i)
      o << "<text x=\"" << f(x + 32) << "\" y=\"" << f(y + 5 + 16.0 * static_cast<double>(i))
        << "\" font-size=\"13\">" << esc(lines[i]) << "</text>\n";
    y += 16.0 * static_cast<double>(std::max<std::size_t>(1, lines.size())) + 10;
  }
};

}  // namespace

std::string render_line_chart(const LineChart& chart) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  auto take_y = [&](double v) {
    if (std::isfinite(v) && (!chart.log2_y || v > 0)) {
      ymin = std::min(ymin, v);
      ymax = std::max(ymax, v);
    }
  };
  for (const auto& s : chart.series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!(std::isfinite(s.x[i]) && s.x[i] > 0)) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      take_y(s.y[i]);
      if (i < s.y_lo.size()) take_y(s.y_lo[i]);
      if (i < s.y_hi.size()) take_y(s.y_hi[i]);
    }
  if (!std::isfinite(xmin)) xmin = xmax = 1;
  if (!std::isfinite(ymin)) ymin = ymax = 1;
  if (chart.y_max > chart.y_min) {
    ymin = chart.y_min;
    ymax = chart.y_max;
  }
  const double lx0 = std::floor(std::log2(xmin)),
               lx1 = std::max(lx0 + 1, std::ceil(std::log2(xmax)));
  double ly0 = 0, ly1 = 1;
  std::vector<double> yt;
  if (chart.log2_y) {
    ly0 = std::floor(std::log2(ymin));
    ly1 = std::max(ly0 + 1, std::ceil(std::log2(ymax)));
    for (double e = ly0; e <= ly1; ++e) yt.push_back(std::exp2(e));
  } else {
    if (ymax - ymin <= 0) ymax = ymin + 1;
    yt = linear_ticks(ymin, ymax);
    ly0 = std::min(ymin, yt.front());
    ly1 = std::max(ymax, yt.back());
  }
  auto px = [&](double x) { return kLeft + (std::log2(x) - lx0) / (lx1 - lx0) * (kRight - kLeft); };
  auto py = [&](double y) {
    const double v = chart.log2_y ? std::log2(y) : y;
    return kBottom - (v - ly0) / (ly1 - ly0) * (kBottom - kTop);
  };
  auto inside = [&](double x, double y) {
    return std::isfinite(x) && x > 0 && std::isfinite(y) && (!chart.log2_y || y > 0) &&
           py(y) >= kTop - 1 && py(y) <= kBottom + 1;
  };

  std::ostringstream o;
  o << header(chart.title);
  o << "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  for (double e = lx0; e <= lx1; ++e)
    o << "<line x1=\"" << f(px(std::exp2(e))) << "\" y1=\"" << f(kTop) << "\" x2=\""
      << f(px(std::exp2(e))) << "\" y2=\"" << f(kBottom) << "\"/>\n";
  for (double v : yt)
    o << "<line x1=\"" << f(kLeft) << "\" y1=\"" << f(py(v)) << "\" x2=\"" << f(kRight)
      << "\" y2=\"" << f(py(v)) << "\"/>\n";
  o << "</g>\n";
  o << "<rect x=\"" << f(kLeft) << "\" y=\"" << f(kTop) << "\" width=\"" << f(kRight - kLeft)
    << "\" height=\"" << f(kBottom - kTop)
    << "\" fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n";
  const int every = static_cast<int>(std::ceil((lx1 - lx0 + 1) / 12.0));
  for (double e = lx0; e <= lx1; ++e)
    if (static_cast<int>(e - lx0) % every == 0)
      o << "<text x=\"" << f(px(std::exp2(e))) << "\" y=\"" << f(kBottom + 20)
        << "\" font-size=\"13\" text-anchor=\"middle\">" << tick_text(std::exp2(e)) << "</text>\n";
  for (double v : yt)
    o << "<text x=\"" << f(kLeft - 8) << "\" y=\"" << f(py(v) + 4)
      << "\" font-size=\"13\" text-anchor=\"end\">" << tick_text(v) << "</text>\n";
  axis_labels(o, chart.x_label, chart.y_label);

  o << "<g clip-path=\"none\">\n";
  Legend legend;
  for (const auto& s : chart.series) {
    if (!s.band_lo.empty() && s.band_lo.size() == s.x.size() && s.band_hi.size() == s.x.size()) {
      std::string pts;
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (inside(s.x[i], s.band_hi[i])) pts += f(px(s.x[i])) + "," + f(py(s.band_hi[i])) + " ";
      for (std::size_t i = s.x.size(); i-- > 0;)
        if (inside(s.x[i], s.band_lo[i])) pts += f(px(s.x[i])) + "," + f(py(s.band_lo[i])) + " ";
      if (!pts.empty())
        o << "<polygon points=\"" << pts << "\" fill=\"" << s.color
          << "\" fill-opacity=\"0.15\" stroke=\"none\"/>\n";
    }
    if (s.line) {
      std::string pts;
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (inside(s.x[i], s.y[i])) pts += f(px(s.x[i])) + "," + f(py(s.y[i])) + " ";
      if (!pts.empty())
        o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << s.color
          << "\" stroke-width=\"2.5\""
          << (s.dash.empty() ? "" : " stroke-dasharray=\"" + s.dash + "\"") << "/>\n";
    }
    for (std::size_t i = 0; i < s.x.size() && s.markers; ++i) {
      if (!inside(s.x[i], s.y[i])) continue;
      if (i < s.y_lo.size() && i < s.y_hi.size() && inside(s.x[i], s.y_lo[i]) &&
          inside(s.x[i], s.y_hi[i]) && s.y_hi[i] > s.y_lo[i]) {
        const double x = px(s.x[i]);
        o << "<path d=\"M" << f(x) << ',' << f(py(s.y_lo[i])) << " V" << f(py(s.y_hi[i])) << " M"
          << f(x - 5) << ',' << f(py(s.y_lo[i])) << " H" << f(x + 5) << " M" << f(x - 5) << ','
          << f(py(s.y_hi[i])) << " H" << f(x + 5) << "\" stroke=\"" << s.color
          << "\" stroke-width=\"1.5\" fill=\"none\"/>\n";
      }
      o << "<circle cx=\"" << f(px(s.x[i])) << "\" cy=\"" << f(py(s.y[i])) << "\" r=\"5\" fill=\""
        << s.color << "\" stroke=\"white\" stroke-width=\"1\"/>\n";
    }
    legend.entry(o, s.label, s.color, s.dash, s.line, s.markers, false);
  }
  o << "</g>\n</svg>\n";
  return o.str();
}

std::string render_stacked_bars(const StackedBars& chart) {
  const std::size_t nc = chart.categories.size();
  double ymax = 0;
  for (std::size_t c = 0; c < nc; ++c) {
    double sum = 0;
    for (const auto& layer : chart.values)
      if (c < layer.size() && std::isfinite(layer[c]) && layer[c] > 0) sum += layer[c];
    ymax = std::max(ymax, sum);
    if (c < chart.side.size() && std::isfinite(chart.side[c])) ymax = std::max(ymax, chart.side[c]);
  }
  if (!(ymax > 0)) ymax = 1;
  const auto yt = linear_ticks(0, ymax * 1.05);
  const double top = std::max(ymax * 1.05, yt.back());
  auto py = [&](double v) { return kBottom - v / top * (kBottom - kTop); };
  std::ostringstream o;
  o << header(chart.title);
  for (double v : yt) {
    o << "<line x1=\"" << f(kLeft) << "\" y1=\"" << f(py(v)) << "\" x2=\"" << f(kRight)
      << "\" y2=\"" << f(py(v)) << "\" stroke=\"#dddddd\"/>\n";
    o << "<text x=\"" << f(kLeft - 8) << "\" y=\"" << f(py(v) + 4)
      << "\" font-size=\"13\" text-anchor=\"end\">" << tick_text(v) << "</text>\n";
  }
  o << "<rect x=\"" << f(kLeft) << "\" y=\"" << f(kTop) << "\" width=\"" << f(kRight - kLeft)
    << "\" height=\"" << f(kBottom - kTop) << "\" fill=\"none\" stroke=\"#333\"/>\n";
  const double slot = (kRight - kLeft) / static_cast<double>(std::max<std::size_t>(1, nc));
  const double bar = std::min(60.0, slot * 0.55);
  for (std::size_t c = 0; c < nc; ++c) {
    const double x = kLeft + slot * (static_cast<double>(c) + 0.5) - bar / 2;
    double base = 0;
    for (std::size_t l = 0; l < chart.values.size(); ++l) {
      const double v = c < chart.values[l].size() ? chart.values[l][c] : 0;
      if (!(std::isfinite(v) && v > 0)) continue;
      o << "<rect x=\"" << f(x) << "\" y=\"" << f(py(base + v)) << "\" width=\"" << f(bar)
        << "\" height=\"" << f(py(base) - py(base + v)) << "\" fill=\"" << chart.colors[l]
        << "\" stroke=\"white\" stroke-width=\"0.5\"/>\n";
      base += v;
    }
    if (c < chart.side.size() && std::isfinite(chart.side[c]) && chart.side[c] > 0)
      o << "<rect x=\"" << f(x + bar + 3) << "\" y=\"" << f(py(chart.side[c])) << "\" width=\""
        << f(bar / 4) << "\" height=\"" << f(kBottom - py(chart.side[c]))
        << "\" fill=\"none\" stroke=\"#9467bd\" stroke-width=\"1.5\" stroke-dasharray=\"3,2\"/>\n";
    o << "<text x=\"" << f(x + bar / 2) << "\" y=\"" << f(kBottom + 20)
      << "\" font-size=\"13\" text-anchor=\"middle\">" << esc(chart.categories[c]) << "</text>\n";
  }
  axis_labels(o, "point (ranks x threads per rank)", chart.y_label);
  Legend legend;
  for (std::size_t l = chart.values.size(); l-- > 0;)
    legend.entry(o, chart.layers[l], chart.colors[l], "", false, false, true);
  if (!chart.side_label.empty())
    legend.entry(o, chart.side_label, "#9467bd", "3,2", true, false, false);
  if (!chart.footnote.empty())
    o << "<text x=\"" << f(kLeft) << "\" y=\"" << f(kHeight - 10)
      << "\" font-size=\"12\" fill=\"#444\">" << esc(chart.footnote) << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

bool svg_to_png(const std::string& svg_path, const std::string& png_path, std::string* why) {
  const std::string tool = find_on_path("rsvg-convert");
  if (tool.empty()) {
    if (why) *why = "rsvg-convert not found on PATH (Debian package librsvg2-bin)";
    return false;
  }
  std::vector<std::string> args = {tool, "-f", "png", "-o", png_path, svg_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, tool.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    if (why) *why = "cannot start " + tool;
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (why) *why = tool + " failed on " + svg_path;
    return false;
  }
  return true;
}

}  // namespace hpcml::analysis
