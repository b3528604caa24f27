#pragma once
// jitgated inside a time namespace (issue 16, item 9): its CLOCK_BOOTTIME and
// CLOCK_MONOTONIC are shifted from the kernel's, which the BPF programs read
// (bpf_ktime_get_boot_ns ignores time namespaces), so every grant deadline it
// wrote would be off by the offset.
#include <optional>
#include <string>
#include <string_view>

namespace jg {

// The refusal for a /proc/self/timens_offsets text whose monotonic or
// boottime offset is not zero (one sentence), or nothing.  Lines are
// "monotonic SECS NANOS" and "boottime SECS NANOS" (before Linux 5.11 the
// clock ids "1" and "7"); a line it cannot read counts as an offset.
std::optional<std::string> timens_refusal(std::string_view offsets);

}  // namespace jg
