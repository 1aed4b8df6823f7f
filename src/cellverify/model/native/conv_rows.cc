// conv1 of cellverify's ConvRNNCell as one CPU kernel each way.
//
// conv1 is a 1x3 convolution along time with `features` input and k1 output
// channels (3 and 5 as asked): too few channels to fill a vector register in
// a general convolution, so TensorFlow's kernels run it at about 5x its
// memory-bound floor.  Here every row (one asset's window, [W, C]) is
// transposed to channels-first in a small buffer, up to five output channels
// are computed together 8 time positions at a time, and the result is written
// channels-first, [N, K, T] (T = W - 2), so that conv2's matmul reads it as
// rows of K*T.  The backward pass fuses ReLU's derivative (when asked), the
// filter's gradient and the bias's.  Why, and what it buys: docs/design.md,
// "Native conv1".
//
// Determinism: the forward pass computes each output on its own; the
// backward pass sums each row in float32 and the rows of each of 8 fixed
// shards in float64, then the shards in order, so the result does not depend
// on the number of threads.

#include "conv1_common.h"

namespace cellverify {
namespace {

// Adds this row's filter and bias gradients to acc ([kTaps*C*K] then [K]).
template <int C, bool kRelu>
void filter_grad_row(const float* buf, int padded, int T, int K, const float* g, const float* y,
                     double* acc) {
  float gpad[kLanes], ypad[kLanes];
  for (int k = 0; k < K; ++k) {
    const float* gk = g + k * T;
    const float* yk = kRelu ? y + k * T : nullptr;
    v8 sw[kTaps * C] = {};
    v8 sb = {};
    for (int t0 = 0; t0 < T; t0 += kLanes) {
      const int n = T - t0 < kLanes ? T - t0 : kLanes;
      v8 gv;
      if (n == kLanes) {
        gv = load(gk + t0);
      } else {
        for (int i = 0; i < kLanes; ++i) gpad[i] = i < n ? gk[t0 + i] : 0.f;
        gv = load(gpad);
      }
      if (kRelu) {
        v8 yv;
        if (n == kLanes) {
          yv = load(yk + t0);
        } else {
          for (int i = 0; i < kLanes; ++i) ypad[i] = i < n ? yk[t0 + i] : 0.f;
          yv = load(ypad);
        }
        gv = yv > 0 ? gv : 0;
      }
      sb += gv;
      for (int j = 0; j < kTaps; ++j)
        for (int c = 0; c < C; ++c) sw[j * C + c] += load(buf + c * padded + t0 + j) * gv;
    }
    for (int q = 0; q < kTaps * C; ++q) {
      float s = 0.f;
      for (int i = 0; i < kLanes; ++i) s += sw[q][i];
      acc[q * K + k] += s;
    }
    float s = 0.f;
    for (int i = 0; i < kLanes; ++i) s += sb[i];
    acc[kTaps * C * K + k] += s;
  }
}

template <bool kRelu>
struct Rows {
  template <int C>
  static void forward(const float* x, int64_t lo, int64_t hi, int W, int K, const float* w,
                      const float* b, float* y) {
    const int T = W - kTaps + 1, padded = padded_width(T);
    std::vector<float> buf(C * padded);
    for (int64_t n = lo; n < hi; ++n) {
      to_channels_first<C>(x + n * W * C, W, padded, buf.data());
      forward_row<C, kRelu>(buf.data(), padded, T, K, w, b, y + n * K * T, T);
    }
  }
  template <int C>
  static void filter_grad(const float* x, int64_t lo, int64_t hi, int W, int K, const float* g,
                          const float* y, double* acc) {
    const int T = W - kTaps + 1, padded = padded_width(T);
    std::vector<float> buf(C * padded);
    for (int64_t n = lo; n < hi; ++n) {
      to_channels_first<C>(x + n * W * C, W, padded, buf.data());
      filter_grad_row<C, kRelu>(buf.data(), padded, T, K, g + n * K * T,
                                kRelu ? y + n * K * T : nullptr, acc);
    }
  }
};

::tensorflow::Status check_rows(const Tensor& x) {
  if (x.dims() != 3 || x.dim_size(1) < kTaps || x.dim_size(2) < 1 ||
      x.dim_size(2) > kMaxChannels)
    return ::tensorflow::errors::InvalidArgument(
        "x must be [rows, window >= 3, 1 <= features <= 8]. Received: ", x.shape().DebugString());
  return ::tensorflow::OkStatus();
}

class ConvRowsOp : public OpKernel {
 public:
  explicit ConvRowsOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &w = ctx->input(1), &b = ctx->input(2);
    OP_REQUIRES_OK(ctx, check_rows(x));
    const int64_t N = x.dim_size(0);
    const int W = x.dim_size(1), C = x.dim_size(2);
    OP_REQUIRES(ctx, w.dims() == 3 && w.dim_size(0) == kTaps && w.dim_size(1) == C,
                ::tensorflow::errors::InvalidArgument(
                    "kernel must be [3, features, k1]. Received: ", w.shape().DebugString()));
    const int K = w.dim_size(2), T = W - kTaps + 1;
    OP_REQUIRES(ctx, b.dims() == 1 && b.dim_size(0) == K,
                ::tensorflow::errors::InvalidArgument("bias must be [k1]. Received: ",
                                                      b.shape().DebugString()));
    Tensor* y;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({N, K, T}), &y));
    const float *xp = x.flat<float>().data(), *wp = w.flat<float>().data(),
                *bp = b.flat<float>().data();
    float* yp = y->flat<float>().data();
    const bool relu = relu_;
    auto work = [&](int64_t lo, int64_t hi) {
#define CELLVERIFY_FORWARD(N_)                                                  \
  (relu ? Rows<true>::forward<N_>(xp, lo, hi, W, K, wp, bp, yp)                 \
        : Rows<false>::forward<N_>(xp, lo, hi, W, K, wp, bp, yp))
      CELLVERIFY_DISPATCH(C, CELLVERIFY_FORWARD)
#undef CELLVERIFY_FORWARD
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(pool->num_threads, pool->workers, N, int64_t(T) * C * K * kTaps * 2, work);
  }

