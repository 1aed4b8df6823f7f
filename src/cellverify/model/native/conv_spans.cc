// conv1 over a sequence's raw prices, once, instead of over each of its
// normalised windows.
//
// A sequence of S steps sees S windows of W periods, each divided by its own
// latest close.  conv1 is linear before its bias, so over one asset's span of
// L = W + S - 1 raw periods
//
//   conv1(window_s / close_s)[t] = Z[s + t] / close_s,   Z = conv1 without bias (span)
//
// and each step's output is act(Z[s + t] / close_s + bias).  Z costs a 1/S
// share of conv1's multiplications, and no batch has to hold S normalised
// copies of the prices (docs/design.md, "Native conv1": 7.2 MB a batch as
// asked, made in NumPy, against 1.9 MB of spans).  The output is what
// conv_rows.cc writes for the windows: rows in (batch, step, asset) order,
// channels first, [B*S*A, K, W-2].
//
// The backward pass needs the filter's and the bias's gradients only (prices
// are data): with g' the output's gradient through ReLU's derivative,
//   dZ[p] = sum over s of g'[s, p - s] / close_s,
//   dkernel[j, c] = sum over p of dZ[p] * span[p + j, c],   dbias = sum of g'.
// Determinism as in conv_rows.cc: float32 within a span, float64 over the
// spans of each of 8 fixed shards, then the shards in order.

#include "conv1_common.h"

namespace cellverify {
namespace {

// The shapes of one call: B sequences of S steps over A assets, spans of L
// periods of C features, K output channels, T = L - S - 1 outputs per step.
struct Spans {
  int64_t B;
  int S, A, L, C, K, T, P, padded, stride;

  Spans(const Tensor& prices, const Tensor& closes, int K_)
      : B(prices.dim_size(0)),
        S(closes.dim_size(1)),
        A(prices.dim_size(1)),
        L(prices.dim_size(2)),
        C(prices.dim_size(3)),
        K(K_),
        T(L - S - 1),
        P(L - kTaps + 1),
        padded(padded_width(L - kTaps + 1)),
        // Z's rows: room for a full vector read at every step's offset.
        stride((L - kTaps + 1 + kLanes - 1) / kLanes * kLanes + kLanes) {}

