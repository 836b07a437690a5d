// Hand-written SVG charts for the scaling report (no plotting dependency), and
// PNG conversion through the external `rsvg-convert` when it is installed.
//
// Charts are self-contained SVG 1.1 documents with a white background, axis
// labels carrying units, tick labels and a legend to the right of the plot, so
// that they stay readable when pasted into a proposal.
#pragma once

#include <string>
#include <vector>

namespace hpcml::analysis {

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::vector<double> y_lo, y_hi;  // error bars (same length as y) or empty
  std::string color = "#1f77b4";
  bool line = true;
  bool markers = false;
  std::string dash;             // SVG stroke-dasharray, "" = solid
  std::vector<double> band_lo;  // shaded band between band_lo and band_hi (same x), or empty
  std::vector<double> band_hi;
};

struct LineChart {
  std::string title;
  std::string x_label;  // the x axis is always log2
  std::string y_label;
  bool log2_y = false;
  double y_min = 0, y_max = 0;  // y_max <= y_min: from the data
  std::vector<Series> series;
};

struct StackedBars {
  std::string title;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<std::string> layers;          // bottom to top
  std::vector<std::string> colors;          // one per layer
  std::vector<std::vector<double>> values;  // [layer][category], >= 0 (NaN counts as 0)
  std::vector<double> side;                 // optional second thin bar per category
  std::string side_label;
  std::string footnote;
};

/// Renders the chart as an SVG document. Non-finite values are skipped.
std::string render_line_chart(const LineChart& chart);
std::string render_stacked_bars(const StackedBars& chart);

/// Converts an SVG file to PNG with rsvg-convert (found with core's find_on_path). Returns false
/// (and why) when the tool is missing or fails; never throws.
bool svg_to_png(const std::string& svg_path, const std::string& png_path, std::string* why);

}  // namespace hpcml::analysis
