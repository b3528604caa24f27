// The sock_addr hooks (jg_connect4 and the rest), attached: BPF_PROG_TEST_RUN
// cannot run them, so real sockets do, in a child process inside a child
// cgroup of the test's own (attached.h).  The skeleton's maps are private to
// this process.
#define DOCTEST_CONFIG_IMPLEMENT
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <iterator>
#include <string>

#include "attached.h"
#include "core/clock.h"
#include "core/keys.h"
#include "fixture.h"
#include "jitgate.skel.h"
#include "suite_main.h"

namespace {

constexpr std::uint16_t kPort = 25441;   // protected for UDP, granted to kUid
constexpr std::uint16_t kOther = 25442;  // protected for UDP, granted to nobody
constexpr std::uint32_t kUid = 4343, kStranger = 4344;

jitgate_bpf* g_skel = nullptr;

// ---- a UDP socket that connects again: the same flow records nothing, and
// the grant map decides every time (never the socket's cached admission).
// The child's steps, one result byte each ('y' as described, 'n' not, 'e'
// the step could not be made), in this order.
const char* const kSteps[] = {
    "under a grant: connect() admitted, one allow counted, the socket's storage names the grant",
    "connect() again to the same port, three times: admitted, no allow counted (the same UDP flow)",
    "sendto() the same port: sent, no allow counted (the same UDP flow)",
    "another protected port without a grant: refused",
    "another uid on the same socket: refused",
    "the grant replaced by another (new id): admitted, one allow counted (a new flow), storage updated",
    "grant gone from jg_grants_uid, grant_gen unchanged: refused (the map decides, not the cache)",
    "a grant ending in 3 s: admitted, one allow counted",
    "well past its end: refused by the clock",
};
constexpr const char* kWant = "yyynnynyn";

std::uint64_t allows() { return jgtest::counter(g_skel, JG_CNT_ALLOW); }

// 'y' when connect() succeeded, 'n' when the hook refused it (EPERM).
char connects(int fd, std::uint16_t port) {
    const sockaddr_in to = jgtest::loopback(port);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0) return 'y';
    return errno == EPERM ? 'n' : 'e';
}

// The socket's storage as the hook leaves it: the grant of its last recorded
// flow and that grant's end (the egress backstop's cache, which names its
// own principal and port, its lock free).
bool cached(int fd, std::uint64_t grant_id, std::uint64_t until) {
    jg_sk_state st{};
    return bpf_map_lookup_elem(bpf_map__fd(g_skel->maps.jg_sk_state), &fd, &st) == 0 && st.uid == kUid &&
           st.grant_id == grant_id && st.cached_until == until && st.cached_uid == kUid &&
           st.cached_port == kPort && st.cached_proto == JG_PROTO_UDP && st.cache_seq % 2 == 0;
}

// The connecting task's real uid is what the hooks read; the effective uid
// stays root, so the child can still change the maps between steps.
bool be(std::uint32_t uid) { return setresuid(uid, 0, 0) == 0; }

// In the child (root, in its own netns and the cgroup).
std::string reconnect_steps() {
    const int grants = bpf_map__fd(g_skel->maps.jg_grants_uid);
    const auto key = jg::make_uid_key(kUid, kPort, jg::Proto::Udp);
    auto set_grant = [&](std::uint64_t until, std::uint64_t id) {
        const auto v = jg::make_grant_val(until, id);
        return bpf_map_update_elem(grants, &key, &v, BPF_ANY) == 0 && jgtest::grants_changed(g_skel);
    };
    // A step that admits and counts `allowed` new flows, with the storage
    // naming grant `id` until `until`.
    auto admitted = [&](int fd, std::uint64_t allowed, std::uint64_t id, std::uint64_t until) {
        const std::uint64_t before = allows();
        return connects(fd, kPort) == 'y' && allows() == before + allowed && cached(fd, id, until) ? 'y'
                                                                                                   : 'n';
    };
    std::string got;
    // A receiver, so that no ICMP error comes back to the sending socket.
    const int srv = socket(AF_INET, SOCK_DGRAM, 0), fd = socket(AF_INET, SOCK_DGRAM, 0);
    const sockaddr_in at = jgtest::loopback(kPort);
    std::uint64_t until = jgtest::hour_from_now();
    if (srv < 0 || bind(srv, reinterpret_cast<const sockaddr*>(&at), sizeof(at)) != 0 || fd < 0 ||
        !be(kUid) || !jgtest::protect(g_skel, kPort, 0, JG_PF_PROTECTED) ||
        !jgtest::protect(g_skel, kOther, 0, JG_PF_PROTECTED) || !set_grant(until, 42))
        return got;
    got += admitted(fd, 1, 42, until);
    const std::uint64_t before = allows();
    bool all = true;
    for (int i = 0; i < 3; ++i) all = connects(fd, kPort) == 'y' && all;
    got += all && allows() == before ? 'y' : 'n';
    got +=
        sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&at), sizeof(at)) == 1 && allows() == before
            ? 'y'
            : 'n';
    got += connects(fd, kOther);
    if (!be(kStranger)) return got;
    got += connects(fd, kPort);
    if (!be(kUid)) return got;
    until = jgtest::hour_from_now();
    if (!set_grant(until, 43)) return got;
    got += admitted(fd, 1, 43, until);
    if (bpf_map_delete_elem(grants, &key) != 0) return got;
    got += connects(fd, kPort);
    until = jg::boottime_ns() + 3000ULL * 1000000ULL;
    if (!set_grant(until, 44)) return got;
    got += admitted(fd, 1, 44, until);
    // Too slow to have tested before the end: the step says 'e', not 'n'.
    if (jg::boottime_ns() >= until) got.back() = 'e';
    for (int i = 0; i < 50 && jg::boottime_ns() < until + 500000000ULL; ++i) usleep(100000);
    if (jg::boottime_ns() <= until) return got;
    got += connects(fd, kPort);
    close(fd);
    close(srv);
    return got;
}

TEST_CASE("attached: a UDP socket connecting again is the same flow; the grant map decides every time") {
    const auto run = jgtest::run_attached("sock-addr", {g_skel->progs.jg_connect4, g_skel->progs.jg_sendmsg4},
                                          [](auto emit) {
                                              std::string got = reconnect_steps();
                                              got.resize(std::size(kSteps), 'e');
                                              for (char c : got) emit(c);
                                          });
    jgtest::clear_map(g_skel->maps.jg_grants_uid);
    REQUIRE_MESSAGE(run.why.empty(), run.why);
    CHECK_MESSAGE(run.clean(), "child status " << run.status);
    REQUIRE(run.got.size() == std::size(kSteps));
    for (std::size_t i = 0; i < run.got.size(); ++i) {
        const std::string what = kSteps[i];
        CAPTURE(what);
        CHECK(run.got[i] == kWant[i]);
    }
}

}  // namespace

int main(int argc, char** argv) { return jgtest::run_with_skeleton(argc, argv, g_skel); }
