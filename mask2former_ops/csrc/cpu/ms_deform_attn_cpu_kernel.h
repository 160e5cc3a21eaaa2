// Bodies of the CPU kernels over a range of work items, for one instruction set.
//
// No include guard: ms_deform_attn_cpu.cpp includes this file once per instruction set, each time
// inside its own namespace that defines `kVectorBytes` (bytes of one vector register; 0: one
// channel at a time) and, for AVX2 / AVX-512, under a `#pragma GCC target` that makes every
// function below use that instruction set. Everything used here is included before (so headers'
// inline functions keep the default target), and nothing here has external linkage.
//
// Vectors are GCC vector extensions of kLanes<acc_t> opmath elements: loads convert kLanes
// values to the opmath dtype (bfloat16: zero-extend and shift left by 16; float16: lane by lane),
// sums accumulate in it. Channels go in blocks of 4, 2, then 1 vector(s) kept in registers while
// the bilinear taps of one (n, q, m) are walked; the last D mod kLanes channels one at a time.

template <typename acc_t>
constexpr int kLanes = kVectorBytes == 0 ? 1 : kVectorBytes / static_cast<int>(sizeof(acc_t));

// `lanes` elements of T in one GCC vector (a typedef in a class template: GCC drops a dependent
// vector_size on a typedef inside a function template).
template <typename T, int lanes>
struct VecType {
  typedef T type __attribute__((vector_size(lanes * sizeof(T))));
};
template <typename acc_t>
using Vec = typename VecType<acc_t, kLanes<acc_t>>::type;

// kLanes<acc_t> values from `p` as opmath values.
template <typename acc_t, typename scalar_t>
inline Vec<acc_t> load(const scalar_t* p) {
  constexpr int lanes = kLanes<acc_t>;
  Vec<acc_t> v;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    std::memcpy(&v, p, sizeof v);
  } else if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    static_assert(std::is_same_v<acc_t, float>, "bfloat16 accumulates in float32");
    using Bits16 = typename VecType<uint16_t, lanes>::type;
    using Bits32 = typename VecType<uint32_t, lanes>::type;
    Bits16 bits;
    std::memcpy(&bits, p, sizeof bits);
    const Bits32 widened = __builtin_convertvector(bits, Bits32) << 16;
    std::memcpy(&v, &widened, sizeof v);
  } else {
    for (int i = 0; i < lanes; ++i) v[i] = static_cast<acc_t>(p[i]);
  }
  return v;
}

// Stores kLanes<acc_t> values to `p` in its dtype (rounded to nearest even like c10's casts).
template <typename scalar_t, typename acc_t>
inline void store(scalar_t* p, const Vec<acc_t>& v) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int i = 0; i < kLanes<acc_t>; ++i) p[i] = static_cast<scalar_t>(v[i]);
  }
}

template <typename acc_t>
inline acc_t lane_sum(const Vec<acc_t>& v) {
  acc_t sum = v[0];
  for (int i = 1; i < kLanes<acc_t>; ++i) sum += v[i];
  return sum;
}

// The bilinear taps of one (n, q, m) over its L * P samples, in sample then corner order: a tap
// is one corner inside its level. Buffers sized for L * P samples, reused across work items.
template <typename acc_t>
struct Taps {
  explicit Taps(int64_t samples)
      : offset(4 * samples), coef(4 * samples), sample(4 * samples), corner(4 * samples),
        corners(samples), inside(samples) {}
  int64_t count = 0;
  std::vector<int64_t> offset;   // element offset of the corner's value row from value[n, 0, m]
  std::vector<acc_t> coef;       // attention weight * bilinear weight of the corner
  std::vector<int64_t> sample;   // l * P + p of the tap
  std::vector<int> corner;       // 0..3, as in BilinearCorners
  std::vector<BilinearCorners<acc_t>> corners;  // per sample
  std::vector<char> inside;      // per sample: whether bilinear_corners found any corner
};

