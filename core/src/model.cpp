#include "hpcml/core/model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hpcml/core/error.hpp"
#include "hpcml/core/random.hpp"
#include "layers.hpp"

namespace hpcml {

std::string Shape::text() const {
  if (h == 1 && w == 1) return std::to_string(c);
  return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

std::string LayerSpec::describe() const {
  if (type == "dense") return "dense " + std::to_string(units);
  if (type == "conv2d")
    return "conv2d " + std::to_string(kernel) + "x" + std::to_string(kernel) + "x" +
           std::to_string(filters) + " s" + std::to_string(stride) + " p" + std::to_string(padding);
  if (type == "maxpool2d") return "maxpool2d " + std::to_string(size);
  if (type == "dropout") {
    char buf[32];
    std::snprintf(buf, sizeof buf, "dropout %g", rate);
    return buf;
  }
  return type;
}

std::vector<LayerSpec> mlp_layers(const std::vector<std::int64_t>& hidden) {
  std::vector<LayerSpec> out;
  for (auto h : hidden) {
    LayerSpec d;
    d.type = "dense";
    d.units = h;
    out.push_back(d);
    LayerSpec r;
    r.type = "relu";
    out.push_back(r);
  }
  return out;
}

Model build_model(const TrainConfig::Model& m, std::size_t features, std::size_t classes) {
  if (m.layers.empty()) return Model(features, m.hidden, classes);
  Shape shape{1, 1, features};
  if (!m.input_shape.empty()) {
    shape = {static_cast<std::size_t>(m.input_shape[0]), static_cast<std::size_t>(m.input_shape[1]),
             static_cast<std::size_t>(m.input_shape[2])};
    if (shape.size() != features)
      HPCML_THROW(ConfigError,
                  "model.input_shape: " + shape.text() + " = " + std::to_string(shape.size()) +
                      " values a sample, the data has " + std::to_string(features) + " features");
  }
  return Model(shape, m.layers, classes);
}

namespace {

class Dense final : public Layer {
 public:
  std::string describe() const override { return "dense " + std::to_string(out.size()); }
  double flops_per_sample(bool first) const override {
    return (first ? 4.0 : 6.0) * static_cast<double>(in.size()) * static_cast<double>(out.size());
  }
  float* forward(Backend& be, float* x, std::size_t n, bool, const LayerParams& p,
                 std::uint64_t) override {
    const std::size_t i = in.size(), o = out.size();
    y_.reserve_discard(*p.memory, n * o);
    be.gemm(false, false, n, o, i, 1.0f, x, i, p.p(tensors[0]), o, 0.0f, y_.data(), o);
    be.add_bias(y_.data(), p.p(tensors[1]), n, o);
    return y_.data();
  }
  float* backward(Backend& be, const float* x, const float*, float* dy, float* dx, std::size_t n,
                  bool need_dx, const LayerParams& p, std::uint64_t) override {
    const std::size_t i = in.size(), o = out.size();
    // dW = xᵀ · δ (fan_in x fan_out), db = column sums of δ, δx = δ · Wᵀ.
    be.gemm(true, false, i, o, n, 1.0f, x, i, dy, o, 0.0f, p.g(tensors[0]), o);
    be.column_sums(dy, n, o, p.g(tensors[1]));
    if (need_dx) be.gemm(false, true, n, i, o, 1.0f, dy, o, p.p(tensors[0]), o, 0.0f, dx, i);
    return dx;
  }
};

class Conv2d final : public Layer {
 public:
  std::size_t k = 3, stride = 1, pad = 0;
  std::string describe() const override {
    return "conv2d " + std::to_string(k) + "x" + std::to_string(k) + "x" + std::to_string(out.c) +
           " s" + std::to_string(stride) + " p" + std::to_string(pad);
  }
  double flops_per_sample(bool first) const override {
    return (first ? 4.0 : 6.0) * static_cast<double>(out.h * out.w) *
           static_cast<double>(k * k * in.c) * static_cast<double>(out.c);
  }
  Backend::ConvShape geometry(std::size_t n) const {
    return {n, in.h, in.w, in.c, k, stride, pad, out.h, out.w};
  }
  float* forward(Backend& be, float* x, std::size_t n, bool, const LayerParams& p,
                 std::uint64_t) override {
    const std::size_t rows = n * out.h * out.w, kkc = k * k * in.c, f = out.c;
    cols_.reserve_discard(*p.memory, rows * kkc);
    be.im2col(x, geometry(n), cols_.data());
    y_.reserve_discard(*p.memory, rows * f);
    be.gemm(false, false, rows, f, kkc, 1.0f, cols_.data(), kkc, p.p(tensors[0]), f, 0.0f,
            y_.data(), f);
    be.add_bias(y_.data(), p.p(tensors[1]), rows, f);
    return y_.data();
  }
  float* backward(Backend& be, const float*, const float*, float* dy, float* dx, std::size_t n,
                  bool need_dx, const LayerParams& p, std::uint64_t) override {
    const std::size_t rows = n * out.h * out.w, kkc = k * k * in.c, f = out.c;
    be.gemm(true, false, kkc, f, rows, 1.0f, cols_.data(), kkc, dy, f, 0.0f, p.g(tensors[0]), f);
    be.column_sums(dy, rows, f, p.g(tensors[1]));
    if (need_dx) {
      dcols_.reserve_discard(*p.memory, rows * kkc);
      be.gemm(false, true, rows, kkc, f, 1.0f, dy, f, p.p(tensors[0]), f, 0.0f, dcols_.data(), kkc);
      be.col2im(dcols_.data(), geometry(n), dx);
    }
    return dx;
  }

 private:
  BackendArray<float> cols_, dcols_;
};

class MaxPool2d final : public Layer {
 public:
  std::size_t size = 2;
  std::string describe() const override { return "maxpool2d " + std::to_string(size); }
  float* forward(Backend& be, float* x, std::size_t n, bool, const LayerParams& p,
                 std::uint64_t) override {
    HPCML_REQUIRE(n * in.size() <= std::numeric_limits<std::uint32_t>::max(), Error,
                  "maxpool2d: a batch of " + std::to_string(n) + " x " + in.text() +
                      " exceeds 2^32 values; lower train.batch_size");
    y_.reserve_discard(*p.memory, n * out.size());
    argmax_.reserve_discard(*p.memory, n * out.size());
    be.maxpool(x, n, in.h, in.w, in.c, size, y_.data(), argmax_.data());
    return y_.data();
  }
  float* backward(Backend& be, const float*, const float*, float* dy, float* dx, std::size_t n,
                  bool need_dx, const LayerParams&, std::uint64_t) override {
    if (need_dx) be.maxpool_backward(dy, argmax_.data(), n * out.size(), dx, n * in.size());
    return dx;
  }

 private:
  BackendArray<std::uint32_t> argmax_;
};

class Relu final : public Layer {
 public:
  std::string describe() const override { return "relu"; }
  bool in_place() const override { return true; }
  float* forward(Backend& be, float* x, std::size_t n, bool, const LayerParams&,
                 std::uint64_t) override {
    be.relu(x, n * in.size());
    return x;
  }
  float* backward(Backend& be, const float*, const float* y, float* dy, float*, std::size_t n, bool,
                  const LayerParams&, std::uint64_t) override {
    be.relu_backward(dy, y, n * in.size());
    return dy;
  }
};

class Flatten final : public Layer {
 public:
  std::string describe() const override { return "flatten"; }
  bool in_place() const override { return true; }
  float* forward(Backend&, float* x, std::size_t, bool, const LayerParams&,
                 std::uint64_t) override {
    return x;  // channels-last samples are already flat
  }
  float* backward(Backend&, const float*, const float*, float* dy, float*, std::size_t, bool,
                  const LayerParams&, std::uint64_t) override {
    return dy;
  }
};

class Dropout final : public Layer {
 public:
  float rate = 0.5f;
  std::string describe() const override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "dropout %g", static_cast<double>(rate));
    return buf;
  }
  bool in_place() const override { return true; }
  float* forward(Backend& be, float* x, std::size_t n, bool training, const LayerParams&,
                 std::uint64_t seed) override {
    if (training && rate > 0) be.dropout(x, n * in.size(), rate, seed);
    return x;
  }
  float* backward(Backend& be, const float*, const float*, float* dy, float*, std::size_t n, bool,
                  const LayerParams&, std::uint64_t seed) override {
    if (rate > 0) be.dropout(dy, n * in.size(), rate, seed);  // the same mask and scale
    return dy;
  }
};

[[noreturn]] void bad_layer(std::size_t i, const LayerSpec& s, const std::string& why) {
  HPCML_THROW(ConfigError,
              "model.layers[" + std::to_string(i) + "] (" + s.describe() + "): " + why);
}

}  // namespace

