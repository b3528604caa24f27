#pragma once
// This host's addresses, local routes and interfaces, now and as they change
// (rtnetlink), so that a protected port is closed on addresses added after
// start too and XDP reaches interfaces that appear later.
#include <optional>
#include <utility>
#include <vector>

#include "core/keys.h"
#include "core/result.h"
#include "util/unique_fd.h"

namespace jg {

std::vector<Addr16> current_addresses();
// Prefixes routed to this host that are not interface addresses: `local`
// routes (AnyIP, "ip route add local 198.51.100.128/25 dev lo") of any
// table, and IPv6 anycast routes.  Interface addresses' own /32 and /128
// local routes come back too (harmless: current_addresses() has them).
// nullopt when a dump did not complete (keep the last list: fail closed).
std::optional<std::vector<SourceNet>> current_local_routes();

class AddrWatcher {
public:
    static Result<AddrWatcher> open();
    int fd() const { return fd_.get(); }
    // Empties the socket; the caller then re-reads current_addresses().
    void drain();

private:
    explicit AddrWatcher(unique_fd fd) : fd_(std::move(fd)) {}
    unique_fd fd_;
};

}  // namespace jg