// Fills `taps` for (n, q, m) = nqm; the per-tap sample / corner and the per-sample corners only
// for the backward (kBackward), which needs them to fold the gradients back onto the samples.
template <bool kBackward, typename scalar_t, typename acc_t>
void gather_taps(const KernelArgs<scalar_t, acc_t>& a, int64_t nqm, Taps<acc_t>& taps) {
  const int64_t L = a.sz.levels, P = a.sz.points, row = a.sz.heads * a.sz.channels;
  taps.count = 0;
  BilinearCorners<acc_t> local;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t height = a.shapes[2 * l], width = a.shapes[2 * l + 1];
    for (int64_t p = 0; p < P; ++p) {
      const int64_t s = l * P + p, sample = nqm * L * P + s;
      BilinearCorners<acc_t>& corners = kBackward ? taps.corners[s] : local;
      const bool inside = bilinear_corners(a.locations[2 * sample], a.locations[2 * sample + 1],
                                           height, width, corners);
      if (kBackward) taps.inside[s] = inside;
      if (!inside) continue;
      for (int c = 0; c < 4; ++c) {
        if (corners.position[c] < 0) continue;
        const int64_t k = taps.count++;
        taps.offset[k] = (a.starts[l] + corners.position[c]) * row;
        taps.coef[k] = a.weights[sample] * corners.weight[c];
        if (kBackward) {
          taps.sample[k] = s;
          taps.corner[k] = c;
        }
      }
    }
  }
}

// out[0 : kBlock * lanes] = sum over taps k of coef[k] * v[offset[k] + (0 : kBlock * lanes)].
template <int kBlock, typename scalar_t, typename acc_t>
inline void sample_block(const scalar_t* v, const Taps<acc_t>& taps, scalar_t* out) {
  constexpr int lanes = kLanes<acc_t>;
  Vec<acc_t> acc[kBlock] = {};
  for (int64_t k = 0; k < taps.count; ++k) {
    const scalar_t* row = v + taps.offset[k];
    const acc_t coef = taps.coef[k];
    for (int j = 0; j < kBlock; ++j) acc[j] += coef * load<acc_t>(row + j * lanes);
  }
  for (int j = 0; j < kBlock; ++j) store<scalar_t, acc_t>(out + j * lanes, acc[j]);
}

// Forward over (n, q) in [begin, end): output[n, q, m, :] for every head m.
template <typename scalar_t, typename acc_t>
void forward_range(const KernelArgs<scalar_t, acc_t>& a, int64_t begin, int64_t end) {
  constexpr int lanes = kLanes<acc_t>;
  const int64_t M = a.sz.heads, D = a.sz.channels, row = M * D;
  Taps<acc_t> taps(a.sz.levels * a.sz.points);
  for (int64_t nq = begin; nq < end; ++nq) {
    const int64_t n = nq / a.sz.queries;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t nqm = nq * M + m;
      gather_taps<false>(a, nqm, taps);
      const scalar_t* v = a.value + n * a.sz.num_values * row + m * D;
      scalar_t* out = a.output + nqm * D;
      int64_t d = 0;
      for (; d + 4 * lanes <= D; d += 4 * lanes) sample_block<4>(v + d, taps, out + d);
      for (; d + 2 * lanes <= D; d += 2 * lanes) sample_block<2>(v + d, taps, out + d);
      for (; d + lanes <= D; d += lanes) sample_block<1>(v + d, taps, out + d);
      for (; d < D; ++d) {  // the last D mod lanes channels
        acc_t acc = 0;
        for (int64_t k = 0; k < taps.count; ++k) {
          acc += taps.coef[k] * static_cast<acc_t>(v[taps.offset[k] + d]);
        }
        out[d] = static_cast<scalar_t>(acc);
      }
    }
  }
}

// For channels [0, kBlock * lanes) from `v` / `grad_v` / `grad` (offset by the caller):
// dot[k] += <grad, v at tap k>, grad_v at tap k += coef[k] * grad.
template <int kBlock, typename scalar_t, typename acc_t>
inline void backward_block(const scalar_t* v, acc_t* grad_v, const acc_t* grad,
                           const Taps<acc_t>& taps, acc_t* dot) {
  constexpr int lanes = kLanes<acc_t>;
  Vec<acc_t> g[kBlock];
  for (int j = 0; j < kBlock; ++j) g[j] = load<acc_t>(grad + j * lanes);
  for (int64_t k = 0; k < taps.count; ++k) {
    const scalar_t* row = v + taps.offset[k];
    acc_t* grad_row = grad_v + taps.offset[k];
    const acc_t coef = taps.coef[k];
    Vec<acc_t> partial = {};
    for (int j = 0; j < kBlock; ++j) {
      partial += g[j] * load<acc_t>(row + j * lanes);
      Vec<acc_t> accumulated = load<acc_t>(grad_row + j * lanes);
      accumulated += coef * g[j];
      store<acc_t, acc_t>(grad_row + j * lanes, accumulated);
    }
    dot[k] += lane_sum<acc_t>(partial);
  }
}

