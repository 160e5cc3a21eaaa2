// CPU kernels of multi-scale deformable attention (shapes in ../ms_deform_attn.h).
//
// Forward: parallel over (n, q); each (n, q, m) accumulates its D channels in the opmath dtype
// while walking the L * P samples (value rows are D contiguous elements, so the inner loop
// vectorises). Backward: parallel over (n, m), so every task owns the slice grad_value[n, :, m, :]
// and needs no atomics.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../bilinear.h"
#include "../ms_deform_attn.h"

namespace mask2former_ops {
namespace {

struct Sizes {
  int64_t batch, num_values, heads, channels, queries, levels, points;
};

Sizes sizes_of(const at::Tensor& value, const at::Tensor& sampling_locations) {
  return {value.size(0), value.size(1), value.size(2), value.size(3),
          sampling_locations.size(1), sampling_locations.size(3), sampling_locations.size(4)};
}

template <typename scalar_t, typename acc_t>
void forward_kernel(const Sizes& sz, const scalar_t* value, const int64_t* shapes,
                    const int64_t* starts, const acc_t* locations, const acc_t* weights,
                    scalar_t* output) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;  // stride between value positions
  // Small chunks: one (n, q) is M * L * P samples of D channels.
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, M * L * P * D));
  at::parallel_for(0, sz.batch * sz.queries, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(D);
    BilinearCorners<acc_t> corners;
    for (int64_t nq = begin; nq < end; ++nq) {
      const int64_t n = nq / sz.queries;
      for (int64_t m = 0; m < M; ++m) {
        std::fill(acc.begin(), acc.end(), static_cast<acc_t>(0));
        const int64_t sample0 = (nq * M + m) * L * P;  // (n, q, m, 0, 0)
        for (int64_t l = 0; l < L; ++l) {
          const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
          const scalar_t* level_value = value + (n * sz.num_values + starts[l]) * row + m * D;
          for (int64_t p = 0; p < P; ++p) {
            const int64_t sample = sample0 + l * P + p;
            if (!bilinear_corners(locations[2 * sample], locations[2 * sample + 1], height, width,
                                  corners)) {
              continue;
            }
            const acc_t attn = weights[sample];
            for (int c = 0; c < 4; ++c) {
              if (corners.position[c] < 0) continue;
              const acc_t coef = attn * corners.weight[c];
              const scalar_t* v = level_value + corners.position[c] * row;
              for (int64_t d = 0; d < D; ++d) acc[d] += coef * static_cast<acc_t>(v[d]);
            }
          }
        }
        scalar_t* out = output + (nq * M + m) * D;
        for (int64_t d = 0; d < D; ++d) out[d] = static_cast<scalar_t>(acc[d]);
      }
    }
  });
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const Sizes& sz, const scalar_t* value, const int64_t* shapes,
                     const int64_t* starts, const acc_t* locations, const acc_t* weights,
                     const scalar_t* grad_output, acc_t* grad_value, acc_t* grad_locations,
                     acc_t* grad_weights) {
  const int64_t M = sz.heads, D = sz.channels, L = sz.levels, P = sz.points;
  const int64_t row = M * D;
  at::parallel_for(0, sz.batch * M, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> grad(D);
    BilinearCorners<acc_t> corners;
    for (int64_t nm = begin; nm < end; ++nm) {
      const int64_t n = nm / M, m = nm % M;
      for (int64_t q = 0; q < sz.queries; ++q) {
        const int64_t nqm = (n * sz.queries + q) * M + m;
        const scalar_t* g_out = grad_output + nqm * D;
        for (int64_t d = 0; d < D; ++d) grad[d] = static_cast<acc_t>(g_out[d]);
        for (int64_t l = 0; l < L; ++l) {
          const int64_t height = shapes[2 * l], width = shapes[2 * l + 1];
          const int64_t level_offset = (n * sz.num_values + starts[l]) * row + m * D;
          for (int64_t p = 0; p < P; ++p) {
            const int64_t sample = nqm * L * P + l * P + p;
            if (!bilinear_corners(locations[2 * sample], locations[2 * sample + 1], height, width,
                                  corners)) {
              continue;
            }
            const acc_t attn = weights[sample];
            acc_t g_weight = 0, g_h = 0, g_w = 0;
            for (int c = 0; c < 4; ++c) {
              if (corners.position[c] < 0) continue;
              const int64_t offset = level_offset + corners.position[c] * row;
              const scalar_t* v = value + offset;
              acc_t* g_v = grad_value + offset;
              const acc_t coef = attn * corners.weight[c];
              acc_t dot = 0;  // <grad_output, value at this corner>
              for (int64_t d = 0; d < D; ++d) {
                dot += grad[d] * static_cast<acc_t>(v[d]);
                g_v[d] += coef * grad[d];
              }
              g_weight += corners.weight[c] * dot;
              g_h += corners.dweight_dh[c] * dot;
              g_w += corners.dweight_dw[c] * dot;
            }
            grad_weights[sample] = g_weight;
            // d(pixel w)/dx = W and d(pixel h)/dy = H
            grad_locations[2 * sample] = attn * g_w * static_cast<acc_t>(width);
            grad_locations[2 * sample + 1] = attn * g_h * static_cast<acc_t>(height);
          }
        }
      }
    }
  });
}

}  // namespace

at::Tensor ms_deform_attn_forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index,
                                      const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights) {
  const Sizes sz = sizes_of(value, sampling_locations);
  at::Tensor output = at::empty({sz.batch, sz.queries, sz.heads * sz.channels}, value.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_forward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        forward_kernel<scalar_t, acc_t>(
            sz, value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
            level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<acc_t>(),
            attention_weights.data_ptr<acc_t>(), output.data_ptr<scalar_t>());
      });
  return output;
}

std::vector<at::Tensor> ms_deform_attn_backward_cpu(
    const at::Tensor& value, const at::Tensor& spatial_shapes, const at::Tensor& level_start_index,
    const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
    const at::Tensor& grad_output) {
  const Sizes sz = sizes_of(value, sampling_locations);
  // grad_value accumulates in the opmath dtype (float32 for half / bfloat16), cast at the end.
  at::Tensor grad_value = at::zeros(value.sizes(), sampling_locations.options());
  at::Tensor grad_locations = at::zeros_like(sampling_locations);
  at::Tensor grad_weights = at::zeros_like(attention_weights);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        backward_kernel<scalar_t, acc_t>(
            sz, value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
            level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<acc_t>(),
            attention_weights.data_ptr<acc_t>(), grad_output.data_ptr<scalar_t>(),
            grad_value.data_ptr<acc_t>(), grad_locations.data_ptr<acc_t>(),
            grad_weights.data_ptr<acc_t>());
      });
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace mask2former_ops
