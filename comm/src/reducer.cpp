#include "hpcml/comm/reducer.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "detail.hpp"
#include "hpcml/comm/nccl.hpp"
#include "hpcml/core/config_doc.hpp"
#include "hpcml/core/error.hpp"

namespace hpcml::comm {

ReducerOptions read_reducer_options(ConfigDoc& doc) {
  ReducerOptions o;
  o.algo = parse_algo(doc.get_choice("parallel.algo", "auto", algo_names()));
  try {
    require_built(transport_of(o.algo));
  } catch (const NotAvailableError& e) {
    doc.fail("parallel.algo", e.what());
  }
  o.fusion_mb = doc.get_double("parallel.fusion_mb", o.fusion_mb, 0, 65536);
  o.compression = parse_codec(
      doc.get_choice("parallel.compression", "none", {"none", "fp16", "bf16", "int8", "topk"}));
  o.topk_ratio = doc.get_double("parallel.topk_ratio", o.topk_ratio, 1e-6, 1);
  o.stall_timeout_s = doc.get_double("parallel.stall_timeout_s", o.stall_timeout_s, 0);
  o.thresholds = doc.get_string("parallel.allreduce_thresholds", "");
  o.transport =
      parse_transport_choice(doc.get_choice("parallel.transport", "auto", {"auto", "mpi", "nccl"}));
  if (o.transport == TransportChoice::kNccl && !is_built(Transport::kNccl)) {
    doc.fail("parallel.transport",
             "'nccl' is not compiled in (this hpcml was built without NCCL: configure with "
             "-DHPCML_ENABLE_NCCL=ON and NCCL_ROOT; docs/communication.md)");
  }
  if (o.algo == Algo::kNccl) {
    // The NCCL transport's own algorithm: it selects the transport.
    if (o.transport == TransportChoice::kMpi)
      doc.fail("parallel.algo",
               "'nccl' reduces GPU buffers through NCCL: it needs parallel.transport = \"nccl\" "
               "or \"auto\", not \"mpi\"");
    o.transport = TransportChoice::kNccl;
  }
  if (o.transport == TransportChoice::kNccl) {
    if (o.algo != Algo::kAuto && o.algo != Algo::kNccl)
      doc.fail("parallel.algo",
               "'" + to_string(o.algo) +
                   "' is an MPI algorithm; with parallel.transport = \"nccl\" use \"auto\" or "
                   "\"nccl\" (NCCL inside the node with MPI between node leaders: "
                   "nccl_multinode_algo in parallel.allreduce_thresholds)");
    if (const std::string why = nccl_codec_refusal(o.compression); !why.empty())
      doc.fail("parallel.compression", why);
  }
  o.sharded_update = doc.get_bool("parallel.sharded_update", o.sharded_update);
  try {
    (void)Thresholds::parse(o.thresholds, Thresholds{}, "parallel.allreduce_thresholds");
  } catch (const ConfigError& e) {
    doc.fail("parallel.allreduce_thresholds", e.what());
  }
  return o;
}

std::string describe(const ReducerOptions& o, const Communicator& comm) {
  std::ostringstream s;
  s << "comm: transport=mpi algo=" << to_string(o.algo) << " fusion_mb=" << o.fusion_mb
    << " compression=" << to_string(o.compression);
  if (o.compression == Codec::kTopk) s << " topk_ratio=" << o.topk_ratio;
  s << " sharded_update=" << (o.sharded_update ? "true" : "false");
  s << " stall_timeout_s=" << comm.options().stall_timeout_s
    << " thresholds=" << comm.options().thresholds.to_string()
    << " progress_thread=" << (comm.has_progress_thread() ? "yes" : "no (MPI thread level)");
  return s.str();
}

struct GradientReducer::Bucket {
  std::vector<std::size_t> members;  // buffer indices, in packing order
  std::vector<std::size_t> offsets;  // element offset of each member in `data`
  std::size_t elems = 0;
  Algo algo = Algo::kMpi;
  std::vector<float> data;
  std::vector<float> residual;  // top-k error feedback, persists across steps
  std::vector<std::uint8_t> encoded, gathered;
  detail::Clock::time_point start, end;  // written by the progress thread
};

Thresholds effective_thresholds(const ReducerOptions& options) {
  Thresholds t;
  if (!options.thresholds.empty())
    t = Thresholds::parse(options.thresholds, t, "parallel.allreduce_thresholds");
  if (const char* env = std::getenv("HPCML_ALLREDUCE_THRESHOLDS"))
    t = Thresholds::parse(env, t, "HPCML_ALLREDUCE_THRESHOLDS");
  return t;
}

GradientReducer::GradientReducer(Communicator& comm, const ReducerOptions& options)
    : CommunicatorCollectives(comm), options_(options) {
  // Precedence: defaults < config < environment (expert override, read once).
  CommOptions co = comm.options();
  co.thresholds = effective_thresholds(options);
  co.stall_timeout_s = options.stall_timeout_s;
  if (std::getenv("HPCML_STALL_TIMEOUT_S"))
    co.stall_timeout_s = CommOptions::from_environment().stall_timeout_s;
  comm.set_options(co);
  require_built(transport_of(options.algo));
  HPCML_REQUIRE(transport_of(options.algo) != Transport::kNccl, NotAvailableError,
                "all-reduce algorithm 'nccl' reduces GPU buffers through parallel.transport = "
                "\"nccl\" (make_nccl_collectives), not the MPI gradient reducer");
}

GradientReducer::~GradientReducer() {
  // Requests complete in their destructors; nothing is written after this.
  inflight_.clear();
}

std::span<float> GradientReducer::gradient_storage(std::size_t count) {
  // Collective decision: every rank sees the same size, codec and algorithm.
  if (comm_.size() == 1 || options_.compression != Codec::kNone) return {};
  storage_ = comm_.allocate_shared(count * sizeof(float));
  return storage_.as<float>().subspan(0, count);
}

std::span<float> GradientReducer::parameter_storage(std::size_t count) {
  // Every input of the decision is the same on all ranks.
  if (!options_.sharded_update || storage_.empty() ||
      count * sizeof(float) < detail::ShmNode::kZeroCopyMinBytes ||
      storage_.local_size() != comm_.size() ||
      (options_.algo != Algo::kAuto && options_.algo != Algo::kHierarchical) ||
      count > storage_.bytes() / sizeof(float))
    return {};
  params_ = comm_.allocate_shared(count * sizeof(float));
  return params_.as<float>().subspan(0, count);
}

bool GradientReducer::finish_gradients_sharded(const RangeUpdate& update) {
  if (!sharded_step_) return false;
  HPCML_REQUIRE(active_, Error, "finish_gradients_sharded without begin_gradients");
  active_ = false;
  const auto t0 = detail::Clock::now();
  const std::size_t count = params_.bytes() / sizeof(float);
  const bool done = comm_.reduce_update_gather(storage_.as<float>().data(),
                                               params_.as<float>().data(), count, update);
  HPCML_REQUIRE(done, Error,
                "sharded update: the node-shared gradient and parameter buffers were not accepted "
                "by the hierarchical all-reduce");
  last_wait_s_ = detail::seconds_since(t0);
  last_stats_ = {};
  last_stats_.raw_bytes = count * sizeof(float);
  const auto n = static_cast<std::size_t>(comm_.size());
  // Gradients of the other parts read during the reduction plus the other
  // parts' parameters copied afterwards: what a ring would send.
  last_stats_.wire_bytes = 2 * (n - 1) * last_stats_.raw_bytes / n;
  return true;
}

void GradientReducer::plan(const std::vector<std::span<float>>& buffers) {
  buckets_.clear();
  bucket_of_.assign(buffers.size(), 0);
  const double limit = options_.fusion_mb * 1024.0 * 1024.0;
  std::unique_ptr<Bucket> cur;
  auto close = [&] {
    if (!cur) return;
    cur->data.resize(cur->elems);
    if (options_.compression == Codec::kTopk) cur->residual.assign(cur->elems, 0.0f);
    const std::size_t bytes = cur->elems * sizeof(float);
    cur->algo = options_.algo == Algo::kAuto ? comm_.choose(bytes) : options_.algo;
    buckets_.push_back(std::move(cur));
  };
  // Backprop finishes the last buffer first: pack from the back.
  for (std::size_t k = buffers.size(); k-- > 0;) {
    const std::size_t n = buffers[k].size();
    if (cur &&
        (options_.fusion_mb <= 0 || static_cast<double>((cur->elems + n) * sizeof(float)) > limit))
      close();
    if (!cur) cur = std::make_unique<Bucket>();
    cur->members.push_back(k);
    cur->offsets.push_back(cur->elems);
    cur->elems += n;
    bucket_of_[k] = buckets_.size();
  }
  close();
}

void GradientReducer::begin_gradients(const std::vector<std::span<float>>& buffers) {
  HPCML_REQUIRE(!active_, Error,
                "begin_gradients called twice without finish_gradients in between");
  bool same = buffers.size() == buffers_.size();
  for (std::size_t i = 0; same && i < buffers.size(); ++i)
    same = buffers[i].data() == buffers_[i].data() && buffers[i].size() == buffers_[i].size();
  if (!same) {
    buffers_ = buffers;
    plan(buffers_);
  }
  // Sharded update: only when the buffers are exactly the gradient storage's
  // first elements, as the trainer's flat gradient buffer is.
  sharded_step_ = false;
  if (!params_.empty()) {
    const float* base = storage_.as<float>().data();
    const std::size_t count = params_.bytes() / sizeof(float);
    std::size_t covered = 0;
    bool inside = true;
    for (const auto& b : buffers_) {
      inside = inside && b.data() >= base && b.data() + b.size() <= base + count;
      covered += b.size();
    }
    sharded_step_ = inside && covered == count;
  }
  ready_.assign(buffers_.size(), false);
  missing_.assign(buckets_.size(), 0);
  for (const auto& b : buckets_) missing_[&b - buckets_.data()] = b->members.size();
  next_launch_ = 0;
  inflight_.clear();
  active_ = true;
}

void GradientReducer::gradient_ready(std::size_t index) {
  HPCML_REQUIRE(active_ && index < buffers_.size(), Error,
                "gradient_ready(" + std::to_string(index) +
                    ") outside begin/finish_gradients or "
                    "beyond the " +
                    std::to_string(buffers_.size()) + " buffers given");
  if (ready_[index]) return;
  ready_[index] = true;
  --missing_[bucket_of_[index]];
  if (sharded_step_) return;  // finish_gradients_sharded() does it all
  while (next_launch_ < buckets_.size() && missing_[next_launch_] == 0) launch(next_launch_++);
}

void GradientReducer::launch(std::size_t b) {
  Bucket& bucket = *buckets_[b];
  if (comm_.size() == 1 && options_.compression == Codec::kNone) {
    // The mean over one rank is the gradient itself: no copies, no hand-off to the
    // progress thread. (With a codec the round trip still runs, so a 1-rank run
    // trains with the same lossy gradients as a multi-rank one.)
    bucket.start = bucket.end = detail::Clock::now();
    inflight_.emplace_back();  // nothing to wait for; inflight_[b] stays bucket b's
    return;
  }
  std::vector<std::span<float>> spans;
  for (std::size_t m = 0; m < bucket.members.size(); ++m)
    spans.push_back(buffers_[bucket.members[m]]);
  const Codec codec = options_.compression;
  const double ratio = options_.topk_ratio;
  // Gradients that already tile one contiguous range (the trainer's flat
  // gradient buffer) are reduced where they lie: no pack and unpack copies.
  // An all-reduce is element-wise, so the order of members inside the range
  // does not matter.
  float* in_place = nullptr;
  if (codec == Codec::kNone && !spans.empty()) {
    std::vector<std::span<float>> sorted = spans;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& x, const auto& y) { return x.data() < y.data(); });
    bool tiles = true;
    for (std::size_t m = 1; m < sorted.size() && tiles; ++m)
      tiles = sorted[m].data() == sorted[m - 1].data() + sorted[m - 1].size();
    if (tiles) in_place = sorted.front().data();
  }
  if (!in_place) {
    for (std::size_t m = 0; m < spans.size(); ++m)
      std::copy(spans[m].begin(), spans[m].end(),
                bucket.data.begin() + static_cast<std::ptrdiff_t>(bucket.offsets[m]));
  }
  inflight_.push_back(comm_.submit([&bucket, spans = std::move(spans), codec, ratio,
                                    in_place](detail::Engine& e) {
    bucket.start = detail::Clock::now();
    if (in_place) {
      e.begin("allreduce of a gradient bucket");
      detail::run_allreduce(in_place, in_place, bucket.elems, ReduceOp::kAverage, bucket.algo, e);
      bucket.end = detail::Clock::now();
      return;
    }
    float* data = bucket.data.data();
    const std::size_t n = bucket.elems;
    if (codec == Codec::kNone) {
      e.begin("allreduce of a gradient bucket");
      detail::run_allreduce(data, data, n, ReduceOp::kAverage, bucket.algo, e);
    } else {
      const std::size_t bytes = encoded_bytes(codec, n, ratio);
      bucket.encoded.resize(bytes);
      bucket.gathered.resize(bytes * static_cast<std::size_t>(e.size()));
      encode(codec, data, n, ratio, bucket.residual.data(), bucket.encoded.data());
      e.begin("allgather of a compressed gradient bucket");
      MPI_Request req = MPI_REQUEST_NULL;
      const int c = detail::checked_int(bytes);
      HPCML_CHECK_MPI(MPI_Iallgather(bucket.encoded.data(), c, MPI_BYTE, bucket.gathered.data(), c,
                                     MPI_BYTE, e.comm(), &req));
      e.wait_all(1, &req);
      std::fill(bucket.data.begin(), bucket.data.end(), 0.0f);
      // Every rank decodes every contribution in rank order: identical sums everywhere.
      for (int p = 0; p < e.size(); ++p)
        decode_add(codec, bucket.gathered.data() + bytes * static_cast<std::size_t>(p), n, ratio,
                   data);
      detail::scale(data, n, e.size());
    }
    for (std::size_t m = 0; m < spans.size(); ++m)
      std::copy_n(data + bucket.offsets[m], spans[m].size(), spans[m].begin());
    bucket.end = detail::Clock::now();
  }));
}