  int64_t spans() const { return B * A; }
  const float* span(const float* prices, int64_t n) const { return prices + n * L * C; }
  // The output row of step s of span n (= b * A + a).
  int64_t row(int64_t n, int s) const { return (n / A * S + s) * A + n % A; }
};

::tensorflow::Status check_spans(const Tensor& prices, const Tensor& closes) {
  if (prices.dims() != 4 || prices.dim_size(3) < 1 || prices.dim_size(3) > kMaxChannels)
    return ::tensorflow::errors::InvalidArgument(
        "prices must be [batch, assets, periods, 1 <= features <= 8]. Received: ",
        prices.shape().DebugString());
  if (closes.dims() != 3 || closes.dim_size(0) != prices.dim_size(0) ||
      closes.dim_size(2) != prices.dim_size(1) || closes.dim_size(1) < 1 ||
      prices.dim_size(2) < closes.dim_size(1) + kTaps - 1)
    return ::tensorflow::errors::InvalidArgument(
        "closes must be [batch, steps, assets] with periods >= steps + 2. Received: prices ",
        prices.shape().DebugString(), ", closes ", closes.shape().DebugString());
  return ::tensorflow::OkStatus();
}

template <int C, bool kRelu>
void forward_spans(const Spans& d, const float* prices, const float* closes, const float* w,
                   const float* b, int64_t lo, int64_t hi, float* y) {
  std::vector<float> buf(C * d.padded), z(d.K * d.stride, 0.f), none(d.K, 0.f);
  float tail[kLanes];
  for (int64_t n = lo; n < hi; ++n) {
    to_channels_first<C>(d.span(prices, n), d.L, d.padded, buf.data());
    forward_row<C, false>(buf.data(), d.padded, d.P, d.K, w, none.data(), z.data(), d.stride);
    for (int s = 0; s < d.S; ++s) {
      const int64_t r = d.row(n, s);
      const float inv = 1.f / closes[r];
      for (int k = 0; k < d.K; ++k) {
        const float* zk = z.data() + k * d.stride + s;
        float* out = y + (r * d.K + k) * d.T;
        for (int t0 = 0; t0 < d.T; t0 += kLanes) {
          v8 v = load(zk + t0) * inv + b[k];
          if (kRelu) v = v > 0 ? v : 0;
          const int m = d.T - t0 < kLanes ? d.T - t0 : kLanes;
          if (m == kLanes) {
            std::memcpy(out + t0, &v, sizeof v);
          } else {
            std::memcpy(tail, &v, sizeof v);
            std::memcpy(out + t0, tail, m * sizeof(float));
          }
        }
      }
    }
  }
}

// One vector of a step's output gradient at t0, through ReLU's derivative,
// zero past T.
template <bool kRelu>
inline v8 masked_gradient(const float* g, const float* y, int t0, int T) {
  if (t0 + kLanes <= T) {
    const v8 gv = load(g + t0);
    return kRelu ? (load(y + t0) > 0 ? gv : 0) : gv;
  }
  float gpad[kLanes];
  for (int i = 0; i < kLanes; ++i) {
    const int t = t0 + i;
    gpad[i] = t < T && (!kRelu || y[t] > 0) ? g[t] : 0.f;
  }
  return load(gpad);
}

template <int C, bool kRelu>
void filter_grad_span(const Spans& d, const float* buf, const float* closes, const float* g,
                      const float* y, int64_t n, float* dz, double* acc) {
  const int K = d.K;
  std::fill(dz, dz + K * d.stride, 0.f);
  for (int k = 0; k < K; ++k) {
    v8 sb = {};
    for (int s = 0; s < d.S; ++s) {
      const int64_t r = d.row(n, s);
      const float inv = 1.f / closes[r];
      const float* gk = g + (r * K + k) * d.T;
      const float* yk = kRelu ? y + (r * K + k) * d.T : nullptr;
      float* dzk = dz + k * d.stride + s;
      for (int t0 = 0; t0 < d.T; t0 += kLanes) {
        const v8 gv = masked_gradient<kRelu>(gk, yk, t0, d.T);
        sb += gv;
        const v8 sum = load(dzk + t0) + gv * inv;
        std::memcpy(dzk + t0, &sum, sizeof sum);
      }
    }
    v8 sw[kTaps * C] = {};
    for (int p0 = 0; p0 < d.P; p0 += kLanes) {
      const v8 dv = load(dz + k * d.stride + p0);
      for (int j = 0; j < kTaps; ++j)
        for (int c = 0; c < C; ++c) sw[j * C + c] += load(buf + c * d.padded + p0 + j) * dv;
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

template <int C, bool kRelu>
void filter_grad_spans(const Spans& d, const float* prices, const float* closes, const float* g,
                       const float* y, int64_t lo, int64_t hi, double* acc) {
  std::vector<float> buf(C * d.padded), dz(d.K * d.stride);
  for (int64_t n = lo; n < hi; ++n) {
    to_channels_first<C>(d.span(prices, n), d.L, d.padded, buf.data());
    filter_grad_span<C, kRelu>(d, buf.data(), closes, g, y, n, dz.data(), acc);
  }
}

class ConvSpansOp : public OpKernel {
 public:
  explicit ConvSpansOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &cl = ctx->input(1), &w = ctx->input(2), &b = ctx->input(3);
    OP_REQUIRES_OK(ctx, check_spans(x, cl));
    OP_REQUIRES(ctx, w.dims() == 3 && w.dim_size(0) == kTaps && w.dim_size(1) == x.dim_size(3),
                ::tensorflow::errors::InvalidArgument(
                    "kernel must be [3, features, k1]. Received: ", w.shape().DebugString()));
    const Spans d(x, cl, w.dim_size(2));
    OP_REQUIRES(ctx, b.dims() == 1 && b.dim_size(0) == d.K,
                ::tensorflow::errors::InvalidArgument("bias must be [k1]. Received: ",
                                                      b.shape().DebugString()));
    Tensor* y;
    OP_REQUIRES_OK(ctx,
                   ctx->allocate_output(0, TensorShape({d.B * d.S * d.A, d.K, d.T}), &y));
    const float *xp = x.flat<float>().data(), *cp = cl.flat<float>().data(),
                *wp = w.flat<float>().data(), *bp = b.flat<float>().data();
    float* yp = y->flat<float>().data();
    const bool relu = relu_;
    auto work = [&](int64_t lo, int64_t hi) {
#define CELLVERIFY_FORWARD(N_)                                              \
  (relu ? forward_spans<N_, true>(d, xp, cp, wp, bp, lo, hi, yp)            \
        : forward_spans<N_, false>(d, xp, cp, wp, bp, lo, hi, yp))
      CELLVERIFY_DISPATCH(d.C, CELLVERIFY_FORWARD)
#undef CELLVERIFY_FORWARD
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t cost = int64_t(d.P) * d.C * d.K * kTaps * 2 + int64_t(d.S) * d.T * d.K * 3;
    ::tensorflow::Shard(pool->num_threads, pool->workers, d.spans(), cost, work);
  }

 private:
  bool relu_;
};

class ConvSpansFilterGradOp : public OpKernel {
 public:
  explicit ConvSpansFilterGradOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &cl = ctx->input(1), &g = ctx->input(2), &y = ctx->input(3);
    OP_REQUIRES_OK(ctx, check_spans(x, cl));
    const int64_t rows = x.dim_size(0) * cl.dim_size(1) * x.dim_size(1);
    const int T = x.dim_size(2) - cl.dim_size(1) - 1;
    OP_REQUIRES(ctx, g.dims() == 3 && g.dim_size(0) == rows && g.dim_size(2) == T,
                ::tensorflow::errors::InvalidArgument(
                    "gradient must be [batch*steps*assets, k1, periods - steps - 1]. Received: ",
                    g.shape().DebugString()));
    const Spans d(x, cl, g.dim_size(1));
    OP_REQUIRES(ctx, !relu_ || y.shape() == g.shape(),
                ::tensorflow::errors::InvalidArgument(
                    "output must have the gradient's shape. Received: ", y.shape().DebugString()));
    Tensor *dw, *db;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({kTaps, d.C, d.K}), &dw));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({d.K}), &db));
    const float *xp = x.flat<float>().data(), *cp = cl.flat<float>().data(),
                *gp = g.flat<float>().data(), *yp = y.flat<float>().data();
    const int size = kTaps * d.C * d.K + d.K;
    std::vector<double> partial(kShards * size, 0.0);
    const bool relu = relu_;
    const int64_t N = d.spans();
    auto work = [&](int64_t s_lo, int64_t s_hi) {
      for (int64_t s = s_lo; s < s_hi; ++s) {
        const int64_t lo = N * s / kShards, hi = N * (s + 1) / kShards;
        double* acc = partial.data() + s * size;
#define CELLVERIFY_GRAD(N_)                                                 \
  (relu ? filter_grad_spans<N_, true>(d, xp, cp, gp, yp, lo, hi, acc)       \
        : filter_grad_spans<N_, false>(d, xp, cp, gp, yp, lo, hi, acc))
        CELLVERIFY_DISPATCH(d.C, CELLVERIFY_GRAD)
#undef CELLVERIFY_GRAD
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t cost = (N / kShards + 1) * (int64_t(d.S) * d.T * d.K * 4 +
                                              int64_t(d.P) * d.C * d.K * kTaps * 2);
    ::tensorflow::Shard(pool->num_threads, pool->workers, kShards, cost, work);
    write_shard_sums(partial, kTaps * d.C * d.K, d.K, dw, db);
  }

 private:
  bool relu_;
};

}  // namespace
}  // namespace cellverify

