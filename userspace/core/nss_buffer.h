#pragma once
// The buffer of a reentrant user or group lookup (getpwnam_r, getpwuid_r,
// getgrnam_r, ...), grown while the lookup answers ERANGE.  A fixed buffer
// made a group of a few thousand members (sssd, LDAP, or a long /etc/group
// line) look as if it did not exist: its @group approvers silently counted
// for nothing.  Header only: core/ stays free of the host, the lookups stay
// with their callers.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <vector>

namespace jg {

// The first size: what sysconf(`hint`) suggests, never less than 16 KiB.
inline constexpr std::size_t kNssBufferMin = std::size_t(16) << 10;
// The last: a group of about a million members.  A lookup that needs more
// fails (ERANGE) rather than take unbounded memory.
inline constexpr std::size_t kNssBufferMax = std::size_t(16) << 20;

// Calls lookup(data, size), which returns what the _r function returned (0,
// or an errno value), with `buf`, doubling it while the answer is ERANGE,
// up to kNssBufferMax.  Returns the last answer.  The entry the lookup
// filled in points into `buf`: keep `buf` while the entry is used.
template <class Lookup>
int nss_lookup(std::vector<char>& buf, int hint, Lookup&& lookup) {
    const long suggested = sysconf(hint);
    std::size_t size = suggested > 0 ? std::size_t(suggested) : kNssBufferMin;
    size = std::clamp(size, kNssBufferMin, kNssBufferMax);
    for (;;) {
        buf.resize(size);
        const int rc = lookup(buf.data(), buf.size());
        if (rc != ERANGE || size >= kNssBufferMax) return rc;
        size = std::min(size * 2, kNssBufferMax);
    }
}

}  // namespace jg
