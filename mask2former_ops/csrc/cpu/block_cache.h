// A caching allocator for large CPU tensors, installed as PyTorch's CPU allocator only while a
// scope is open (see block_cache.cpp and mask2former_ops/cpu_cache.py).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace mask2former_ops {
namespace block_cache {

// Opens a scope: the first open scope installs the cache as PyTorch's CPU allocator. Returns
// whether the cache is the allocator now (false when another allocator of higher priority, e.g.
// one set by an extension, is installed: nothing is changed then).
bool enter();
// Closes a scope: the last one puts the previous allocator back. Cached blocks stay cached.
void exit();
// Frees every cached segment that holds no live tensor. Returns the bytes freed.
int64_t empty();
// Counters: reserved, allocated and cached (free) bytes, segments, hits, misses, scopes open.
std::map<std::string, int64_t> stats();
// The size below which allocations bypass the cache (plain aligned malloc / free).
int64_t min_block_bytes();

}  // namespace block_cache
}  // namespace mask2former_ops