REGISTER_OP("CellverifyConvSpans")
    .Input("prices: float")  // [B, A, L, C], raw
    .Input("closes: float")  // [B, S, A], each window's latest close
    .Input("kernel: float")  // [3, C, K]
    .Input("bias: float")    // [K]
    .Attr("relu: bool")
    .Output("y: float")  // [B*S*A, K, L - S - 1]
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::DimensionHandle rows, t;
      auto prices = c->input(0), closes = c->input(1);
      TF_RETURN_IF_ERROR(c->Multiply(c->Dim(prices, 0), c->Dim(closes, 1), &rows));
      TF_RETURN_IF_ERROR(c->Multiply(rows, c->Dim(prices, 1), &rows));
      TF_RETURN_IF_ERROR(c->Subtract(c->Dim(prices, 2), c->Dim(closes, 1), &t));
      TF_RETURN_IF_ERROR(c->Subtract(t, 1, &t));
      c->set_output(0, c->MakeShape({rows, c->Dim(c->input(2), 2), t}));
      return ::tensorflow::OkStatus();
    });

REGISTER_OP("CellverifyConvSpansFilterGrad")
    .Input("prices: float")  // [B, A, L, C]
    .Input("closes: float")  // [B, S, A]
    .Input("g: float")       // [B*S*A, K, L - S - 1], the gradient at the output
    .Input("y: float")       // the output, for ReLU's derivative (unused without relu)
    .Attr("relu: bool")
    .Output("dkernel: float")  // [3, C, K]
    .Output("dbias: float")    // [K]
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      auto k = c->Dim(c->input(2), 1);
      c->set_output(0, c->MakeShape({3, c->Dim(c->input(0), 3), k}));
      c->set_output(1, c->MakeShape({k}));
      return ::tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("CellverifyConvSpans").Device(::tensorflow::DEVICE_CPU),
                        cellverify::ConvSpansOp);
REGISTER_KERNEL_BUILDER(Name("CellverifyConvSpansFilterGrad").Device(::tensorflow::DEVICE_CPU),
                        cellverify::ConvSpansFilterGradOp);
