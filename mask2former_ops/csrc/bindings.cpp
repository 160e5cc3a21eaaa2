// Python bindings of mask2former_ops._C: device dispatch and input checks.
#include <torch/extension.h>

#include "cpu/block_cache.h"
#include "ms_deform_attn.h"

namespace mask2former_ops {

void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                  const at::Tensor& attention_weights) {
  TORCH_CHECK(value.dim() == 4, "ms_deform_attn: value must be (N, S, M, D), got ",
              value.sizes());
  TORCH_CHECK(sampling_locations.dim() == 6 && sampling_locations.size(5) == 2,
              "ms_deform_attn: sampling_locations must be (N, Lq, M, L, P, 2), got ",
              sampling_locations.sizes());
  TORCH_CHECK(attention_weights.sizes() == sampling_locations.sizes().slice(0, 5),
              "ms_deform_attn: attention_weights must be (N, Lq, M, L, P) = ",
              sampling_locations.sizes().slice(0, 5), ", got ", attention_weights.sizes());
  TORCH_CHECK(sampling_locations.size(0) == value.size(0) &&
                  sampling_locations.size(2) == value.size(2),
              "ms_deform_attn: batch and heads of sampling_locations ", sampling_locations.sizes(),
              " do not match value ", value.sizes());
  const int64_t num_levels = sampling_locations.size(3);
  TORCH_CHECK(spatial_shapes.dim() == 2 && spatial_shapes.size(0) == num_levels &&
                  spatial_shapes.size(1) == 2,
              "ms_deform_attn: spatial_shapes must be (L=", num_levels, ", 2), got ",
              spatial_shapes.sizes());
  TORCH_CHECK(level_start_index.dim() == 1 && level_start_index.size(0) == num_levels,
              "ms_deform_attn: level_start_index must be (L=", num_levels, ",), got ",
              level_start_index.sizes());
  TORCH_CHECK(spatial_shapes.scalar_type() == at::kLong &&
                  level_start_index.scalar_type() == at::kLong,
              "ms_deform_attn: spatial_shapes and level_start_index must be int64");

  const at::ScalarType vtype = value.scalar_type();
  TORCH_CHECK(vtype == at::kDouble || vtype == at::kFloat || vtype == at::kHalf ||
                  vtype == at::kBFloat16,
              "ms_deform_attn: value must be float64, float32, float16 or bfloat16, got ", vtype);
  const at::ScalarType ctype = vtype == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(sampling_locations.scalar_type() == ctype &&
                  attention_weights.scalar_type() == ctype,
              "ms_deform_attn: sampling_locations and attention_weights must be ", ctype,
              " for a ", vtype, " value (got ", sampling_locations.scalar_type(), " and ",
              attention_weights.scalar_type(), ")");

  for (const at::Tensor* t : {&value, &spatial_shapes, &level_start_index, &sampling_locations,
                              &attention_weights}) {
    TORCH_CHECK(t->device() == value.device(),
                "ms_deform_attn: all inputs must be on the device of value (", value.device(),
                "), got ", t->device());
    TORCH_CHECK(t->is_contiguous(), "ms_deform_attn: inputs must be contiguous");
  }
}

namespace {

at::Tensor forward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                   const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                   const at::Tensor& attention_weights, int64_t channels_per_thread) {
  TORCH_CHECK(channels_per_thread >= 0, "ms_deform_attn: channels_per_thread must be >= 0");
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_deform_attn_forward_cuda(value, spatial_shapes, level_start_index,
                                       sampling_locations, attention_weights,
                                       channels_per_thread);
#else
    TORCH_CHECK(false, "mask2former_ops._C was built without CUDA kernels");
#endif
  }
  TORCH_CHECK(value.is_cpu(), "ms_deform_attn: unsupported device ", value.device());
  return ms_deform_attn_forward_cpu(value, spatial_shapes, level_start_index, sampling_locations,
                                    attention_weights, channels_per_thread);
}

