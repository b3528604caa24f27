// loop_wait_ms: how long jitgated's loop may sleep (daemon/event_loop.h):
// until the next grant ends, and at most until the ring is to be drained,
// every millisecond while records keep coming (the kernel holds wake-ups
// back within JG_RING_WAKE_GAP_NS, include/jitgate/abi.h).
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>

#include "daemon/event_loop.h"
#include "jitgate/abi.h"

namespace test_event_loop {

using jg::kRingBusyWaitMs;
using jg::loop_wait_ms;

constexpr std::uint64_t kMs = 1000000;
// A held-back record is read before the kernel would wake anyone again, and
// the loop stays busy longer than the kernel holds wake-ups back (the gap
// plus a tick of the coarse clock at HZ=100).
static_assert(kRingBusyWaitMs * kMs <= JG_RING_WAKE_GAP_NS);
static_assert(jg::kRingBusyMs * kMs >= JG_RING_WAKE_GAP_NS + 10 * kMs);

TEST_SUITE("event loop") {
    TEST_CASE("idle: the drain period, or less when a grant ends sooner") {
        CHECK(loop_wait_ms(std::nullopt, 0) == JG_RING_DRAIN_MS);
        CHECK(loop_wait_ms(1000 * kMs, 0) == JG_RING_DRAIN_MS);
        CHECK(loop_wait_ms(7 * kMs, 0) == 7);
        CHECK(loop_wait_ms(7 * kMs + 1, 0) == 8);  // rounded up: never woken before the end
        CHECK(loop_wait_ms(5 * kMs, 5 * kMs) == 0);
        CHECK(loop_wait_ms(5 * kMs, 6 * kMs) == 0);
    }

    TEST_CASE("records came a moment ago: the ring is read again within a millisecond") {
        CHECK(loop_wait_ms(std::nullopt, 0, true) == kRingBusyWaitMs);
        CHECK(loop_wait_ms(1000 * kMs, 0, true) == kRingBusyWaitMs);
        CHECK(loop_wait_ms(5 * kMs, 5 * kMs, true) == 0);
    }
}

}  // namespace test_event_loop
