// Test-only: a global operator new that counts calls while g_counting is set, for the
// zero-allocation tests of daemon/ (daemon_server_alloc_test, facts_adapter_test,
// daemon_alloc_test). Include it in exactly one translation unit of a test binary: it defines
// the replaceable global allocation functions.
//
// Sanitizer builds own the allocator (replacing it confuses ASan's new/delete pairing), so there
// nothing is replaced and the counting tests skip themselves.
#ifndef GATEHOUSE_DAEMON_COUNTING_NEW_TEST_H_
#define GATEHOUSE_DAEMON_COUNTING_NEW_TEST_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocs{0};
}  // namespace

#ifndef GATEHOUSE_SANITIZER
// noinline: GCC's -Wmismatched-new-delete fires when it sees malloc/free through inlined
// replacements.
__attribute__((noinline)) void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete[](void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

#endif  // GATEHOUSE_DAEMON_COUNTING_NEW_TEST_H_
