// One step of the flux_lstm network (emulators/nets/flux.py, FluxLSTM.forward without the
// derived physics features) as one native CPU operator: rows are cut into blocks of `block`
// rows, each block's matrix products run single-threaded in BLAS on one core and its gate
// nonlinearities, cell update and task heads run on the block's values while they are still
// in that core's cache. The blocks are spread over torch's intra-op threads.
//
// Built and loaded by emulators/compiled/fused.py (-O3 -march=native on the machine that
// runs it); registers torch.ops.landcoupler.flux_lstm_step.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

// Fortran BLAS sgemm, exported by libtorch_cpu (MKL in torch's x86_64 wheels)
extern "C" void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
                       const float*, const int*, const float*, const int*, const float*, float*,
                       const int*);

namespace {

// row-major C (m x n, ldc) = A (m x k, lda) . B^T + beta C, B row-major (n x k, ldb)
void mm_abt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta,
            float* c, int ldc) {
  const float one = 1.0f;
  sgemm_("T", "N", &n, &m, &k, &one, b, &ldb, a, &lda, &beta, c, &ldc);
}

// row-major C (m x n, ldc) = A (m x k, lda) . B, B row-major (k x n, ldb)
void mm_ab(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
           int ldc) {
  const float one = 1.0f, zero = 0.0f;
  sgemm_("N", "N", &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc);
}

// exp(x) for float32, written so that the compiler vectorises loops of it: x = n ln2 + r with
// |r| <= ln2 / 2, a degree-7 polynomial for e^r (Cephes expf's coefficients), 2^n from the
// exponent bits; arguments clamped to [-87, 88] (the normal range). Relative error ~1e-7.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}
inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
inline float tanh_(float x) { return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f; }

// the LSTM gates (i, f, u, o) and cell update of R rows, and each task's gated input
// s[t] = sigmoid(task gate t) * h; a: (R, G) pre-activations without bias, s: (T, B, H)
void cell(int R, int H, int T, int G, int B, const float* __restrict a,
          const float* __restrict bias, const float* __restrict c, float* __restrict h2,
          float* __restrict c2, float* __restrict s) {
  for (int r = 0; r < R; ++r) {
    const float* __restrict ar = a + r * G;
    const float* __restrict cr = c + r * H;
    float* __restrict hr = h2 + r * H;
    float* __restrict cn = c2 + r * H;
#pragma omp simd
    for (int j = 0; j < H; ++j) {
      const float i = sigmoid(ar[j] + bias[j]);
      const float f = sigmoid(ar[H + j] + bias[H + j]);
      const float u = tanh_(ar[2 * H + j] + bias[2 * H + j]);
      const float o = sigmoid(ar[3 * H + j] + bias[3 * H + j]);
      const float cc = f * cr[j] + i * u;
      cn[j] = cc;
      hr[j] = o * tanh_(cc);
    }
    for (int t = 0; t < T; ++t) {
      float* __restrict st = s + (t * B + r) * H;
      const float* __restrict gt = ar + 4 * H + t * H;
      const float* __restrict bt = bias + 4 * H + t * H;
#pragma omp simd
      for (int j = 0; j < H; ++j) st[j] = sigmoid(gt[j] + bt[j]) * hr[j];
    }
  }
}

// y of R rows: the heads' SiLU layer on zk (T, B, K) (first layer without bias), its output
// layer, and the outputs' inverse normalisation
void heads(int R, int T, int K, int B, const float* __restrict zk, const float* __restrict b1,
           const float* __restrict w2, const float* __restrict b2, const float* __restrict mean,
           const float* __restrict std, float* __restrict y) {
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      const float* __restrict zt = zk + (t * B + r) * K;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int k = 0; k < K; ++k) {
        const float v = zt[k] + b1[t * K + k];
        acc += v * sigmoid(v) * w2[t * K + k];
      }
      y[r * T + t] = (acc + b2[t]) * std[t] + mean[t];
    }
  }
}

