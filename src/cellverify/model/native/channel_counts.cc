// What the activation probe counts in conv1's channels-first output
// [rows, channels, positions], in one pass: per channel, the entries that
// are exactly 0 (dead channels and zero fractions) and those at least
// `level` in magnitude (saturation).  As TensorFlow ops the same counts
// took about nine passes over the activation (12 MB a diagnose batch): a
// comparison, a cast and a sum for each, and an absolute value.
// docs/design.md, "Native conv1".
//
// The counts are integers, so they do not depend on the number of threads;
// comparisons with NaN are false, as in TensorFlow's ops.

#include <cmath>

#include "conv1_common.h"

namespace cellverify {
namespace {

class ChannelCountsOp : public OpKernel {
 public:
  explicit ChannelCountsOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("level", &level_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& a = ctx->input(0);
    OP_REQUIRES(ctx, a.dims() == 3,
                ::tensorflow::errors::InvalidArgument(
                    "activations must be [rows, channels, positions]. Received: ",
                    a.shape().DebugString()));
    const int64_t N = a.dim_size(0), C = a.dim_size(1), P = a.dim_size(2);
    Tensor* counts;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({2, C}), &counts));
    const float* ap = a.flat<float>().data();
    const float level = level_;
    // [kShards][zeros of each channel, then saturated ones]
    std::vector<int64_t> partial(kShards * 2 * C, 0);
    auto work = [&](int64_t s_lo, int64_t s_hi) {
      for (int64_t s = s_lo; s < s_hi; ++s) {
        int64_t* zeros = partial.data() + s * 2 * C;
        int64_t* saturated = zeros + C;
        for (int64_t n = N * s / kShards; n < N * (s + 1) / kShards; ++n) {
          for (int64_t c = 0; c < C; ++c) {
            const float* row = ap + (n * C + c) * P;
            int64_t z = 0, high = 0;
            for (int64_t p = 0; p < P; ++p) {
              z += row[p] == 0.f;
              high += std::fabs(row[p]) >= level;
            }
            zeros[c] += z;
            saturated[c] += high;
          }
        }
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(pool->num_threads, pool->workers, kShards, (N / kShards + 1) * C * P * 4,
                        work);
    auto out = counts->matrix<int64_t>();
    for (int64_t i = 0; i < 2 * C; ++i) {
      int64_t total = 0;
      for (int64_t s = 0; s < kShards; ++s) total += partial[s * 2 * C + i];
      out(i / C, i % C) = total;
    }
  }

 private:
  float level_;
};

}  // namespace
}  // namespace cellverify

REGISTER_OP("CellverifyChannelCounts")
    .Input("activations: float")  // [rows, channels, positions]
    .Attr("level: float")         // saturated: |a| >= level
    .Output("counts: int64")      // [2, channels]: exact zeros, then saturated
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->MakeShape({2, c->Dim(c->input(0), 1)}));
      return ::tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("CellverifyChannelCounts").Device(::tensorflow::DEVICE_CPU),
                        cellverify::ChannelCountsOp);
