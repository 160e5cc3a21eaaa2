"""The CPU block cache (mask2former_ops.cpu_cache): blocks never overlap, freed blocks are reused
and merged, the cache is the allocator only within scopes, its memory is returned on request."""

import os
import random
import threading

import pytest
import torch

import mask2former_ops
from mask2former_ops import cpu_cache
from mask2former_ops.cpu_cache import cpu_block_cache, cpu_cache_stats, empty_cpu_cache

pytestmark = pytest.mark.skipif(
    not cpu_cache_stats()["available"], reason="mask2former_ops._C is not built"
)

MIB = 1 << 20


def _bytes(size: int) -> torch.Tensor:
    return torch.empty(size, dtype=torch.uint8)


@pytest.fixture(autouse=True)
def empty_cache():
    empty_cpu_cache()
    yield
    empty_cpu_cache()


def test_blocks_reused_within_and_across_scopes():
    with cpu_block_cache() as installed:
        assert installed and cpu_cache_stats()["installed"] == 1
        before = cpu_cache_stats()
        block = _bytes(10 * MIB)
        address = block.data_ptr()
        del block
        again = _bytes(10 * MIB)
        assert again.data_ptr() == address  # the freed block, not new memory
    after = cpu_cache_stats()
    assert after["misses"] - before["misses"] == 1 and after["hits"] - before["hits"] == 1
    assert after["installed"] == 0 and after["scopes"] == 0
    del again
    with cpu_block_cache():
        assert _bytes(10 * MIB).data_ptr() == address  # kept between scopes


def test_small_requests_and_requests_outside_a_scope_bypass_the_cache():
    before = cpu_cache_stats()
    with cpu_block_cache():
        small = _bytes(cpu_cache_stats()["min_block_bytes"] - 1)
    outside = _bytes(10 * MIB)
    after = cpu_cache_stats()
    assert (after["hits"], after["misses"], after["reserved_bytes"]) == (
        before["hits"],
        before["misses"],
        before["reserved_bytes"],
    )
    del small, outside


def test_blocks_never_overlap_under_random_sizes_and_frees():
    """Each live tensor keeps its own fill value while others are allocated, split off, freed and
    merged around it (a wrong split or merge would hand out memory twice)."""
    rng = random.Random(0)
    live = {}
    with cpu_block_cache():
        for step in range(400):
            if live and rng.random() < 0.45:
                del live[rng.choice(list(live))]
                continue
            size = rng.choice([rng.randrange(1, 64) * 64 * 1024, rng.randrange(1, 40) * MIB])
            block = _bytes(size)
            block.fill_(step % 251)
            live[step] = block
            for key, tensor in rng.sample(list(live.items()), min(4, len(live))):
                assert tensor[0] == key % 251 and tensor[-1] == key % 251
    for key, tensor in live.items():
        assert bool((tensor == key % 251).all()), f"block of step {key} overwritten"
    stats = cpu_cache_stats()
    assert stats["hits"] > 0
    del block, tensor  # the loops' last references
    live.clear()
    assert cpu_cache_stats()["allocated_bytes"] == 0
    # Everything merged back into whole free segments: emptying returns all of it.
    assert empty_cpu_cache() == stats["reserved_bytes"]
    assert cpu_cache_stats()["reserved_bytes"] == 0


def test_freed_neighbours_merge_into_one_block():
    with cpu_block_cache():
        whole = _bytes(10 * MIB)
        base = whole.data_ptr()
        del whole
        first, second = _bytes(3 * MIB), _bytes(3 * MIB)  # split from the 10 MiB block
        assert {first.data_ptr(), second.data_ptr()} == {base, base + 3 * MIB}
        del first, second
        assert _bytes(10 * MIB).data_ptr() == base  # merged back: one block fits again
    assert cpu_cache_stats()["segments"] == 1


def test_fully_free_segments_are_returned_before_a_new_one_is_made():
    """Growing sizes (as videos of growing frame sizes would ask) do not pile up segments."""
    with cpu_block_cache():
        for mebibytes in (2, 4, 8, 16, 32):
            block = _bytes(mebibytes * MIB)
            del block
    stats = cpu_cache_stats()
    assert stats["segments"] == 1 and stats["reserved_bytes"] == 32 * MIB