// Backward over (n, m) in [begin, end): each work item owns grad_value[n, :, m, :] (no atomics)
// and the gradients of the locations and weights of its (n, :, m) samples.
template <typename scalar_t, typename acc_t>
void backward_range(const KernelArgs<scalar_t, acc_t>& a, int64_t begin, int64_t end) {
  constexpr int lanes = kLanes<acc_t>;
  const int64_t M = a.sz.heads, D = a.sz.channels, row = M * D;
  const int64_t samples = a.sz.levels * a.sz.points;
  Taps<acc_t> taps(samples);
  std::vector<acc_t> grad(D), dot(4 * samples);
  std::vector<acc_t> g_weight(samples), g_h(samples), g_w(samples);
  for (int64_t nm = begin; nm < end; ++nm) {
    const int64_t n = nm / M, m = nm % M;
    const int64_t base = n * a.sz.num_values * row + m * D;
    const scalar_t* v = a.value + base;
    acc_t* grad_v = a.grad_value + base;
    for (int64_t q = 0; q < a.sz.queries; ++q) {
      const int64_t nqm = (n * a.sz.queries + q) * M + m;
      gather_taps<true>(a, nqm, taps);
      for (int64_t d = 0; d < D; ++d) grad[d] = static_cast<acc_t>(a.grad_output[nqm * D + d]);
      std::fill(dot.begin(), dot.begin() + taps.count, static_cast<acc_t>(0));
      int64_t d = 0;
      for (; d + 4 * lanes <= D; d += 4 * lanes) {
        backward_block<4>(v + d, grad_v + d, grad.data() + d, taps, dot.data());
      }
      for (; d + 2 * lanes <= D; d += 2 * lanes) {
        backward_block<2>(v + d, grad_v + d, grad.data() + d, taps, dot.data());
      }
      for (; d + lanes <= D; d += lanes) {
        backward_block<1>(v + d, grad_v + d, grad.data() + d, taps, dot.data());
      }
      for (; d < D; ++d) {  // the last D mod lanes channels
        for (int64_t k = 0; k < taps.count; ++k) {
          const int64_t offset = taps.offset[k] + d;
          dot[k] += grad[d] * static_cast<acc_t>(v[offset]);
          grad_v[offset] += taps.coef[k] * grad[d];
        }
      }
      // weights and locations: d(sum_c attn * w_c * dot_c) / d(attn, h, w)
      std::fill(g_weight.begin(), g_weight.end(), static_cast<acc_t>(0));
      std::fill(g_h.begin(), g_h.end(), static_cast<acc_t>(0));
      std::fill(g_w.begin(), g_w.end(), static_cast<acc_t>(0));
      for (int64_t k = 0; k < taps.count; ++k) {
        const BilinearCorners<acc_t>& corners = taps.corners[taps.sample[k]];
        const int c = taps.corner[k];
        g_weight[taps.sample[k]] += corners.weight[c] * dot[k];
        g_h[taps.sample[k]] += corners.dweight_dh[c] * dot[k];
        g_w[taps.sample[k]] += corners.dweight_dw[c] * dot[k];
      }
      for (int64_t s = 0; s < samples; ++s) {
        if (!taps.inside[s]) continue;
        const int64_t l = s / a.sz.points, sample = nqm * samples + s;
        const acc_t attn = a.weights[sample];
        a.grad_weights[sample] = g_weight[s];
        // d(pixel w)/dx = W and d(pixel h)/dy = H
        a.grad_locations[2 * sample] = attn * g_w[s] * static_cast<acc_t>(a.shapes[2 * l + 1]);
        a.grad_locations[2 * sample + 1] = attn * g_h[s] * static_cast<acc_t>(a.shapes[2 * l]);
      }
    }
  }
}
