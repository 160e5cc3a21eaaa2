// A caching allocator for large CPU tensors (>= 1 MiB), the CPU counterpart of PyTorch's CUDA
// caching allocator.
//
// Why: glibc hands every allocation above its mmap threshold (at most 32 MiB) straight to the
// kernel and unmaps it on free, and trims its heap when the top of it is free, so each large
// intermediate of a forward pass is fresh memory that page-faults on first touch. At R50 video
// inference (5 frames of 360x640, 2 threads) that is ~650,000 minor faults and ~16 % of the CPU
// time spent in the kernel per video. Kept in this cache, the blocks are reused from one layer
// and one call to the next.
//
// How: segments are allocated with c10::alloc_cpu (64-byte aligned, as PyTorch's default CPU
// allocator does) in multiples of 2 MiB. A request takes the smallest free block that fits (best
// fit) and is split when the rest is >= 1 MiB; a freed block merges with free neighbours of its
// segment. When no free block fits, the fully free segments are returned to the system first
// (they are all too small for the request), so the cache holds about the peak of what the scope
// needs, not the sum of every size it ever saw. Smaller requests go to PyTorch's default CPU
// allocator.
//
// The cache is PyTorch's CPU allocator only while a scope is open (enter / exit, counted across
// threads); blocks it handed out stay valid and return to it whenever they are freed. Cached
// memory stays reserved between scopes until empty() is called. A process forked within a scope
// (e.g. a DataLoader worker started by code running in a scope) starts with no scope open and
// the previous allocator back (pthread_atfork; the fork waits for the cache's lock).
#include "cpu/block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <pthread.h>

#include <mutex>
#include <set>
#include <unordered_map>

namespace mask2former_ops {
namespace block_cache {
namespace {

constexpr size_t kMinBlock = size_t(1) << 20;     // smaller requests bypass the cache
constexpr size_t kBlockRound = size_t(64) << 10;  // block sizes are multiples of 64 KiB
constexpr size_t kSegmentRound = size_t(2) << 20;  // segment sizes are multiples of 2 MiB
// The priority the cache is installed with: it never displaces an allocator that someone
// installed with a higher one.
constexpr uint8_t kPriority = 0;

size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// A contiguous piece of a segment; the blocks of a segment form a doubly linked list in address
// order. A segment is fully free when its one block has no neighbours and is not allocated.
struct Block {
  char* ptr;
  size_t size;
  bool allocated = false;
  Block* prev = nullptr;
  Block* next = nullptr;
};

struct BySizeThenAddress {
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
  }
};

class BlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    const c10::Device device(c10::DeviceType::CPU);
    if (nbytes < kMinBlock) return c10::GetDefaultCPUAllocator()->allocate(nbytes);
    const size_t size = round_up(nbytes, kBlockRound);
    std::lock_guard<std::mutex> lock(mutex_);
    Block* block = take_best_fit(size);
    if (block != nullptr) {
      ++hits_;
    } else {
      ++misses_;
      release_free_segments();
      block = new_segment(size);
    }
    if (block->size - size >= kMinBlock) split(block, size);
    block->allocated = true;
    live_[block->ptr] = block;
    allocated_ += block->size;
    report_to_profiler(block, 1);
    return {block->ptr, block->ptr, &deallocate, device};
  }

  // Also the raw deleter (raw_allocate / raw_deallocate, used by oneDNN for its scratch
  // memory): pointers the cache did not hand out go to the default CPU allocator's.
  c10::DeleterFnPtr raw_deleter() const override { return &deallocate; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static void deallocate(void* ptr) {
    if (ptr == nullptr) return;
    if (!instance().give_back(ptr)) c10::GetDefaultCPUAllocator()->raw_deleter()(ptr);
  }

  static BlockCache& instance() {
    // Never destroyed: tensors may be freed during interpreter shutdown, after static objects.
    static BlockCache* cache = [] {
      auto* created = new BlockCache();
      pthread_atfork(&BlockCache::before_fork, &BlockCache::after_fork_in_parent,
                     &BlockCache::after_fork_in_child);
      return created;
    }();
    return *cache;
  }

  bool enter() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (scopes_++ == 0) {
      previous_ = c10::GetCPUAllocator();
      c10::SetCPUAllocator(this, kPriority);
      installed_ = c10::GetCPUAllocator() == this;
    }
    return installed_;
  }