std::vector<at::Tensor> backward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                 const at::Tensor& level_start_index,
                                 const at::Tensor& sampling_locations,
                                 const at::Tensor& attention_weights,
                                 const at::Tensor& grad_output, int64_t channels_per_thread) {
  TORCH_CHECK(channels_per_thread >= 0, "ms_deform_attn: channels_per_thread must be >= 0");
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  const int64_t n = value.size(0), lq = sampling_locations.size(1);
  const int64_t channels = value.size(2) * value.size(3);
  TORCH_CHECK(grad_output.dim() == 3 && grad_output.size(0) == n && grad_output.size(1) == lq &&
                  grad_output.size(2) == channels,
              "ms_deform_attn: grad_output must be (N, Lq, M*D) = (", n, ", ", lq, ", ", channels,
              "), got ", grad_output.sizes());
  TORCH_CHECK(grad_output.device() == value.device() && grad_output.is_contiguous(),
              "ms_deform_attn: grad_output must be contiguous and on ", value.device());
  // grad_output may come back in another dtype (e.g. float32 from a loss); use value's dtype.
  const at::Tensor grad = grad_output.to(value.scalar_type());
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    return ms_deform_attn_backward_cuda(value, spatial_shapes, level_start_index,
                                        sampling_locations, attention_weights, grad,
                                        channels_per_thread);
#else
    TORCH_CHECK(false, "mask2former_ops._C was built without CUDA kernels");
#endif
  }
  TORCH_CHECK(value.is_cpu(), "ms_deform_attn: unsupported device ", value.device());
  return ms_deform_attn_backward_cpu(value, spatial_shapes, level_start_index, sampling_locations,
                                     attention_weights, grad, channels_per_thread);
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace
}  // namespace mask2former_ops

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Multi-scale deformable attention kernels (CPU, and CUDA when built with it).";
  namespace py = pybind11;
  // channels_per_thread: 0 = the widest vector layout the inputs (CUDA) or the CPU allow, 1 = one
  // channel per thread (CUDA) / at a time (CPU).
  m.def("ms_deform_attn_forward", &mask2former_ops::forward,
        "forward(value, spatial_shapes, level_start_index, sampling_locations, "
        "attention_weights, channels_per_thread=0) -> (N, Lq, M*D)",
        py::arg("value"), py::arg("spatial_shapes"), py::arg("level_start_index"),
        py::arg("sampling_locations"), py::arg("attention_weights"),
        py::arg("channels_per_thread") = 0);
  m.def("ms_deform_attn_backward", &mask2former_ops::backward,
        "backward(..., grad_output, channels_per_thread=0) -> [grad_value, "
        "grad_sampling_locations, grad_attention_weights]",
        py::arg("value"), py::arg("spatial_shapes"), py::arg("level_start_index"),
        py::arg("sampling_locations"), py::arg("attention_weights"), py::arg("grad_output"),
        py::arg("channels_per_thread") = 0);
  m.def("with_cuda", &mask2former_ops::with_cuda, "Whether the CUDA kernels were compiled.");
  m.def("cpu_kernel_isa", &mask2former_ops::cpu_kernel_isa,
        "cpu_kernel_isa(channels_per_thread=0) -> 'avx512' | 'avx2' | 'base' | 'scalar': the "
        "instruction set of the CPU kernels on this CPU",
        py::arg("channels_per_thread") = 0);
  namespace cache = mask2former_ops::block_cache;
  m.def("cpu_cache_enter", &cache::enter,
        "Open a scope of the CPU block cache (the first installs it as PyTorch's CPU "
        "allocator); returns whether it is the allocator.");
  m.def("cpu_cache_exit", &cache::exit,
        "Close a scope (the last puts the previous CPU allocator back).");
  m.def("cpu_cache_empty", &cache::empty,
        "Free the cached segments that hold no tensor; returns the bytes freed.");
  m.def("cpu_cache_stats", &cache::stats, "The CPU block cache's counters.");
  m.def("cpu_cache_min_block_bytes", &cache::min_block_bytes,
        "Requests below this size bypass the CPU block cache.");
}