void GradientReducer::finish_gradients() {
  finish_gradients_each([](std::span<const std::size_t>) {});
}

void GradientReducer::finish_gradients_each(const BuffersReady& ready) {
  HPCML_REQUIRE(active_, Error, "finish_gradients without begin_gradients");
  const auto t_finish = detail::Clock::now();
  // A step prepared for the sharded update but finished plainly: launch now.
  sharded_step_ = false;
  // Buffers the trainer never announced are final now.
  for (std::size_t i = 0; i < buffers_.size(); ++i)
    if (!ready_[i]) gradient_ready(i);
  while (next_launch_ < buckets_.size() && missing_[next_launch_] == 0) launch(next_launch_++);
  active_ = false;
  // Every bucket is launched, in bucket order, with inflight_[b] its request:
  // wait for them in that order (the progress thread completes them in it),
  // handing each bucket's buffers on as soon as their means are final. The
  // time spent in `ready` is the caller's, not waiting.
  double waited = detail::seconds_since(t_finish);
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const auto t0 = detail::Clock::now();
    try {
      inflight_[b].wait();
    } catch (...) {  // the others complete too before the first error is rethrown
      try {
        wait_all(inflight_);
      } catch (...) {
      }
      throw;
    }
    waited += detail::seconds_since(t0);
    ready(buckets_[b]->members);
  }
  last_wait_s_ = waited;

  last_stats_ = {};
  const auto n = static_cast<std::size_t>(comm_.size());
  for (const auto& b : buckets_) {
    const std::size_t raw = b->elems * sizeof(float);
    last_stats_.raw_bytes += raw;
    if (n > 1) {
      // Bytes this rank sends in a ring implementation of the collective used.
      last_stats_.wire_bytes +=
          options_.compression == Codec::kNone
              ? 2 * (n - 1) * raw / n
              : (n - 1) * encoded_bytes(options_.compression, b->elems, options_.topk_ratio);
    }
    const auto end = std::min(b->end, t_finish);
    if (end > b->start)
      last_stats_.overlapped_s += std::chrono::duration<double>(end - b->start).count();
  }
}

}  // namespace hpcml::comm