Model::Model(Shape input, const std::vector<LayerSpec>& layers, std::size_t classes)
    : input_(input), classes_(classes) {
  HPCML_REQUIRE(input.size() >= 1 && classes >= 2, Error,
                "a model needs >= 1 input and >= 2 classes");
  build(layers);
}

Model::Model(std::size_t inputs, const std::vector<std::int64_t>& hidden, std::size_t classes)
    : input_{1, 1, inputs}, classes_(classes) {
  HPCML_REQUIRE(inputs >= 1 && classes >= 2, Error, "an MLP needs >= 1 input and >= 2 classes");
  for (auto h : hidden) HPCML_REQUIRE(h >= 1, Error, "hidden layer widths must be >= 1");
  build(mlp_layers(hidden));
}

Model::~Model() = default;

void Model::build(const std::vector<LayerSpec>& specs) {
  std::vector<LayerSpec> all = specs;
  LayerSpec head;
  head.type = "dense";
  head.units = static_cast<std::int64_t>(classes_);
  all.push_back(head);
  Shape shape = input_;
  std::size_t off = 0, dense = 0, conv = 0;
  auto add_tensor = [&](const std::string& name, std::size_t rows, std::size_t cols, bool bias) {
    tensors_.push_back({name, off, rows, cols, bias});
    off += rows * cols;
    return tensors_.size() - 1;
  };
  constexpr std::int64_t kMax = std::int64_t{1} << 20;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const LayerSpec& s = all[i];
    std::unique_ptr<Layer> layer;
    Shape out = shape;
    if (s.type == "dense") {
      if (s.units < 1 || s.units > kMax) bad_layer(i, s, "units must be in [1, 1048576]");
      auto d = std::make_unique<Dense>();
      out = {1, 1, static_cast<std::size_t>(s.units)};
      const std::string base = "fc" + std::to_string(++dense);
      d->tensors.push_back(add_tensor(base + ".weight", shape.size(), out.size(), false));
      d->tensors.push_back(add_tensor(base + ".bias", 1, out.size(), true));
      layer = std::move(d);
    } else if (s.type == "conv2d") {
      if (s.filters < 1 || s.filters > 65536) bad_layer(i, s, "filters must be in [1, 65536]");
      if (s.kernel < 1 || s.kernel > 64) bad_layer(i, s, "kernel must be in [1, 64]");
      if (s.stride < 1 || s.stride > 64) bad_layer(i, s, "stride must be in [1, 64]");
      if (s.padding < 0 || s.padding >= s.kernel) bad_layer(i, s, "padding must be in [0, kernel)");
      const auto k = static_cast<std::size_t>(s.kernel), st = static_cast<std::size_t>(s.stride),
                 p = static_cast<std::size_t>(s.padding);
      if (shape.h + 2 * p < k || shape.w + 2 * p < k)
        bad_layer(i, s,
                  "the " + std::to_string(k) + "x" + std::to_string(k) +
                      " window does not fit the " + shape.text() + " input" +
                      (shape.h == 1 ? " (a flat input: set model.input_shape)" : ""));
      auto c = std::make_unique<Conv2d>();
      c->k = k;
      c->stride = st;
      c->pad = p;
      out = {(shape.h + 2 * p - k) / st + 1, (shape.w + 2 * p - k) / st + 1,
             static_cast<std::size_t>(s.filters)};
      const std::string base = "conv" + std::to_string(++conv);
      c->tensors.push_back(add_tensor(base + ".weight", k * k * shape.c, out.c, false));
      c->tensors.push_back(add_tensor(base + ".bias", 1, out.c, true));
      layer = std::move(c);
    } else if (s.type == "maxpool2d") {
      if (s.size < 1 || s.size > 64) bad_layer(i, s, "size must be in [1, 64]");
      const auto z = static_cast<std::size_t>(s.size);
      if (shape.h % z != 0 || shape.w % z != 0)
        bad_layer(
            i, s,
            "the " + shape.text() + " input is not divisible by the window " + std::to_string(z));
      auto m = std::make_unique<MaxPool2d>();
      m->size = z;
      out = {shape.h / z, shape.w / z, shape.c};
      layer = std::move(m);
    } else if (s.type == "relu") {
      layer = std::make_unique<Relu>();
    } else if (s.type == "flatten") {
      out = {1, 1, shape.size()};
      layer = std::make_unique<Flatten>();
    } else if (s.type == "dropout") {
      if (!(s.rate >= 0 && s.rate < 1)) bad_layer(i, s, "rate must be in [0, 1)");
      auto d = std::make_unique<Dropout>();
      d->rate = static_cast<float>(s.rate);
      layer = std::move(d);
    } else {
      bad_layer(i, s,
                "unknown type '" + s.type +
                    "' (choices: dense, conv2d, maxpool2d, relu, flatten, dropout)");
    }
    layer->in = shape;
    layer->out = out;
    shape = out;
    layers_.push_back(std::move(layer));
  }
  own_params_ = BackendArray<float>(host_memory(), off);  // zeroed
  params_ = {own_params_.data(), off};
  own_grads_ = BackendArray<float>(host_memory(), off);
  grads_ = {own_grads_.data(), off};
}