 private:
  bool relu_;
};

class ConvRowsFilterGradOp : public OpKernel {
 public:
  explicit ConvRowsFilterGradOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &g = ctx->input(1), &y = ctx->input(2);
    OP_REQUIRES_OK(ctx, check_rows(x));
    const int64_t N = x.dim_size(0);
    const int W = x.dim_size(1), C = x.dim_size(2), T = W - kTaps + 1;
    OP_REQUIRES(ctx, g.dims() == 3 && g.dim_size(0) == N && g.dim_size(2) == T,
                ::tensorflow::errors::InvalidArgument(
                    "gradient must be [rows, k1, window - 2]. Received: ", g.shape().DebugString()));
    const int K = g.dim_size(1);
    OP_REQUIRES(ctx, !relu_ || y.shape() == g.shape(),
                ::tensorflow::errors::InvalidArgument(
                    "output must have the gradient's shape. Received: ", y.shape().DebugString()));
    Tensor *dw, *db;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({kTaps, C, K}), &dw));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({K}), &db));
    const float *xp = x.flat<float>().data(), *gp = g.flat<float>().data(),
                *yp = y.flat<float>().data();
    const int size = kTaps * C * K + K;
    std::vector<double> partial(kShards * size, 0.0);
    const bool relu = relu_;
    auto work = [&](int64_t s_lo, int64_t s_hi) {
      for (int64_t s = s_lo; s < s_hi; ++s) {
        const int64_t lo = N * s / kShards, hi = N * (s + 1) / kShards;
        double* acc = partial.data() + s * size;
#define CELLVERIFY_GRAD(N_)                                                      \
  (relu ? Rows<true>::filter_grad<N_>(xp, lo, hi, W, K, gp, yp, acc)             \
        : Rows<false>::filter_grad<N_>(xp, lo, hi, W, K, gp, yp, acc))
        CELLVERIFY_DISPATCH(C, CELLVERIFY_GRAD)
#undef CELLVERIFY_GRAD
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(pool->num_threads, pool->workers, kShards,
                        (N / kShards + 1) * T * C * K * kTaps * 2, work);
    write_shard_sums(partial, kTaps * C * K, K, dw, db);
  }

 private:
  bool relu_;
};

}  // namespace
}  // namespace cellverify

REGISTER_OP("CellverifyConvRows")
    .Input("x: float")       // [rows, W, C]
    .Input("kernel: float")  // [3, C, K]
    .Input("bias: float")    // [K]
    .Attr("relu: bool")
    .Output("y: float")  // [rows, K, W - 2]
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::DimensionHandle t;
      TF_RETURN_IF_ERROR(c->Subtract(c->Dim(c->input(0), 1), 2, &t));
      c->set_output(0, c->MakeShape({c->Dim(c->input(0), 0), c->Dim(c->input(1), 2), t}));
      return ::tensorflow::OkStatus();
    });

REGISTER_OP("CellverifyConvRowsFilterGrad")
    .Input("x: float")  // [rows, W, C]
    .Input("g: float")  // [rows, K, W - 2], the gradient at the output
    .Input("y: float")  // the output, for ReLU's derivative (unused without relu)
    .Attr("relu: bool")
    .Output("dkernel: float")  // [3, C, K]
    .Output("dbias: float")    // [K]
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      auto k = c->Dim(c->input(1), 1);
      c->set_output(0, c->MakeShape({3, c->Dim(c->input(0), 2), k}));
      c->set_output(1, c->MakeShape({k}));
      return ::tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("CellverifyConvRows").Device(::tensorflow::DEVICE_CPU),
                        cellverify::ConvRowsOp);
REGISTER_KERNEL_BUILDER(Name("CellverifyConvRowsFilterGrad").Device(::tensorflow::DEVICE_CPU),
                        cellverify::ConvRowsFilterGradOp);