  void exit() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (scopes_ == 0) return;
    if (--scopes_ == 0 && installed_) {
      c10::SetCPUAllocator(previous_, kPriority);
      installed_ = false;
    }
  }

  int64_t empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(release_free_segments());
  }

  std::map<std::string, int64_t> stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {{"reserved_bytes", static_cast<int64_t>(reserved_)},
            {"allocated_bytes", static_cast<int64_t>(allocated_)},
            {"cached_bytes", static_cast<int64_t>(reserved_ - allocated_)},
            {"segments", segments_},
            {"hits", hits_},
            {"misses", misses_},
            {"scopes", scopes_},
            {"installed", installed_ ? 1 : 0}};
  }

 private:
  // The lock is held across fork so that the child's copy of the cache is consistent; the child
  // closes the scopes it inherited (they belong to the parent's threads).
  static void before_fork() { instance().mutex_.lock(); }
  static void after_fork_in_parent() { instance().mutex_.unlock(); }
  static void after_fork_in_child() {
    BlockCache& cache = instance();
    if (cache.installed_) c10::SetCPUAllocator(cache.previous_, kPriority);
    cache.installed_ = false;
    cache.scopes_ = 0;
    cache.mutex_.unlock();
  }

  // Returns false for a pointer the cache did not hand out.
  bool give_back(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = live_.find(ptr);
    if (found == live_.end()) return false;
    Block* block = found->second;
    live_.erase(found);
    allocated_ -= block->size;
    report_to_profiler(block, -1);
    block->allocated = false;
    if (block->prev != nullptr && !block->prev->allocated) block = merge(block->prev, block);
    if (block->next != nullptr && !block->next->allocated) block = merge(block, block->next);
    free_.insert(block);
    return true;
  }

  // As PyTorch's default CPU allocator does, so that torch.profiler(profile_memory=True) sees the
  // cache's blocks (sign: +1 allocated, -1 freed).
  void report_to_profiler(const Block* block, int64_t sign) {
    if (!c10::memoryProfilingEnabled()) return;
    c10::reportMemoryUsageToProfiler(block->ptr, sign * static_cast<int64_t>(block->size),
                                     allocated_, reserved_, c10::Device(c10::DeviceType::CPU));
  }

  Block* take_best_fit(size_t size) {
    Block key{nullptr, size};
    auto found = free_.lower_bound(&key);
    if (found == free_.end()) return nullptr;
    Block* block = *found;
    free_.erase(found);
    return block;
  }

  Block* new_segment(size_t size) {
    const size_t bytes = round_up(size, kSegmentRound);
    char* ptr = static_cast<char*>(c10::alloc_cpu(bytes));  // throws when out of memory
    reserved_ += bytes;
    ++segments_;
    return new Block{ptr, bytes};
  }

  // Cuts the tail of `block` beyond `size` into a free block of its own.
  void split(Block* block, size_t size) {
    Block* rest = new Block{block->ptr + size, block->size - size};
    rest->prev = block;
    rest->next = block->next;
    if (block->next != nullptr) block->next->prev = rest;
    block->next = rest;
    block->size = size;
    free_.insert(rest);
  }

  // Joins two neighbouring blocks (`first` directly before `second`, neither allocated) into
  // `first`; whichever of them is in the free set leaves it first (its key changes).
  Block* merge(Block* first, Block* second) {
    free_.erase(first);
    free_.erase(second);
    first->size += second->size;
    first->next = second->next;
    if (second->next != nullptr) second->next->prev = first;
    delete second;
    return first;
  }

  size_t release_free_segments() {
    size_t released = 0;
    for (auto it = free_.begin(); it != free_.end();) {
      Block* block = *it;
      if (block->prev == nullptr && block->next == nullptr) {
        it = free_.erase(it);
        c10::free_cpu(block->ptr);
        reserved_ -= block->size;
        released += block->size;
        --segments_;
        delete block;
      } else {
        ++it;
      }
    }
    return released;
  }

  std::mutex mutex_;
  std::set<Block*, BySizeThenAddress> free_;
  std::unordered_map<void*, Block*> live_;
  size_t reserved_ = 0, allocated_ = 0;
  int64_t segments_ = 0, hits_ = 0, misses_ = 0, scopes_ = 0;
  c10::Allocator* previous_ = nullptr;
  bool installed_ = false;
};

}  // namespace

bool enter() { return BlockCache::instance().enter(); }
void exit() { BlockCache::instance().exit(); }
int64_t empty() { return BlockCache::instance().empty(); }
std::map<std::string, int64_t> stats() { return BlockCache::instance().stats(); }
int64_t min_block_bytes() { return static_cast<int64_t>(kMinBlock); }

}  // namespace block_cache
}  // namespace mask2former_ops
