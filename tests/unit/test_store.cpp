// Store: src columns for remote principals, active_grant per principal, kind
// (break-glass), and the migration of schema-1 (no src) and schema-2 (no kind)
// databases written by earlier releases.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/store.h"
#include "helpers.h"

namespace test_store {
using namespace jg;
using namespace jg::testing;

namespace {

// A raw SQLite connection, for building old databases and looking inside new ones.
class Raw {
public:
    explicit Raw(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK); }
    ~Raw() { sqlite3_close(db_); }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;

    void exec(const std::string& sql) {
        char* msg = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
        INFO("sqlite: ", msg ? msg : "");
        sqlite3_free(msg);
        REQUIRE(rc == SQLITE_OK);
    }
    // Every row of `sql`, each column as text, joined by '|'.
    std::vector<std::string> rows(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
        std::vector<std::string> out;
        while (sqlite3_step(s) == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(s); ++c) {
                auto t = sqlite3_column_text(s, c);
                // Appended piece by piece: a literal prepended to a temporary
                // string is a false -Wrestrict at -O3 with GCC 12 (GCC bug 105329).
                if (c) row += '|';
                if (t) row += reinterpret_cast<const char*>(t);
            }
            out.push_back(row);
        }
        sqlite3_finalize(s);
        return out;
    }
    std::string one(const std::string& sql) {
        auto r = rows(sql);
        REQUIRE(r.size() == 1);
        return r[0];
    }

private:
    sqlite3* db_ = nullptr;
};

// The schema of the first release, verbatim.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_id', 1), ('schema', 1);
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, user TEXT NOT NULL, port INTEGER NOT NULL,
  proto INTEGER NOT NULL, duration_s INTEGER NOT NULL, reason TEXT NOT NULL, ticket TEXT NOT NULL,
  state TEXT NOT NULL, created_us INTEGER NOT NULL, deadline_us INTEGER NOT NULL,
  decided_us INTEGER NOT NULL, decided_by TEXT NOT NULL, decision_reason TEXT NOT NULL,
  grant_id INTEGER NOT NULL, approvers TEXT NOT NULL, shortest_s INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE TABLE IF NOT EXISTS grants (
  id INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, uid INTEGER NOT NULL, user TEXT NOT NULL,
  port INTEGER NOT NULL, proto INTEGER NOT NULL, start_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL, expires_boot_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,
  state TEXT NOT NULL, ended_us INTEGER NOT NULL, ended_by TEXT NOT NULL, reason TEXT NOT NULL,
  ticket TEXT NOT NULL, approvers TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS grants_state ON grants(state);
CREATE INDEX IF NOT EXISTS grants_due ON grants(state, expires_boot_ns);
CREATE INDEX IF NOT EXISTS grants_key ON grants(state, uid, port, proto);
CREATE INDEX IF NOT EXISTS requests_due ON requests(state, deadline_us);
)sql";

// The schema of the second release (src, no kind), verbatim, with its indexes.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_id', 1), ('schema', 2);
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, user TEXT NOT NULL, port INTEGER NOT NULL,
  proto INTEGER NOT NULL, duration_s INTEGER NOT NULL, reason TEXT NOT NULL, ticket TEXT NOT NULL,
  state TEXT NOT NULL, created_us INTEGER NOT NULL, deadline_us INTEGER NOT NULL,
  decided_us INTEGER NOT NULL, decided_by TEXT NOT NULL, decision_reason TEXT NOT NULL,
  grant_id INTEGER NOT NULL, approvers TEXT NOT NULL, shortest_s INTEGER NOT NULL,
  src TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE TABLE IF NOT EXISTS grants (
  id INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, uid INTEGER NOT NULL, user TEXT NOT NULL,
  port INTEGER NOT NULL, proto INTEGER NOT NULL, start_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL, expires_boot_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,
  state TEXT NOT NULL, ended_us INTEGER NOT NULL, ended_by TEXT NOT NULL, reason TEXT NOT NULL,
  ticket TEXT NOT NULL, approvers TEXT NOT NULL, src TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS grants_state ON grants(state);
CREATE INDEX IF NOT EXISTS grants_due ON grants(state, expires_boot_ns);
CREATE INDEX IF NOT EXISTS requests_due ON requests(state, deadline_us);
CREATE INDEX IF NOT EXISTS grants_uid ON grants(state, uid, port, proto, src);
CREATE INDEX IF NOT EXISTS grants_src ON grants(state, src, port, proto);
)sql";