void Model::init(std::uint64_t seed) {
  std::vector<float> host(params_.size(), 0.0f);
  SplitMix64 rng(seed * 0x2545f4914f6cdd1dULL + 1);
  for (const auto& t : tensors_) {
    if (t.is_bias) continue;  // zero
    float* p = host.data() + t.offset;
    const double std_dev = std::sqrt(2.0 / static_cast<double>(t.rows));
    for (std::size_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(rng.normal() * std_dev);
  }
  load_parameters(host);
}

void Model::bind(Backend& be) {
  if (be_ == &be) return;
  Backend& old = memory();
  if (be.memory_space() != MemorySpace::kHost || old.memory_space() != MemorySpace::kHost) {
    HPCML_REQUIRE(params_.data() == own_params_.data() && grads_.data() == own_grads_.data(), Error,
                  "a model whose parameters or gradients live in storage given by the comm layer "
                  "cannot move to the " +
                      be.name() + " backend's memory");
    const std::size_t n = params_.size();
    std::vector<float> host(n);
    Backend& target = be.memory_space() == MemorySpace::kDevice ? be : host_memory();
    auto move = [&](BackendArray<float>& own, std::span<float>& view) {
      old.copy_to_host(host.data(), view.data(), n * sizeof(float));
      BackendArray<float> fresh(target, n);
      target.copy_from_host(fresh.data(), host.data(), n * sizeof(float));
      own = std::move(fresh);
      view = {own.data(), n};
    };
    move(own_params_, params_);
    move(own_grads_, grads_);
    // Activation buffers follow on their next use (BackendArray::reserve_discard).
  }
  be_ = &be;
}

void Model::copy_parameters_to_host(std::span<float> out) const {
  HPCML_REQUIRE(out.size() == params_.size(), Error,
                "copy_parameters_to_host: " + std::to_string(out.size()) + " values for " +
                    std::to_string(params_.size()) + " parameters");
  memory().copy_to_host(out.data(), params_.data(), out.size_bytes());
}

void Model::load_parameters(std::span<const float> in) {
  HPCML_REQUIRE(in.size() == params_.size(), Error,
                "load_parameters: " + std::to_string(in.size()) + " values for " +
                    std::to_string(params_.size()) + " parameters");
  memory().copy_from_host(params_.data(), in.data(), in.size_bytes());
}

void Model::copy_gradients_to_host(std::span<float> out) const {
  HPCML_REQUIRE(out.size() == grads_.size(), Error,
                "copy_gradients_to_host: " + std::to_string(out.size()) + " values for " +
                    std::to_string(grads_.size()) + " gradients");
  memory().copy_to_host(out.data(), grads_.data(), out.size_bytes());
}

void Model::load_gradients(std::span<const float> in) {
  HPCML_REQUIRE(in.size() == grads_.size(), Error,
                "load_gradients: " + std::to_string(in.size()) + " values for " +
                    std::to_string(grads_.size()) + " gradients");
  memory().copy_from_host(grads_.data(), in.data(), in.size_bytes());
}

void Model::adopt_storage(BackendArray<float>& own, std::span<float>& view,
                          std::span<float> storage, const char* what) {
  HPCML_REQUIRE(storage.size() == params_.size(), Error,
                std::string(what) + " storage of " + std::to_string(storage.size()) +
                    " elements given to a model with " + std::to_string(params_.size()) +
                    " parameters");
  HPCML_REQUIRE(memory().memory_space() == MemorySpace::kHost, Error,
                std::string(what) + " storage in host memory given to a model in the " +
                    memory().name() + " backend's device memory");
  std::copy(view.begin(), view.end(), storage.begin());
  view = storage;
  own.reset();
}

void Model::use_gradient_storage(std::span<float> storage) {
  adopt_storage(own_grads_, grads_, storage, "gradient");
}

void Model::use_parameter_storage(std::span<float> storage) {
  adopt_storage(own_params_, params_, storage, "parameter");
}

std::vector<std::span<float>> Model::gradient_buffers() {
  std::vector<std::span<float>> out;
  for (const auto& t : tensors_) out.emplace_back(grads_.data() + t.offset, t.size());
  return out;
}

double Model::train_flops_per_sample() const {
  // The first layer with parameters needs no input gradient.
  double f = 0;
  bool first = true;
  for (const auto& l : layers_) {
    f += l->flops_per_sample(first);
    if (!l->tensors.empty()) first = false;
  }
  return f;
}

std::string Model::describe() const {
  std::string d = input_.text();
  for (const auto& l : layers_) d += " -> " + l->describe();
  return d;
}

std::vector<Shape> Model::shapes() const {
  std::vector<Shape> s;
  for (const auto& l : layers_) s.push_back(l->out);
  return s;
}

void Model::check_batch(const Batch& batch) const {
  HPCML_REQUIRE(batch.cols == input_.size(), DataError,
                "batch has " + std::to_string(batch.cols) + " features, the model expects " +
                    std::to_string(input_.size()));
}

// The activations: outs_[i] is layer i's output (layer i+1's input).
void Model::forward(Backend& be, const BatchView& in, std::size_t n, bool training) {
  const LayerParams p{&tensors_, params_.data(), grads_.data(), &memory()};
  float* x = const_cast<float*>(in.x);  // read only: see the in-place copy below
  outs_.clear();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (i == 0 && layers_[i]->in_place()) {  // never modify the batch
      input_copy_.reserve_discard(*p.memory, n * input_.size());
      be.copy(input_copy_.data(), in.x, n * input_.size() * sizeof(float));
      x = input_copy_.data();
    }
    x = layers_[i]->forward(be, x, n, training, p, dropout_seed_ + i * 0x9e3779b97f4a7c15ULL);
    outs_.push_back(x);
  }
}

