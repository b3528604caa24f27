// The etcd client against a private etcd (tests/fleet/run_with_etcd.py
// passes JG_ETCD_URL, and JG_ETCD_AUTH_URL with auth enabled), and against a
// fake server on loopback for what a real etcd never sends.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "fleet/etcd_client.h"

using namespace jg::fleet;
using Clock = std::chrono::steady_clock;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::unique_ptr<EtcdClient> client(std::vector<std::string> eps = {}) {
    EtcdOptions o;
    o.endpoints = eps.empty() ? std::vector<std::string>{env("JG_ETCD_URL")} : eps;
    auto c = EtcdClient::open(o);
    REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error()));
    return std::move(*c);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A loopback port nothing listens on (bound, then closed).
int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Compaction is not part of the client: POST /v3/kv/compaction directly.
void compact(std::int64_t revision) {
    CURL* c = curl_easy_init();
    std::string url = env("JG_ETCD_URL") + "/v3/kv/compaction";
    std::string body = "{\"revision\":\"" + std::to_string(revision) + "\",\"physical\":true}";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(
        c, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
    CHECK(curl_easy_perform(c) == CURLE_OK);
    curl_easy_cleanup(c);
}

// A fake "etcd" on loopback that answers every connection with `reply`
// (raw HTTP), then keeps it open until the test ends.
struct FakeServer {
    int fd = -1, port = 0;
    std::thread t;
    std::atomic<bool> done{false};
    explicit FakeServer(std::string reply) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        ::listen(fd, 8);
        t = std::thread([this, reply] {
            std::vector<int> conns;
            while (!done) {
                int c = ::accept(fd, nullptr, nullptr);
                if (c < 0) break;
                char buf[4096];
                (void)::recv(c, buf, sizeof buf, 0);  // the request (small)
                (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
                conns.push_back(c);
            }
            for (int c : conns) ::close(c);
        });
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
    ~FakeServer() {
        done = true;
        ::shutdown(fd, SHUT_RDWR);
        t.join();
        ::close(fd);
    }
};

std::string http_ok(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("prefix_end increments the last byte that can be") {
    CHECK(prefix_end("/a/") == "/a0");
    CHECK(prefix_end("ab") == "ac");
    CHECK(prefix_end(std::string("a\xff\xff", 3)) == "b");
    CHECK(prefix_end(std::string("\xff", 1)) == std::string(1, '\0'));
    CHECK(prefix_end("") == std::string(1, '\0'));
}

TEST_CASE("open refuses bad endpoints and unreadable files") {
    EtcdOptions o;
    CHECK(!EtcdClient::open(o).ok());
    o.endpoints = {"127.0.0.1:2379"};
    auto r = EtcdClient::open(o);
    REQUIRE(!r.ok());
    CHECK(r.error().find("not an http:// or https:// URL") != std::string::npos);
    o.endpoints = {"https://127.0.0.1:2379"};
    o.ca_file = "/nonexistent/ca.pem";
    CHECK(!EtcdClient::open(o).ok());
}

TEST_CASE("put, get and del") {
    auto c = client();
    auto rev = c->put("/t/kv/a", "one");
    REQUIRE_MESSAGE(rev.ok(), (rev.ok() ? "" : rev.error()));
    CHECK(*rev > 0);
    std::int64_t seen = 0;
    auto g = c->get("/t/kv/a", &seen);
    REQUIRE(g.ok());
    REQUIRE(g->has_value());
    CHECK((*g)->value == "one");
    CHECK((*g)->mod_revision == *rev);
    CHECK((*g)->create_revision == *rev);
    CHECK((*g)->version == 1);
    CHECK(seen >= *rev);
    auto d = c->del("/t/kv/a");
    REQUIRE(d.ok());
    CHECK(*d > *rev);
    auto gone = c->get("/t/kv/a");
    REQUIRE(gone.ok());
    CHECK(!gone->has_value());
    CHECK(c->endpoint() == env("JG_ETCD_URL"));
}

TEST_CASE("binary keys and values round-trip") {
    auto c = client();
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += char(i);
    std::string key = std::string("/t/bin/\xff\x00\x01", 10);
    REQUIRE(c->put(key, bytes).ok());
    auto g = c->get(key);
    REQUIRE(g.ok());
    REQUIRE(g->has_value());
    CHECK((*g)->key == key);
    CHECK((*g)->value == bytes);
    REQUIRE(c->put("/t/bin/empty", "").ok());
    auto e = c->get("/t/bin/empty");
    REQUIRE(e.ok());
    REQUIRE(e->has_value());
    CHECK((*e)->value.empty());
    auto all = c->get_prefix(std::string("/t/bin/\xff", 8));
    REQUIRE(all.ok());
    REQUIRE(all->kvs.size() == 1);
    CHECK(all->kvs[0].value == bytes);
}

TEST_CASE("get_prefix reads every page at the first page's revision") {
    auto c = client();
    for (int i = 0; i < 25; ++i) REQUIRE(c->put("/t/page/k" + std::to_string(100 + i), "v1").ok());
    REQUIRE(c->put("/t/pagf", "outside").ok());  // just past the prefix's range
    auto first = c->get_prefix("/t/page/", 0, 10);
    REQUIRE(first.ok());
    CHECK(first->kvs.size() == 25);
    const std::int64_t at = first->revision;
    // Later writes, in the range of the later pages, must not show in a read at `at`.
    for (int i = 0; i < 25; ++i) REQUIRE(c->put("/t/page/k" + std::to_string(100 + i), "v2").ok());
    REQUIRE(c->put("/t/page/z-new", "v2").ok());
    auto old = c->get_prefix("/t/page/", at, 10);
    REQUIRE(old.ok());
    CHECK(old->revision == at);
    REQUIRE(old->kvs.size() == 25);
    for (const auto& kv : old->kvs) CHECK(kv.value == "v1");
    CHECK(old->kvs.front().key == "/t/page/k100");
    CHECK(old->kvs.back().key == "/t/page/k124");

    // A read of the newest revision while a writer appends keys behind it:
    // nothing newer than the first page's revision appears.
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        auto w = client();
        for (int i = 0; i < 400 && !stop; ++i) (void)w->put("/t/page/zz" + std::to_string(1000 + i), "w");
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto live = c->get_prefix("/t/page/", 0, 2);
    stop = true;
    writer.join();
    REQUIRE(live.ok());
    for (const auto& kv : live->kvs) CHECK(kv.mod_revision <= live->revision);
    auto again = c->get_prefix("/t/page/", live->revision, 1000);
    REQUIRE(again.ok());
    CHECK(again->kvs.size() == live->kvs.size());
}

TEST_CASE("10,000 keys of 500 bytes read in well under a second") {
    auto c = client();
    const std::string value(500, 'x');
    for (int batch = 0; batch < 100; ++batch) {  // 100 keys a transaction (etcd allows 128 operations)
        std::vector<TxnOp> ops;
        for (int i = 0; i < 100; ++i) {
            char key[64];
            std::snprintf(key, sizeof key, "/t/big/%012d", batch * 100 + i);
            ops.push_back({TxnOp::Kind::Put, key, value, 0});
        }
        auto t = c->txn({}, ops);
        REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error()));
    }
    auto t0 = Clock::now();
    auto all = c->get_prefix("/t/big/");
    double s = seconds_since(t0);
    REQUIRE(all.ok());
    CHECK(all->kvs.size() == 10000);
    MESSAGE("10,000 keys read in " << s << " s");
    // Well under 1 s on loopback (~0.5 s, most of it etcd's gateway); margin
    // for a loaded 2-core VM.  An unoptimised or sanitized build (CI's
    // build-asan) only has to show nothing is quadratic.
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
    CHECK(s < 10.0);
#else
    CHECK(s < 2.0);
#endif
}

TEST_CASE("txn: create-if-absent and compare-and-swap on the mod revision") {
    auto c = client();
    Compare absent{"/t/txn/a", Compare::Target::Create, 0, ""};
    auto t1 = c->txn({absent}, {{TxnOp::Kind::Put, "/t/txn/a", "first", 0}},
                     {{TxnOp::Kind::Put, "/t/txn/lost", "1", 0}});
    REQUIRE(t1.ok());
    CHECK(t1->succeeded);
    auto t2 = c->txn({absent}, {{TxnOp::Kind::Put, "/t/txn/a", "second", 0}},
                     {{TxnOp::Kind::Put, "/t/txn/lost", "1", 0}});
    REQUIRE(t2.ok());
    CHECK(!t2->succeeded);
    CHECK(t2->revision > t1->revision);  // the failure branch wrote
    CHECK((*c->get("/t/txn/a"))->value == "first");
    CHECK(c->get("/t/txn/lost")->has_value());

    Compare at_t1{"/t/txn/a", Compare::Target::Mod, t1->revision, ""};
    auto swap = c->txn(
        {at_t1}, {{TxnOp::Kind::Put, "/t/txn/a", "swapped", 0}, {TxnOp::Kind::Delete, "/t/txn/lost", "", 0}});
    REQUIRE(swap.ok());
    CHECK(swap->succeeded);
    auto stale = c->txn({at_t1}, {{TxnOp::Kind::Put, "/t/txn/a", "stale", 0}});
    REQUIRE(stale.ok());
    CHECK(!stale->succeeded);
    CHECK((*c->get("/t/txn/a"))->value == "swapped");
    CHECK(!c->get("/t/txn/lost")->has_value());
    Compare value{"/t/txn/a", Compare::Target::Value, 0, "swapped"};
    Compare version{"/t/txn/a", Compare::Target::Version, 2, ""};
    auto both = c->txn({value, version}, {});
    REQUIRE(both.ok());
    CHECK(both->succeeded);
}

TEST_CASE("leases: keepalive, revoke takes the key, expiry") {
    auto c = client();
    auto id = c->lease_grant(30);
    REQUIRE_MESSAGE(id.ok(), (id.ok() ? "" : id.error()));
    REQUIRE(c->put("/t/lease/node", "up", *id).ok());
    CHECK((*c->get("/t/lease/node"))->lease == *id);
    auto k = c->lease_keepalive(*id);
    REQUIRE_MESSAGE(k.ok(), (k.ok() ? "" : k.error()));
    CHECK(*k);
    auto r = c->lease_revoke(*id);
    REQUIRE(r.ok());
    CHECK(*r);
    CHECK(!c->get("/t/lease/node")->has_value());
    auto after = c->lease_keepalive(*id);
    REQUIRE(after.ok());
    CHECK(!*after);
    auto again = c->lease_revoke(*id);
    REQUIRE(again.ok());
    CHECK(!*again);

    auto short_lease = c->lease_grant(2);
    REQUIRE(short_lease.ok());
    REQUIRE(c->put("/t/lease/short", "up", *short_lease).ok());
    auto t0 = Clock::now();
    bool gone = false;
    while (!gone && seconds_since(t0) < 15) {  // etcd's TTL is at least ~2 s; bounded wait
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        gone = !c->get("/t/lease/short")->has_value();
    }
    CHECK(gone);
    auto expired = c->lease_keepalive(*short_lease);
    REQUIRE(expired.ok());
    CHECK(!*expired);
}

TEST_CASE("watch: puts and deletes in order, then stops on request") {
    auto c = client();
    auto base = c->put("/t/watchx", "outside");  // not under the prefix
    REQUIRE(base.ok());
    std::mutex mu;
    std::vector<WatchEvent> seen;
    std::vector<std::int64_t> header_revs;
    std::atomic<bool> stop{false};
    WatchEnd end;
    std::thread w([&] {
        auto wc = client();
        end = wc->watch(
            "/t/watch/", *base + 1,
            [&](std::int64_t rev, std::vector<WatchEvent>& evs) {
                std::lock_guard<std::mutex> l(mu);
                header_revs.push_back(rev);
                for (auto& e : evs) seen.push_back(e);
            },
            stop, 10000);
    });
    REQUIRE(c->put("/t/watch/a", "1").ok());
    REQUIRE(c->put("/t/watch/b", std::string("\x00\xff", 2)).ok());
    REQUIRE(c->put("/t/watchx2", "outside").ok());
    auto last = c->del("/t/watch/a");
    REQUIRE(last.ok());
    auto t0 = Clock::now();
    for (;;) {
        {
            std::lock_guard<std::mutex> l(mu);
            if (seen.size() >= 3 || seconds_since(t0) > 10) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto asked = Clock::now();
    stop = true;
    w.join();
    double stop_s = seconds_since(asked);
    CHECK(end.error.empty());
    CHECK(end.compact_revision == 0);
    MESSAGE("the watch stopped " << stop_s << " s after it was asked to");
    CHECK(stop_s < 1.0);  // checked every 100 ms
    std::lock_guard<std::mutex> l(mu);
    REQUIRE(seen.size() == 3);
    CHECK((!seen[0].deleted && seen[0].kv.key == "/t/watch/a" && seen[0].kv.value == "1"));
    CHECK((!seen[1].deleted && seen[1].kv.key == "/t/watch/b" &&
           seen[1].kv.value == std::string("\x00\xff", 2)));
    CHECK((seen[2].deleted && seen[2].kv.key == "/t/watch/a" && seen[2].kv.mod_revision == *last));
    CHECK(header_revs.back() == *last);
}

TEST_CASE("watch from a compacted revision reports compact_revision") {
    auto c = client();
    REQUIRE(c->put("/t/compact/a", "1").ok());
    auto rev = c->put("/t/compact/a", "2");
    REQUIRE(rev.ok());
    compact(*rev);
    std::atomic<bool> stop{false};
    auto t0 = Clock::now();
    WatchEnd end = c->watch(
        "/t/compact/", 1, [](std::int64_t, std::vector<WatchEvent>&) {}, stop, 10000);
    CHECK(end.compact_revision >= *rev);
    CHECK(seconds_since(t0) < 5);
    auto old = c->get_prefix("/t/compact/", 1);
    REQUIRE(!old.ok());
    CHECK(old.error().find("compacted") != std::string::npos);
}

TEST_CASE("an unreachable etcd fails fast with the endpoint named") {
    const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port());
    auto c = client({dead});
    auto t0 = Clock::now();
    auto g = c->get("/t/x");
    REQUIRE(!g.ok());
    CHECK(seconds_since(t0) < 2.5);
    CHECK(g.error().find("etcd at " + dead + " is unreachable: ") == 0);
    MESSAGE(g.error());
    std::atomic<bool> stop{false};
    t0 = Clock::now();
    WatchEnd end = c->watch(
        "/t/", 0, [](std::int64_t, std::vector<WatchEvent>&) {}, stop, 10000);
    CHECK(seconds_since(t0) < 2.5);
    CHECK(end.error.find(dead + " is unreachable") != std::string::npos);
}

TEST_CASE("failover: the second endpoint serves when the first is dead") {
    const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port());
    auto c = client({dead, env("JG_ETCD_URL")});
    REQUIRE(c->put("/t/failover", "ok").ok());
    CHECK((*c->get("/t/failover"))->value == "ok");
    CHECK(c->endpoint() == env("JG_ETCD_URL"));
    auto both = client({dead, "http://127.0.0.1:" + std::to_string(closed_port())});
    auto g = both->get("/t/failover");
    REQUIRE(!g.ok());
    CHECK(g.error().find(dead) != std::string::npos);
    CHECK(g.error().find("; http://127.0.0.1:") != std::string::npos);
}

TEST_CASE("etcd's refusals become one sentence with its message") {
    auto c = client();
    auto g = c->get_prefix("/t/", 1LL << 40);  // a future revision
    REQUIRE(!g.ok());
    CHECK(g.error().find(
              "refused /v3/kv/range: \"etcdserver: mvcc: required revision is a future revision\"") !=
          std::string::npos);
}

TEST_CASE("malformed answers are errors, never a crash") {
    SUBCASE("not JSON") {
        FakeServer s(http_ok("<html>hello</html>"));
        auto g = client({s.url()})->get("/k");
        REQUIRE(!g.ok());
        CHECK(g.error().find("not a JSON object") != std::string::npos);
    }
    SUBCASE("a server that accepts and never answers: bounded by timeout_ms") {
        FakeServer s("");
        EtcdOptions o;
        o.endpoints = {s.url()};
        o.timeout_ms = 1000;
        auto c = EtcdClient::open(o);
        REQUIRE(c.ok());
        auto t0 = Clock::now();
        auto g = (*c)->get("/k");
        REQUIRE(!g.ok());
        CHECK(seconds_since(t0) < 3);
        CHECK(g.error().find("timed out") != std::string::npos);
        MESSAGE(g.error());
    }
    SUBCASE("an HTTP error without etcd's error object") {
        FakeServer s("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}");
        auto g = client({s.url()})->get("/k");
        REQUIRE(!g.ok());
        CHECK(g.error().find("HTTP 503") != std::string::npos);
    }
    SUBCASE("a key that is not a string") {
        FakeServer s(http_ok(R"({"header":{"revision":"3"},"kvs":[{"key":5}]})"));
        CHECK(!client({s.url()})->get("/k").ok());
    }
    SUBCASE("a revision that is not a number") {
        FakeServer s(http_ok(R"({"header":{"revision":"3x"}})"));
        CHECK(!client({s.url()})->put("/k", "v").ok());
    }
    SUBCASE("pages that do not move forward end the read") {
        // Connection: close: a new connection (a new accept) for each page.
        std::string reply = http_ok(R"({"header":{"revision":"3"},"kvs":[{"key":"L2s="}],"more":true})");
        FakeServer s(reply.insert(reply.find("\r\n") + 2, "Connection: close\r\n"));
        auto r = client({s.url()})->get_prefix("/k", 0, 1);
        REQUIRE(!r.ok());
        CHECK(r.error().find("before the page's start") != std::string::npos);
    }
    SUBCASE("bad base64") {
        FakeServer s(http_ok(R"({"header":{"revision":"3"},"kvs":[{"key":"!!!"}]})"));
        CHECK(!client({s.url()})->get_prefix("/k").ok());
    }
    SUBCASE("an error with control characters is escaped") {
        std::string body = R"({"error":"bad\u001b[31m","code":3})";
        FakeServer s("HTTP/1.1 400 Bad Request\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body);
        auto g = client({s.url()})->get("/k");
        REQUIRE(!g.ok());
        CHECK(g.error().find("\x1b") == std::string::npos);
        CHECK(g.error().find("bad\\x1b[31m") != std::string::npos);
    }
    SUBCASE("a watch stream that goes quiet counts as failed") {
        FakeServer s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        std::atomic<bool> stop{false};
        auto t0 = Clock::now();
        WatchEnd end = client({s.url()})->watch(
            "/k", 0, [](std::int64_t, std::vector<WatchEvent>&) {}, stop, 500);
        CHECK(end.error.find("sent nothing on the watch") != std::string::npos);
        CHECK(seconds_since(t0) < 3);
    }
    SUBCASE("a watch message split across chunks, then garbage") {
        std::string a = R"({"result":{"header":{"revision":"2"},"created":true}})";
        std::string b1 = R"({"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L2s=",)";
        std::string b2 = "\"mod_revision\":\"3\"}}]}}\n[1,2]\n";
        auto chunk = [](const std::string& x) {
            char n[16];
            std::snprintf(n, sizeof n, "%zx", x.size());
            return std::string(n) + "\r\n" + x + "\r\n";
        };
        FakeServer s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(a + "\n") + chunk(b1) +
                     chunk(b2));
        std::atomic<bool> stop{false};
        std::vector<WatchEvent> got;
        WatchEnd end = client({s.url()})->watch(
            "/k", 0,
            [&](std::int64_t, std::vector<WatchEvent>& evs) {
                got.insert(got.end(), evs.begin(), evs.end());
            },
            stop, 3000);
        REQUIRE(got.size() == 1);
        CHECK(got[0].kv.key == "/k");
        CHECK(end.error.find("not {\"result\"") != std::string::npos);
    }
}

TEST_CASE("auth: the right password works, a wrong one is a clear error") {
    const std::string url = env("JG_ETCD_AUTH_URL");
    REQUIRE(!url.empty());
    EtcdOptions o;
    o.endpoints = {url};
    o.user = "root";
    o.password = env("JG_ETCD_AUTH_PASSWORD");
    auto c = EtcdClient::open(o);
    REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error()));
    auto rev = (*c)->put("/t/auth", "yes");
    REQUIRE(rev.ok());
    CHECK((*(*c)->get("/t/auth"))->value == "yes");
    // The private etcd drops tokens unused for 1 s: each call below first
    // meets "invalid auth token", authenticates again and retries once.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    auto again = (*c)->get("/t/auth");
    REQUIRE_MESSAGE(again.ok(), (again.ok() ? "" : again.error()));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    std::atomic<bool> stop{false};
    int events = 0;
    WatchEnd end = (*c)->watch(
        "/t/auth", *rev,
        [&](std::int64_t, std::vector<WatchEvent>& evs) {
            events += int(evs.size());
            stop = true;
        },
        stop, 5000);
    CHECK(end.error.empty());
    CHECK(events == 1);

    o.password = "wrong";
    auto bad = EtcdClient::open(o);
    REQUIRE(!bad.ok());
    MESSAGE(bad.error());
    CHECK(bad.error().find("authentication failed") != std::string::npos);

    auto a = client({url})->get("/t/auth");
    REQUIRE(!a.ok());
    MESSAGE(a.error());
    CHECK(a.error().find("user name is empty") != std::string::npos);
}