// type, notnull and default of one column, as "TEXT 1 ''".
std::string column_decl(Raw& raw, const std::string& table, const std::string& column) {
    return raw.one("SELECT type || ' ' || \"notnull\" || ' ' || dflt_value FROM pragma_table_info('" + table +
                   "') WHERE name = '" + column + "'");
}

GrantRow grant_row(std::int64_t id, std::uint32_t uid, const std::string& src, std::uint16_t port = 5432,
                   Proto proto = Proto::Tcp, const std::string& state = "active") {
    GrantRow g;
    g.id = id;
    g.request_id = id - 1;
    g.uid = uid;
    g.user = fmt::format("u{}", uid);  // not "u" + std::to_string(): GCC bug 105329 at -O3
    g.port = port;
    g.proto = proto;
    g.start_us = 1;
    g.expires_us = 2;
    g.expires_boot_ns = 3;
    g.boot_id = "boot";
    g.state = state;
    g.approvers = {"alice"};
    g.src = src;
    return g;
}

Store open_memory() {
    auto s = Store::open(":memory:");
    REQUIRE(s.ok());
    return std::move(*s);
}

}  // namespace

TEST_SUITE("store") {
    TEST_CASE("src is stored and read back for requests and grants") {
        Store st = open_memory();
        RequestRow r;
        r.id = must(st.next_id());
        r.uid = 1000;
        r.user = "rita";
        r.port = 5432;
        r.state = "pending";
        r.src = "203.0.113.0/24";
        must(st.put_request(r));
        RequestRow local = r;
        local.id = must(st.next_id());
        local.src.clear();
        must(st.put_request(local));
        CHECK(must(st.request(r.id))->src == "203.0.113.0/24");
        CHECK(must(st.request(local.id))->src.empty());
        CHECK(must(st.requests("pending", 10)).size() == 2);

        must(st.put_grant(grant_row(10, 1000, "2001:db8::7")));
        must(st.put_grant(grant_row(11, 1000, "")));
        CHECK(must(st.grant(10))->src == "2001:db8::7");
        CHECK(must(st.grant(11))->src.empty());
        CHECK(must(st.grant(10))->approvers == std::vector<std::string>{"alice"});
    }

    TEST_CASE("active_grant: a local user by uid, a remote source by address whoever asked") {
        Store st = open_memory();
        must(st.put_grant(grant_row(10, 1000, "")));             // rita, local
        must(st.put_grant(grant_row(12, 1000, "203.0.113.7")));  // rita, for a peer
        must(st.put_grant(grant_row(14, 2000, "198.51.100.0/24")));
        must(st.put_grant(grant_row(16, 2000, "2001:db8::7", 5432, Proto::Tcp, "revoked")));

        // Local: only grants without src count, so rita's remote grant is not her local one.
        auto l = must(st.active_grant(1000, "", 5432, Proto::Tcp));
        REQUIRE(l);
        CHECK(l->id == 10);
        CHECK_FALSE(must(st.active_grant(2000, "", 5432, Proto::Tcp)).has_value());
        CHECK_FALSE(must(st.active_grant(1000, "", 5432, Proto::Udp)).has_value());
        CHECK_FALSE(must(st.active_grant(1000, "", 5433, Proto::Tcp)).has_value());

        // Remote: by source, port and protocol; the uid does not matter.
        for (std::uint32_t uid : {1000u, 2000u, 0u}) {
            CAPTURE(uid);
            auto r = must(st.active_grant(uid, "203.0.113.7", 5432, Proto::Tcp));
            REQUIRE(r);
            CHECK(r->id == 12);
            auto n = must(st.active_grant(uid, "198.51.100.0/24", 5432, Proto::Tcp));
            REQUIRE(n);
            CHECK(n->id == 14);
        }
        CHECK_FALSE(must(st.active_grant(1000, "203.0.113.8", 5432, Proto::Tcp)).has_value());
        CHECK_FALSE(must(st.active_grant(1000, "203.0.113.7", 5432, Proto::Udp)).has_value());
        CHECK_FALSE(must(st.active_grant(1000, "2001:db8::7", 5432, Proto::Tcp)).has_value());  // revoked
    }

    TEST_CASE("a schema-1 database gains src and kind columns, schema 3 and the new indexes") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        {
            Raw old(path);
            old.exec(kSchemaV1);
            old.exec("UPDATE meta SET value = 40 WHERE key = 'next_id';");
            old.exec(
                "INSERT INTO requests VALUES (30, 1000, 'rita', 5432, 6, 1800, 'fix', 'INC-1', 'granted', 1, "
                "2, "
                "3, 'alice', '', 31, '[\"alice\"]', 0);");
            old.exec(
                "INSERT INTO grants VALUES (31, 30, 1000, 'rita', 5432, 6, 3, 1803, 99, 'boot-A', 'active', "
                "0, "
                "'', 'fix', 'INC-1', '[\"alice\"]');");
        }
        {
            auto st = Store::open(path);
            INFO("open: ", st.ok() ? "" : st.error());
            REQUIRE(st.ok());
            auto r = must(st->request(30));
            REQUIRE(r);
            CHECK(r->src.empty());
            CHECK(r->user == "rita");
            CHECK(r->ticket == "INC-1");
            CHECK(r->grant_id == 31);
            CHECK(r->approvers == std::vector<std::string>{"alice"});
            auto g = must(st->grant(31));
            REQUIRE(g);
            CHECK(g->src.empty());
            CHECK(g->state == "active");
            CHECK(g->expires_boot_ns == 99u);
            CHECK(g->approvers == std::vector<std::string>{"alice"});
            // The old grant is the local grant of uid 1000, as before.
            auto a = must(st->active_grant(1000, "", 5432, Proto::Tcp));
            REQUIRE(a);
            CHECK(a->id == 31);
            CHECK(must(st->next_id()) == 40);  // the id sequence carries on
            must(st->put_grant(grant_row(42, 1000, "203.0.113.7")));
            CHECK(must(st->active_grant(7, "203.0.113.7", 5432, Proto::Tcp))->id == 42);
        }
        Raw raw(path);
        CHECK(raw.one("SELECT value FROM meta WHERE key = 'schema'") == "6");
        for (const char* table : {"requests", "grants"})
            for (const char* column : {"src", "kind"}) {
                CAPTURE(table);
                CAPTURE(column);
                CHECK(column_decl(raw, table, column) == "TEXT 1 ''");
            }
        CHECK(raw.one("SELECT src || '|' || kind FROM grants WHERE id = 31") == "|");
        const auto indexes = raw.rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
            "'grants' AND name NOT LIKE 'sqlite_%' ORDER BY name");
        CHECK(indexes == std::vector<std::string>{"grants_due", "grants_ended", "grants_kind", "grants_src",
                                                  "grants_state", "grants_uid", "grants_warn"});
        CHECK(raw.rows("SELECT name FROM pragma_index_info('grants_src') ORDER BY seqno") ==
              std::vector<std::string>{"state", "src", "port", "proto"});
        CHECK(raw.rows("SELECT name FROM pragma_index_info('grants_uid') ORDER BY seqno") ==
              std::vector<std::string>{"state", "uid", "port", "proto", "src"});

        // The lookups active_grant makes are served by those indexes.
        const std::string remote = raw.one(
            "EXPLAIN QUERY PLAN SELECT * FROM grants WHERE state = 'active' AND src = '203.0.113.7' AND port "
            "= 5432 AND proto = 6 ORDER BY id DESC LIMIT 1");
        INFO("plan: ", remote);
        CHECK(remote.find("USING INDEX grants_src") != std::string::npos);
        const std::string local = raw.one(
            "EXPLAIN QUERY PLAN SELECT * FROM grants WHERE state = 'active' AND uid = 1000 AND port = 5432 "
            "AND proto = 6 AND src = '' ORDER BY id DESC LIMIT 1");
        INFO("plan: ", local);
        CHECK(local.find("USING INDEX grants_uid") != std::string::npos);
    }

    TEST_CASE("opening a migrated or new database again changes nothing") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        {
            auto st = Store::open(path);
            REQUIRE(st.ok());
            must(st->put_grant(grant_row(5, 1000, "203.0.113.7")));
        }
        {
            auto st = Store::open(path);
            REQUIRE(st.ok());
            CHECK(must(st->grant(5))->src == "203.0.113.7");
        }
        Raw raw(path);
        CHECK(raw.one("SELECT value FROM meta WHERE key = 'schema'") == "6");
        CHECK(raw.one("SELECT COUNT(*) FROM pragma_table_info('grants') WHERE name = 'src'") == "1");
        CHECK(raw.one("SELECT COUNT(*) FROM pragma_table_info('grants') WHERE name = 'kind'") == "1");
        CHECK(raw.one("SELECT COUNT(*) FROM pragma_table_info('requests') WHERE name = 'kind'") == "1");
    }

    TEST_CASE("a database from a later release is refused with a sentence") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        {
            auto st = Store::open(path);
            REQUIRE(st.ok());
        }
        {
            Raw raw(path);
            raw.exec("UPDATE meta SET value = 7 WHERE key = 'schema';");
        }
        auto st = Store::open(path);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error() == "the state database " + path +
                                " has schema 7, newer than this jitgated understands (6): run the jitgated "
                                "that wrote it, or move the database away");
    }

    TEST_CASE("kind is stored and read back; grants_of_kind: that kind, since a time, newest first") {
        Store st = open_memory();
        RequestRow r;
        r.id = must(st.next_id());
        r.user = "rita";
        r.state = "granted";
        r.kind = kBreakGlass;
        must(st.put_request(r));
        CHECK(must(st.request(r.id))->kind == "break_glass");
        RequestRow plain = r;
        plain.id = must(st.next_id());
        plain.kind.clear();
        must(st.put_request(plain));
        CHECK(must(st.request(plain.id))->kind.empty());

        auto put = [&](std::int64_t id, std::int64_t start_us, const std::string& kind, const char* state) {
            GrantRow g = grant_row(id, 1000, "", 5432, Proto::Tcp, state);
            g.start_us = start_us;
            g.kind = kind;
            must(st.put_grant(g));
        };
        put(10, 100, kBreakGlass, "expired");
        put(11, 200, "", "active");
        put(12, 300, kBreakGlass, "revoked");
        put(13, 300, kBreakGlass, "active");   // same start: the larger id first
        put(14, 50, kBreakGlass, "replaced");  // before `since`
        CHECK(must(st.grant(13))->kind == "break_glass");
        CHECK(must(st.grant(11))->kind.empty());

        auto ids = [](const std::vector<GrantRow>& gs) {
            std::vector<std::int64_t> out;
            for (const auto& g : gs) out.push_back(g.id);
            return out;
        };
        CHECK(ids(must(st.grants_of_kind(kBreakGlass, 100, 10))) == std::vector<std::int64_t>{13, 12, 10});
        CHECK(ids(must(st.grants_of_kind(kBreakGlass, 101, 10))) == std::vector<std::int64_t>{13, 12});
        CHECK(ids(must(st.grants_of_kind(kBreakGlass, 0, 2))) == std::vector<std::int64_t>{13, 12});
        CHECK(ids(must(st.grants_of_kind(kBreakGlass, 0, 10))) == std::vector<std::int64_t>{13, 12, 10, 14});
        CHECK(ids(must(st.grants_of_kind("", 0, 10))) == std::vector<std::int64_t>{11});
    }

    TEST_CASE("a schema-2 database (no kind) gains kind columns; its rows keep working") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        {
            Raw old(path);
            old.exec(kSchemaV2);
            old.exec("UPDATE meta SET value = 50 WHERE key = 'next_id';");
            old.exec(
                "INSERT INTO requests VALUES (40, 1000, 'rita', 5432, 6, 1800, 'fix', '', 'granted', 1, 2, "
                "3, "
                "'alice', '', 41, '[\"alice\"]', 0, '203.0.113.7');");
            old.exec(
                "INSERT INTO grants VALUES (41, 40, 1000, 'rita', 5432, 6, 3, 1803, 99, 'boot-A', 'active', "
                "0, "
                "'', 'fix', '', '[\"alice\"]', '203.0.113.7');");
        }
        {
            auto st = Store::open(path);
            INFO("open: ", st.ok() ? "" : st.error());
            REQUIRE(st.ok());
            auto r = must(st->request(40));
            REQUIRE(r);
            CHECK(r->kind.empty());
            CHECK(r->src == "203.0.113.7");
            CHECK(r->grant_id == 41);
            auto g = must(st->grant(41));
            REQUIRE(g);
            CHECK(g->kind.empty());
            CHECK(g->state == "active");
            CHECK(g->src == "203.0.113.7");
            CHECK(must(st->active_grant(0, "203.0.113.7", 5432, Proto::Tcp))->id == 41);
            CHECK(must(st->grants_of_kind(kBreakGlass, 0, 10)).empty());
            CHECK(must(st->next_id()) == 50);

            GrantRow bg = grant_row(51, 1000, "");
            bg.kind = kBreakGlass;
            bg.start_us = 7;
            must(st->put_grant(bg));
            auto found = must(st->grants_of_kind(kBreakGlass, 0, 10));
            REQUIRE(found.size() == 1);
            CHECK(found[0].id == 51);
        }
        Raw raw(path);
        CHECK(raw.one("SELECT value FROM meta WHERE key = 'schema'") == "6");
        CHECK(column_decl(raw, "requests", "kind") == "TEXT 1 ''");
        CHECK(column_decl(raw, "grants", "kind") == "TEXT 1 ''");
        CHECK(raw.one("SELECT kind FROM grants WHERE id = 51") == "break_glass");
        CHECK(raw.one("SELECT kind FROM requests WHERE id = 40") == "");
        const std::string plan = raw.one(
            "EXPLAIN QUERY PLAN SELECT * FROM grants WHERE kind = 'break_glass' AND start_us >= 0 ORDER BY "
            "start_us DESC, id DESC LIMIT 100");
        INFO("plan: ", plan);
        CHECK(plan.find("USING INDEX grants_kind") != std::string::npos);
    }

    TEST_CASE("each_grant: the rows grants() returns, one at a time, newest first, up to the limit") {
        Store st = open_memory();
        for (std::int64_t id = 10; id < 15; ++id)
            must(st.put_grant(grant_row(id, 1000 + std::uint32_t(id), "")));
        must(st.put_grant(grant_row(15, 2000, "", 5432, Proto::Tcp, "revoked")));
        std::vector<std::int64_t> seen;
        must(st.each_grant("active", 3, [&](GrantRow& g) { seen.push_back(g.id); }));
        CHECK(seen == std::vector<std::int64_t>{14, 13, 12});
        seen.clear();
        must(st.each_grant("all", 100, [&](GrantRow& g) { seen.push_back(g.id); }));
        CHECK(seen.size() == 6);
        CHECK(must(st.grants("active", 100)).size() == 5);
    }

    TEST_CASE(
        "rebase_grants: another boot's active grants get this boot's clock by the wall-clock time left") {
        Store st = open_memory();
        GrantRow left = grant_row(1, 1000, "");  // 30 s left by the wall clock
        left.boot_id = "old";
        left.expires_us = 1'000'000 + 30'000'000;
        GrantRow gone = grant_row(2, 1001, "");  // ended while the machine was off
        gone.boot_id = "old";
        gone.expires_us = 500'000;
        GrantRow here = grant_row(3, 1002, "");  // this boot: untouched
        here.boot_id = "new";
        here.expires_boot_ns = 77;
        GrantRow ended = grant_row(4, 1003, "", 5432, Proto::Tcp, "expired");
        ended.boot_id = "old";
        for (const auto& g : {left, gone, here, ended}) must(st.put_grant(g));
        CHECK(must(st.rebase_grants("new", 5'000'000'000ULL, 1'000'000)) == 2);
        CHECK(must(st.grant(1))->expires_boot_ns == 5'000'000'000ULL + 30'000'000'000ULL);
        CHECK(must(st.grant(1))->boot_id == "new");
        CHECK(must(st.grant(2))->expires_boot_ns == 5'000'000'000ULL);
        CHECK(must(st.grant(3))->expires_boot_ns == 77);
        CHECK(must(st.grant(4))->boot_id == "old");
        CHECK(must(st.rebase_grants("new", 9, 9)) == 0);
    }

    TEST_CASE("sync makes the commits durable; a store opened again sees them") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        {
            auto st = Store::open(path);
            REQUIRE(st.ok());
            must(st->sync());  // nothing written yet beyond the schema: fine either way
            must(st->begin());
            must(st->put_grant(grant_row(7, 1000, "")));
            must(st->commit());
            must(st->sync());
            must(st->sync());  // nothing new: no work, no error
        }
        auto st = Store::open(path);
        REQUIRE(st.ok());
        CHECK(must(st->grant(7)));
        Raw raw(path);
        CHECK(raw.one("PRAGMA journal_mode") == "wal");
    }

    TEST_CASE("kept statements: the same query inside its own cursor gets a fresh statement") {
        Store st = open_memory();
        for (std::int64_t id = 1; id <= 3; ++id)
            must(st.put_grant(grant_row(id, 1000 + std::uint32_t(id), "")));
        std::size_t inner = 0, outer = 0;
        must(st.each_grant("active", 10, [&](GrantRow&) {
            ++outer;
            must(st.each_grant("active", 10, [&](GrantRow&) { ++inner; }));
        }));
        CHECK(outer == 3);
        CHECK(inner == 9);
        CHECK(must(st.grants("active", 10)).size() == 3);  // the kept one, reset after the cursor
    }

    TEST_CASE("an SQLite error is a method's result, never an exception") {
        TempDir tmp;
        const std::string path = tmp.file("state.db");
        auto st = Store::open(path);
        REQUIRE(st.ok());
        must(st->put_grant(grant_row(7, 1000, "")));
        Raw(path).exec("DROP TABLE grants;");
        Result<std::optional<GrantRow>> g = err("not run");
        CHECK_NOTHROW(g = st->grant(7));
        REQUIRE_FALSE(g.ok());
        CHECK(g.error().find("no such table: grants") != std::string::npos);
        CHECK_FALSE(st->put_grant(grant_row(8, 1000, "")).ok());
        CHECK_FALSE(st->each_grant("active", 10, [](GrantRow&) {}).ok());
        CHECK_FALSE(st->count_grants("active").ok());
        // Inside a transaction: the failed write leaves it for abandon().
        REQUIRE(st->begin().ok());
        REQUIRE(st->next_id().ok());
        CHECK_FALSE(st->put_grant(grant_row(9, 1000, "")).ok());
        st->abandon();
        CHECK(st->begin().ok());  // none left open
        CHECK(st->rollback().ok());
        CHECK_FALSE(st->commit().ok());  // and none to commit
    }
    // store_wal.cpp: a decision's commit must not pay SQLite's checkpoint.
    TEST_CASE("commits leave the write-ahead log to checkpoint(); past the hard mark a commit checkpoints") {
        TempDir dir;
        const std::string path = dir.file("state.db");
        const auto db_bytes = [&] { return std::filesystem::file_size(path); };
        std::int64_t rows = 0;
        {
            auto st = Store::open(path);
            REQUIRE(st.ok());
            std::int64_t next = 1;
            // One commit of 20 grants (about 15 frames).
            const auto commit_some = [&] {
                must(st->begin());
                for (int i = 0; i < 20; ++i, ++next)
                    must(st->put_grant(grant_row(next, 1000 + std::uint32_t(next), "")));
                must(st->commit());
            };
            CHECK(must(st->checkpoint()) == 0);  // nothing to do yet
            const auto before = db_bytes();
            for (int i = 0; i < 1000 && st->wal_frames() < Store::kCheckpointFrames; ++i) commit_some();
            REQUIRE(st->wal_frames() >= Store::kCheckpointFrames);
            CHECK(st->wal_frames() < Store::kWalHardFrames);
            CHECK(db_bytes() == before);  // SQLite's own checkpoint would have grown it by now

            // A reader's snapshot holds the frames after it back.
            {
                Raw reader(path);
                reader.exec("BEGIN; SELECT count(*) FROM grants;");
                commit_some();
                const int held = st->wal_frames();
                const int part = must(st->checkpoint());
                CHECK(part >= Store::kCheckpointFrames);
                CHECK(part < held);
                CHECK(st->wal_frames() == held);  // still due
                CHECK(db_bytes() > before);
                reader.exec("COMMIT;");
                CHECK(must(st->checkpoint()) == held);
            }
            // The log started again in checkpoint() itself (its one small write).
            CHECK(st->wal_frames() > 0);
            CHECK(st->wal_frames() < 10);
            commit_some();
            CHECK(st->wal_frames() < Store::kCheckpointFrames);
            CHECK(must(st->checkpoint()) == 0);  // below the mark: left for later

            // Without ticks, the commit that reaches the hard mark checkpoints;
            // the file shrinks to journal_size_limit when the log starts again.
            const auto copied_bytes = db_bytes();
            int most = 0;
            for (int i = 0; i < 10000 && st->wal_frames() >= most && most < 2 * Store::kWalHardFrames; ++i) {
                most = std::max(most, st->wal_frames());
                commit_some();
            }
            CHECK(most >= Store::kCheckpointFrames);
            CHECK(most < Store::kWalHardFrames);
            CHECK(st->wal_frames() == 0);  // it fell: that commit checkpointed it all
            CHECK(db_bytes() > copied_bytes);
            CHECK(std::filesystem::file_size(path + "-wal") > 4u * 1024 * 1024);
            commit_some();
            CHECK(st->wal_frames() < 100);  // started again
            CHECK(std::filesystem::file_size(path + "-wal") <= 4u * 1024 * 1024);
            rows = must(st->count_grants("active"));
            CHECK(rows == next - 1);
        }
        auto again = Store::open(path);
        REQUIRE(again.ok());
        CHECK(must(again->count_grants("active")) == rows);
    }
}  // TEST_SUITE

}  // namespace test_store