BatchResult Model::train_batch(Backend& be, const Batch& batch, float grad_scale,
                               const std::function<void(std::size_t)>& ready) {
  bind(be);
  check_batch(batch);
  const BatchView in = be.upload_batch(batch);
  const std::size_t n = batch.rows;
  forward(be, in, n, true);
  const LayerParams p{&tensors_, params_.data(), grads_.data(), &memory()};
  BatchResult r;
  r.rows = n;
  delta_.reserve_discard(memory(), n * classes_);
  r.loss_sum =
      be.softmax_xent(outs_.back(), in.y, n, classes_, grad_scale, delta_.data(), &r.correct);
  // The first layer with parameters needs no input gradient, nor do layers before it.
  std::size_t first_param = layers_.size();
  for (std::size_t i = 0; i < layers_.size(); ++i)
    if (!layers_[i]->tensors.empty()) {
      first_param = i;
      break;
    }
  float* dy = delta_.data();
  for (std::size_t li = layers_.size(); li-- > 0;) {
    Layer& l = *layers_[li];
    const float* x = li == 0 ? in.x : outs_[li - 1];
    const bool need_dx = li > first_param;
    float* dx = nullptr;
    if (need_dx && !l.in_place()) {
      auto& buf = dy == delta_.data() ? delta_prev_ : delta_;
      buf.reserve_discard(memory(), n * l.in.size());
      dx = buf.data();
    }
    float* out = l.backward(be, x, outs_[li], dy, dx, n, need_dx, p,
                            dropout_seed_ + li * 0x9e3779b97f4a7c15ULL);
    if (ready && !l.tensors.empty()) {
      for (std::size_t t = l.tensors.size(); t-- > 0;) ready(l.tensors[t]);
    }
    if (!need_dx) break;
    dy = out;
  }
  return r;
}

BatchResult Model::evaluate(Backend& be, const Batch& batch) {
  bind(be);
  check_batch(batch);
  const BatchView in = be.upload_batch(batch);
  forward(be, in, batch.rows, false);
  BatchResult r;
  r.rows = batch.rows;
  r.loss_sum = be.softmax_xent(outs_.back(), in.y, batch.rows, classes_, 1.0f, nullptr, &r.correct);
  return r;
}

}  // namespace hpcml