def test_a_tensor_made_within_a_scope_may_be_freed_after_it():
    with cpu_block_cache():
        kept = _bytes(8 * MIB)
    assert cpu_cache_stats()["allocated_bytes"] == 8 * MIB
    del kept
    stats = cpu_cache_stats()
    assert stats["allocated_bytes"] == 0 and stats["cached_bytes"] == 8 * MIB


def test_scopes_nest_and_count_across_threads():
    errors = []
    barrier = threading.Barrier(3)

    def work(seed):
        try:
            with cpu_block_cache():
                barrier.wait()
                generator = torch.Generator().manual_seed(seed)
                for _ in range(20):
                    a = torch.rand(512, 1024, generator=generator)  # 2 MiB
                    b = a * 2
                    assert torch.equal(b / 2, a)
                barrier.wait()
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    barrier.wait()
    assert cpu_cache_stats()["scopes"] == 2
    with cpu_block_cache():
        assert cpu_cache_stats()["scopes"] == 3
    assert cpu_cache_stats()["installed"] == 1  # the threads' scopes are still open
    barrier.wait()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert cpu_cache_stats()["scopes"] == 0 and cpu_cache_stats()["installed"] == 0


def test_onednn_scratch_memory_through_the_cache():
    """oneDNN takes its scratch memory with raw_allocate / raw_deallocate: a convolution large
    enough to need some runs within the scope and gives the same result as outside."""
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 64, 96, 160, generator=generator).contiguous(
        memory_format=torch.channels_last
    )
    weight = torch.rand(64, 64, 3, 3, generator=generator).contiguous(
        memory_format=torch.channels_last
    )
    expected = torch.nn.functional.conv2d(frames, weight, padding=1)
    with cpu_block_cache():
        got = torch.nn.functional.conv2d(frames, weight, padding=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_disabled_or_unbuilt_does_nothing(monkeypatch):
    with cpu_block_cache(enabled=False) as installed:
        assert not installed and cpu_cache_stats()["installed"] == 0
    monkeypatch.setattr(cpu_cache, "_C", None)
    with cpu_block_cache() as installed:
        assert not installed
    assert cpu_cache_stats() == {"available": 0}
    assert empty_cpu_cache() == 0
    assert mask2former_ops.cpu_cache_stats is cpu_cache_stats


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_within_a_scope_starts_without_one():
    """A process forked within a scope (a DataLoader worker) must not inherit the parent's scope:
    its big tensors come from the default allocator, and blocks inherited from the parent are
    still freed correctly."""
    with cpu_block_cache():
        inherited = _bytes(4 * MIB).fill_(7)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status, never return to pytest
            status = 2
            try:
                torch.set_num_threads(1)  # as a DataLoader worker: the parent's OpenMP is gone
                stats = cpu_cache_stats()
                status = 0 if (stats["installed"], stats["scopes"]) == (0, 0) else 3
                _bytes(4 * MIB)  # from the default allocator: not counted by the cache
                status = status or (4 if cpu_cache_stats()["misses"] != stats["misses"] else 0)
                status = status or (5 if not bool((inherited == 7).all()) else 0)
                del inherited
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert cpu_cache_stats()["installed"] == 1  # the parent's scope is untouched
    assert os.waitstatus_to_exitcode(status) == 0
    del inherited


def test_a_request_the_system_refuses_raises_and_leaves_the_cache_usable():
    with cpu_block_cache():
        kept = _bytes(2 * MIB).fill_(3)
        before = cpu_cache_stats()
        with pytest.raises(RuntimeError, match="memory"):
            _bytes(1 << 44)  # 16 TiB: more than any test machine has
        after = cpu_cache_stats()
        assert (after["reserved_bytes"], after["allocated_bytes"]) == (
            before["reserved_bytes"],
            before["allocated_bytes"],
        )
        again = _bytes(2 * MIB).fill_(4)  # the lock was released, the cache still works
        assert bool((kept == 3).all()) and bool((again == 4).all())


def test_the_profiler_sees_the_cache_blocks():
    """torch.profiler(profile_memory=True) accounts for blocks from the cache as for the default
    allocator's: the allocating op shows the block's size."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as profile:  # fmt: skip
        with cpu_block_cache():
            block = torch.empty(8 * MIB, dtype=torch.uint8)
            del block
    usage = {event.key: event.cpu_memory_usage for event in profile.key_averages()}
    assert usage["aten::empty"] >= 8 * MIB