void check(const at::Tensor& t, const char* name, std::vector<int64_t> shape) {
  TORCH_CHECK(t.device().is_cpu(), "flux_lstm_step: ", name, " must be on the CPU");
  TORCH_CHECK(t.scalar_type() == at::kFloat, "flux_lstm_step: ", name, " must be float32, got ",
              t.scalar_type());
  TORCH_CHECK(t.dim() == static_cast<int64_t>(shape.size()), "flux_lstm_step: ", name,
              " must have ", shape.size(), " dimensions, got shape ", t.sizes());
  for (size_t d = 0; d < shape.size(); ++d)
    TORCH_CHECK(shape[d] < 0 || t.size(d) == shape[d], "flux_lstm_step: ", name,
                " has shape ", t.sizes(), ", expected size ", shape[d], " in dimension ", d);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> flux_lstm_step(
    const at::Tensor& x_in, const at::Tensor& h_in, const at::Tensor& c_in,
    at::TensorList params, int64_t block) {
  TORCH_CHECK(params.size() == 11, "flux_lstm_step: expected 11 parameter tensors, got ",
              params.size());
  TORCH_CHECK(block >= 1 && block <= 65536, "flux_lstm_step: block must be in [1, 65536], got ",
              block);
  const int64_t H = params[4].size(-1), T = params[5].size(0), K = params[5].size(-1);
  const int64_t F = params[0].size(0), G = 4 * H + T * H, N = x_in.size(0);
  check(x_in, "x", {-1, F});
  check(h_in, "h", {N, H});
  check(c_in, "c", {N, H});
  const char* names[] = {"inputs.mean", "inputs.std", "wx.weight", "wx.bias", "wh.weight",
                         "head_w1", "head_b1", "head_w2", "head_b2", "outputs.mean",
                         "outputs.std"};
  const std::vector<std::vector<int64_t>> shapes = {
      {F}, {F}, {G, F}, {G}, {4 * H, H}, {T, H, K}, {T, 1, K}, {T, K}, {T}, {T}, {T}};
  std::vector<at::Tensor> p;
  for (size_t i = 0; i < 11; ++i) {
    check(params[i], names[i], shapes[i]);
    p.push_back(params[i].contiguous());
  }
  const auto x = x_in.contiguous(), h = h_in.contiguous(), c = c_in.contiguous();
  auto y = at::empty({N, T}, x.options());
  // h and c each right after a zero row of their storage: the new recurrent state's table
  // (zero row, rows) as it is, with no copy (``row_step.dense_rows``)
  auto h2 = at::empty({N + 1, H}, x.options());
  auto c2 = at::empty({N + 1, H}, x.options());
  h2[0].zero_();
  c2[0].zero_();
  h2 = h2.narrow(0, 1, N);
  c2 = c2.narrow(0, 1, N);
  if (N == 0) return {y, h2, c2};
  const float *xp = x.data_ptr<float>(), *hp = h.data_ptr<float>(), *cp = c.data_ptr<float>();
  const float *mu = p[0].data_ptr<float>(), *sd = p[1].data_ptr<float>();
  const float *wx = p[2].data_ptr<float>(), *bx = p[3].data_ptr<float>();
  const float *wh = p[4].data_ptr<float>(), *w1 = p[5].data_ptr<float>();
  const float *b1 = p[6].data_ptr<float>(), *w2 = p[7].data_ptr<float>();
  const float *b2 = p[8].data_ptr<float>(), *omu = p[9].data_ptr<float>();
  const float* osd = p[10].data_ptr<float>();
  float *yp = y.data_ptr<float>(), *h2p = h2.data_ptr<float>(), *c2p = c2.data_ptr<float>();
  const int64_t B = std::min<int64_t>(block, N);
  const int Fi = F, Hi = H, Ti = T, Ki = K, Gi = G, Bi = B;
  at::parallel_for(0, (N + B - 1) / B, 1, [&](int64_t first, int64_t last) {
    std::vector<float> z(B * F), a(B * G), s(T * B * H), zk(T * B * K);
    for (int64_t blk = first; blk < last; ++blk) {
      const int64_t r0 = blk * B;
      const int R = static_cast<int>(std::min(B, N - r0));
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < Fi; ++j) z[r * Fi + j] = (xp[(r0 + r) * F + j] - mu[j]) / sd[j];
      mm_abt(R, Gi, Fi, z.data(), Fi, wx, Fi, 0.0f, a.data(), Gi);
      mm_abt(R, 4 * Hi, Hi, hp + r0 * H, Hi, wh, Hi, 1.0f, a.data(), Gi);
      cell(R, Hi, Ti, Gi, Bi, a.data(), bx, cp + r0 * H, h2p + r0 * H, c2p + r0 * H, s.data());
      for (int t = 0; t < Ti; ++t)
        mm_ab(R, Ki, Hi, s.data() + t * B * H, Hi, w1 + t * H * K, Ki, zk.data() + t * B * K, Ki);
      heads(R, Ti, Ki, Bi, zk.data(), b1, w2, b2, omu, osd, yp + r0 * T);
    }
  });
  return {y, h2, c2};
}

}  // namespace

TORCH_LIBRARY(landcoupler, m) {
  m.def(
      "flux_lstm_step(Tensor x, Tensor h, Tensor c, Tensor[] params, int block) -> "
      "(Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(landcoupler, CPU, m) { m.impl("flux_lstm_step", flux_lstm_step); }