TEST_CASE("TLS: verified server, client certificate; no way around verification") {
    EtcdOptions o;
    o.endpoints = {env("JG_ETCD_TLS_URL")};
    REQUIRE(o.endpoints[0].rfind("https://", 0) == 0);
    o.ca_file = env("JG_ETCD_TLS_CA");
    o.cert_file = env("JG_ETCD_TLS_CERT");
    o.key_file = env("JG_ETCD_TLS_KEY");
    auto c = EtcdClient::open(o);
    REQUIRE(c.ok());
    auto rev = (*c)->put("/t/tls", "ok");
    REQUIRE_MESSAGE(rev.ok(), (rev.ok() ? "" : rev.error()));
    CHECK((*(*c)->get("/t/tls"))->value == "ok");

    EtcdOptions system_cas = o;  // the test CA is not among the system's
    system_cas.ca_file.clear();
    auto unverified = (*EtcdClient::open(system_cas))->get("/t/tls");
    REQUIRE(!unverified.ok());
    MESSAGE(unverified.error());
    CHECK(unverified.error().find("is unreachable") != std::string::npos);
    CHECK(unverified.error().find("check [fleet] ca_file") != std::string::npos);

    EtcdOptions no_cert = o;  // etcd asks for a client certificate
    no_cert.cert_file.clear();
    no_cert.key_file.clear();
    auto anonymous = (*EtcdClient::open(no_cert))->get("/t/tls");
    REQUIRE(!anonymous.ok());
    MESSAGE(anonymous.error());
}
