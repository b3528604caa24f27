// jitgate_bench --make-store DB N PORT: a state store holding N active
// remote grants (one host each, 2001:db8::0:1 on) on PORT/tcp, an hour long,
// requested by root, written through the daemon's own Store, so that a
// daemon started on it loads N grants into its maps (figure 8, daemon RSS
// with grants).  Remote hosts: grants of local users would need N accounts,
// and the daemon ends the grants of accounts that do not exist.
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/keys.h"
#include "core/store.h"
#include "daemon/system.h"

namespace jgbench {

int make_store(const char* db, const char* count, const char* port_text) {
    const long n = std::atol(count), port = std::atol(port_text);
    if (n < 1 || n > 4000000 || port < 1 || port > 65535) {
        std::fprintf(stderr, "jitgate_bench: --make-store DB N PORT (N 1..4000000, PORT 1..65535)\n");
        return 2;
    }
    auto store = jg::Store::open(db);
    if (!store) {
        std::fprintf(stderr, "jitgate_bench: %s\n", store.error().c_str());
        return 1;
    }
    const std::string boot = jg::boot_id();
    const std::int64_t now_us = jg::wall_us();
    const std::uint64_t now_boot = jg::boottime_ns();
    jg::Result<bool> done = store->begin();
    for (long i = 0; done && i < n; ++i) {
        const auto id = store->next_id();
        if (!id) {
            done = jg::err(id.error());
            break;
        }
        jg::GrantRow g;
        g.id = *id;
        g.request_id = 0;
        g.uid = 0;
        g.user = "root";
        const auto src =
            jg::parse_source(fmt::format("2001:db8::{:x}:{:x}", (i + 1) >> 16, (i + 1) & 0xffff));
        if (!src) {
            done = jg::err(src.error());
            break;
        }
        g.src = jg::format_source(*src);
        g.port = std::uint16_t(port);
        g.proto = jg::Proto::Tcp;
        g.start_us = now_us;
        g.expires_us = now_us + 3600LL * 1000000;
        g.expires_boot_ns = now_boot + 3600ULL * 1000000000ULL;
        g.boot_id = boot;
        g.state = "active";
        g.reason = "benchmark";
        g.approvers = {"bench"};
        done = store->put_grant(g);
    }
    if (done) done = store->commit();
    if (!done) {
        std::fprintf(stderr, "jitgate_bench: %s\n", done.error().c_str());
        return 1;
    }
    return 0;
}

}  // namespace jgbench
