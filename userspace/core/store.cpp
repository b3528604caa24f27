#include "core/store.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/store_stmt.h"
#include "core/text.h"

namespace jg {

using namespace store_internal;

namespace {

// Names come from NSS and may hold any bytes: replaced, never a throw.
std::string list_to_json(const std::vector<std::string>& v) { return json_text(nlohmann::json(v)); }
std::vector<std::string> list_from_json(const std::string& s) {
    auto j = nlohmann::json::parse(s, nullptr, false);
    std::vector<std::string> out;
    if (j.is_array())
        for (auto& e : j)
            if (e.is_string()) out.push_back(e.get<std::string>());
    return out;
}

// Schema 1 had no src columns, schema 2 no kind columns, schema 3 no
// approver_uids, deadline_boot_ns and boot_id in requests, schema 4 no
// warn_boot_ns in grants nor extends in requests, schema 5 no
// approver_token_groups; Store::open adds them to an older database
// (kAddedColumns).
constexpr std::int64_t kSchemaVersion = 6;

// Columns added after schema 1, with their type and default: migrate() adds
// the missing ones (also to a database kSchema just created).
struct AddedColumn {
    const char* table;
    const char* column;
    const char* decl;
};
constexpr AddedColumn kAddedColumns[] = {
    {"requests", "src", "TEXT NOT NULL DEFAULT ''"},
    {"grants", "src", "TEXT NOT NULL DEFAULT ''"},
    {"requests", "kind", "TEXT NOT NULL DEFAULT ''"},
    {"grants", "kind", "TEXT NOT NULL DEFAULT ''"},
    {"requests", "approver_uids", "TEXT NOT NULL DEFAULT '[]'"},
    {"requests", "deadline_boot_ns", "INTEGER NOT NULL DEFAULT 0"},
    {"requests", "boot_id", "TEXT NOT NULL DEFAULT ''"},
    {"grants", "warn_boot_ns", "INTEGER NOT NULL DEFAULT 0"},
    {"requests", "extends", "INTEGER NOT NULL DEFAULT 0"},
    {"requests", "approver_token_groups", "TEXT NOT NULL DEFAULT '[]'"},
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_id', 1);
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, user TEXT NOT NULL, port INTEGER NOT NULL,
  proto INTEGER NOT NULL, duration_s INTEGER NOT NULL, reason TEXT NOT NULL, ticket TEXT NOT NULL,
  state TEXT NOT NULL, created_us INTEGER NOT NULL, deadline_us INTEGER NOT NULL,
  decided_us INTEGER NOT NULL, decided_by TEXT NOT NULL, decision_reason TEXT NOT NULL,
  grant_id INTEGER NOT NULL, approvers TEXT NOT NULL, shortest_s INTEGER NOT NULL,
  src TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE TABLE IF NOT EXISTS grants (
  id INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, uid INTEGER NOT NULL, user TEXT NOT NULL,
  port INTEGER NOT NULL, proto INTEGER NOT NULL, start_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL, expires_boot_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,
  state TEXT NOT NULL, ended_us INTEGER NOT NULL, ended_by TEXT NOT NULL, reason TEXT NOT NULL,
  ticket TEXT NOT NULL, approvers TEXT NOT NULL, src TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS grants_state ON grants(state);
CREATE INDEX IF NOT EXISTS grants_due ON grants(state, expires_boot_ns);
CREATE INDEX IF NOT EXISTS requests_due ON requests(state, deadline_us);
CREATE TABLE IF NOT EXISTS fleet_verified (key TEXT PRIMARY KEY) WITHOUT ROWID;
)sql";

// After the migration, since they name src and kind. grants_uid serves
// active_grant for local users, grants_src for remote sources; grants_key
// (schema 1, without src) would compete with grants_uid for the local lookup.
// grants_kind serves grants_of_kind (the break-glass grants for review).
constexpr const char* kIndexes = R"sql(
DROP INDEX IF EXISTS grants_key;
CREATE INDEX IF NOT EXISTS grants_uid ON grants(state, uid, port, proto, src);
CREATE INDEX IF NOT EXISTS grants_src ON grants(state, src, port, proto);
CREATE INDEX IF NOT EXISTS grants_kind ON grants(kind, start_us);
CREATE INDEX IF NOT EXISTS requests_uid ON requests(state, uid, port, proto);
CREATE INDEX IF NOT EXISTS requests_decided ON requests(decided_us);
CREATE INDEX IF NOT EXISTS grants_ended ON grants(ended_us);
CREATE INDEX IF NOT EXISTS grants_warn ON grants(state, warn_boot_ns);
)sql";

std::vector<std::uint32_t> uids_from_json(const std::string& s) {
    auto j = nlohmann::json::parse(s, nullptr, false);
    std::vector<std::uint32_t> out;
    if (j.is_array())
        for (auto& e : j)
            if (e.is_number_unsigned() && e.get<std::uint64_t>() <= UINT32_MAX)
                out.push_back(e.get<std::uint32_t>());
    return out;
}

bool has_column(sqlite3* db, const char* table, const char* column) {
    Stmt s(db, "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?");
    s.bind(1, std::string(table)).bind(2, std::string(column));
    return s.step() && s.i64(0) > 0;
}

std::int64_t schema_version(sqlite3* db) {
    Stmt s(db, "SELECT value FROM meta WHERE key = 'schema'");
    return s.step() ? s.i64(0) : 0;
}

// [null | ["group", ...], ...]: anything else reads as null (host groups).
std::vector<std::optional<std::vector<std::string>>> token_groups_from_json(const std::string& s) {
    auto j = nlohmann::json::parse(s, nullptr, false);
    std::vector<std::optional<std::vector<std::string>>> out;
    if (!j.is_array()) return out;
    for (auto& e : j) {
        if (!e.is_array()) {
            out.emplace_back(std::nullopt);
            continue;
        }
        std::vector<std::string> groups;
        for (auto& g : e)
            if (g.is_string()) groups.push_back(g.get<std::string>());
        out.emplace_back(std::move(groups));
    }
    return out;
}

std::string token_groups_to_json(const std::vector<std::optional<std::vector<std::string>>>& v) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : v) j.push_back(e ? nlohmann::json(*e) : nlohmann::json(nullptr));
    return j.dump();
}

}  // namespace

namespace store_internal {

const char* const kRequestCols =
    "id, uid, user, port, proto, duration_s, reason, ticket, state, created_us, deadline_us, "
    "decided_us, decided_by, decision_reason, grant_id, approvers, shortest_s, src, kind, "
    "approver_uids, deadline_boot_ns, boot_id, extends, approver_token_groups";
const char* const kGrantCols =
    "id, request_id, uid, user, port, proto, start_us, expires_us, expires_boot_ns, boot_id, "
    "state, ended_us, ended_by, reason, ticket, approvers, src, kind, warn_boot_ns";

RequestRow read_request(Stmt& s) {
    RequestRow r;
    r.id = s.i64(0);
    r.uid = static_cast<std::uint32_t>(s.i64(1));
    r.user = s.text(2);
    r.port = static_cast<std::uint16_t>(s.i64(3));
    r.proto = static_cast<Proto>(s.i64(4));
    r.duration_s = s.i64(5);
    r.reason = s.text(6);
    r.ticket = s.text(7);
    r.state = s.text(8);
    r.created_us = s.i64(9);
    r.deadline_us = s.i64(10);
    r.decided_us = s.i64(11);
    r.decided_by = s.text(12);
    r.decision_reason = s.text(13);
    r.grant_id = s.i64(14);
    r.approvers = list_from_json(s.text(15));
    r.shortest_s = s.i64(16);
    r.src = s.text(17);
    r.kind = s.text(18);
    r.approver_uids = uids_from_json(s.text(19));
    r.deadline_boot_ns = static_cast<std::uint64_t>(s.i64(20));
    r.boot_id = s.text(21);
    r.extends = s.i64(22);
    r.approver_token_groups = token_groups_from_json(s.text(23));
    return r;
}

GrantRow read_grant(Stmt& s) {
    GrantRow g;
    g.id = s.i64(0);
    g.request_id = s.i64(1);
    g.uid = static_cast<std::uint32_t>(s.i64(2));
    g.user = s.text(3);
    g.port = static_cast<std::uint16_t>(s.i64(4));
    g.proto = static_cast<Proto>(s.i64(5));
    g.start_us = s.i64(6);
    g.expires_us = s.i64(7);
    g.expires_boot_ns = static_cast<std::uint64_t>(s.i64(8));
    g.boot_id = s.text(9);
    g.state = s.text(10);
    g.ended_us = s.i64(11);
    g.ended_by = s.text(12);
    g.reason = s.text(13);
    g.ticket = s.text(14);
    g.approvers = list_from_json(s.text(15));
    g.src = s.text(16);
    g.kind = s.text(17);
    g.warn_boot_ns = static_cast<std::uint64_t>(s.i64(18));
    return g;
}

}  // namespace store_internal

void Store::migrate() {
    exec("BEGIN IMMEDIATE;");
    try {
        for (const auto& c : kAddedColumns)
            if (!has_column(db_, c.table, c.column))
                exec(fmt::format("ALTER TABLE {} ADD COLUMN {} {};", c.table, c.column, c.decl).c_str());
        exec(fmt::format("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', {});", kSchemaVersion)
                 .c_str());
        exec(kIndexes);
        exec("COMMIT;");
    } catch (...) {
        abandon();  // SQLite may have rolled back already
        throw;
    }
}

Result<Store> Store::open(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(
            path.c_str(), &db,
            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
            nullptr) != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return err(fmt::format("cannot open the state database {}: {}", path, msg));
    }
    Store s(db);
    try {
        s.exec("PRAGMA journal_mode=WAL;");
        s.watch_wal();
        // A burst (or a late tick) may grow the log to kWalHardFrames; the
        // file shrinks back to this when the log starts again.
        s.exec("PRAGMA journal_size_limit=4194304;");
        // A commit is written to the WAL but not fsynced at once: the grant
        // reaches the map without waiting for the disk.  sync() makes every
        // commit durable before the daemon answers; what a power failure can
        // still take back is a change nobody was told of, and a lost grant
        // fails closed (start-up reconcile removes map entries the store does
        // not know; a reboot empties the maps anyway).
        s.exec("PRAGMA synchronous=NORMAL;");
        // The daemon's working set is a few rows at a time; start-up reads
        // every active grant once, through a cursor.  A small page cache
        // keeps its memory from growing with the number of grants.
        s.exec("PRAGMA cache_size=-512;");
        s.exec("PRAGMA busy_timeout=5000;");
        s.exec(kSchema);
        if (const std::int64_t v = schema_version(s.db_); v > kSchemaVersion)
            return err(fmt::format(
                "the state database {} has schema {}, newer than this jitgated understands ({}): run the "
                "jitgated that wrote it, or move the database away",
                path, v, kSchemaVersion));
        s.migrate();
    } catch (const std::exception& e) {
        return err(fmt::format("cannot initialise the state database {}: {}", path, e.what()));
    }
    return s;
}

sqlite3_stmt* StmtCache::get(const std::string& sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return sqlite3_stmt_busy(it->second) ? nullptr : it->second;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("sqlite prepare: {}", sqlite3_errmsg(db)));
    stmts.emplace(sql, st);
    return st;
}

void StmtCache::clear() {
    for (auto& [sql, st] : stmts) sqlite3_finalize(st);
    stmts.clear();
}

Store::Store(Store&& o) noexcept
    : db_(o.db_),
      stmts_(std::move(o.stmts_)),
      synced_changes_(o.synced_changes_),
      wal_frames_(std::move(o.wal_frames_)) {
    o.db_ = nullptr;
    o.stmts_ = {};
}
Store& Store::operator=(Store&& o) noexcept {
    if (this != &o) {
        stmts_.clear();
        unwatch_wal();
        sqlite3_close(db_);
        db_ = o.db_;
        stmts_ = std::move(o.stmts_);
        synced_changes_ = o.synced_changes_;
        wal_frames_ = std::move(o.wal_frames_);
        o.db_ = nullptr;
        o.stmts_ = {};
    }
    return *this;
}
Store::~Store() {
    stmts_.clear();
    unwatch_wal();
    sqlite3_close(db_);
}

void Store::exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string m = msg ? msg : "unknown error";
        sqlite3_free(msg);
        throw std::runtime_error(fmt::format("sqlite: {}", m));
    }
}

Result<bool> Store::sync() {
    return guarded([&]() -> bool {
        const std::int64_t changes = sqlite3_total_changes64(db_);
        if (changes == synced_changes_) return true;
        // The WAL holds every commit since the last checkpoint: one fsync of it
        // makes them all durable, as synchronous=FULL would have at each commit.
        sqlite3_file* wal = nullptr;
        if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK && wal &&
            wal->pMethods) {
            if (const int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL); rc != SQLITE_OK)
                throw std::runtime_error(fmt::format("sqlite: cannot sync the write-ahead log ({})", rc));
        }
        synced_changes_ = changes;
        return true;
    });
}

Result<bool> Store::begin() {
    return guarded([&] { return exec("BEGIN IMMEDIATE;"), true; });
}
Result<bool> Store::commit() {
    return guarded([&] { return exec("COMMIT;"), true; });
}
Result<bool> Store::rollback() {
    return guarded([&] { return exec("ROLLBACK;"), true; });
}

void Store::abandon() {
    if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
}

Result<std::int64_t> Store::next_id() {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, "UPDATE meta SET value = value + 1 WHERE key = 'next_id' RETURNING value - 1");
        if (!s.step()) throw std::runtime_error("sqlite: id sequence missing");
        return s.i64(0);
    });
}

Result<bool> Store::put_request(const RequestRow& r) {
    return guarded([&]() -> bool {
        Stmt s(stmts_, fmt::format("INSERT OR REPLACE INTO requests ({}) VALUES "
                                   "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                   kRequestCols));
        s.bind(1, r.id).bind(2, std::int64_t(r.uid)).bind(3, r.user).bind(4, std::int64_t(r.port));
        s.bind(5, std::int64_t(r.proto)).bind(6, r.duration_s).bind(7, r.reason).bind(8, r.ticket);
        s.bind(9, r.state).bind(10, r.created_us).bind(11, r.deadline_us).bind(12, r.decided_us);
        s.bind(13, r.decided_by).bind(14, r.decision_reason).bind(15, r.grant_id);
        s.bind(16, list_to_json(r.approvers)).bind(17, r.shortest_s).bind(18, r.src).bind(19, r.kind);
        s.bind(20, nlohmann::json(r.approver_uids).dump()).bind(21, std::int64_t(r.deadline_boot_ns));
        s.bind(22, r.boot_id).bind(23, r.extends).bind(24, token_groups_to_json(r.approver_token_groups));
        s.step();
        return true;
    });
}

Result<std::optional<RequestRow>> Store::request(std::int64_t id) {
    return guarded([&]() -> std::optional<RequestRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM requests WHERE id = ?", kRequestCols));
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_request(s);
    });
}

Result<std::optional<std::int64_t>> Store::meta(const std::string& key) {
    return guarded([&]() -> std::optional<std::int64_t> {
        Stmt s(stmts_, "SELECT value FROM meta WHERE key = ?");
        s.bind(1, key);
        if (!s.step()) return std::nullopt;
        return s.i64(0);
    });
}

Result<bool> Store::set_meta(const std::string& key, std::int64_t value) {
    return guarded([&]() -> bool {
        Stmt s(stmts_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
        s.bind(1, key).bind(2, value);
        s.step();
        return true;
    });
}

Result<std::optional<std::uint64_t>> Store::next_expiry() {
    return guarded([&]() -> std::optional<std::uint64_t> {
        Stmt s(stmts_,
               "SELECT expires_boot_ns FROM grants WHERE state = 'active' ORDER BY expires_boot_ns LIMIT 1");
        if (!s.step()) return std::nullopt;
        return static_cast<std::uint64_t>(s.i64(0));
    });
}

Result<std::optional<GrantRow>> Store::active_grant(std::uint32_t uid, const std::string& src,
                                                    std::uint16_t port, Proto proto) {
    return guarded([&]() -> std::optional<GrantRow> {
        // Local: served by grants_uid; remote: by grants_src.
        const std::string sql =
            src.empty() ? fmt::format(
                              "SELECT {} FROM grants WHERE state = 'active' AND uid = ? AND port = ? AND "
                              "proto = ? AND src = '' ORDER BY id DESC LIMIT 1",
                              kGrantCols)
                        : fmt::format(
                              "SELECT {} FROM grants WHERE state = 'active' AND src = ? AND port = ? AND "
                              "proto = ? ORDER BY id DESC LIMIT 1",
                              kGrantCols);
        Stmt s(stmts_, sql);
        if (src.empty())
            s.bind(1, std::int64_t(uid));
        else
            s.bind(1, src);
        s.bind(2, std::int64_t(port)).bind(3, std::int64_t(proto));
        if (!s.step()) return std::nullopt;
        return read_grant(s);
    });
}

Result<bool> Store::put_grant(const GrantRow& g) {
    return guarded([&]() -> bool {
        Stmt s(
            stmts_,
            fmt::format("INSERT OR REPLACE INTO grants ({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        kGrantCols));
        s.bind(1, g.id).bind(2, g.request_id).bind(3, std::int64_t(g.uid)).bind(4, g.user);
        s.bind(5, std::int64_t(g.port)).bind(6, std::int64_t(g.proto)).bind(7, g.start_us);
        s.bind(8, g.expires_us).bind(9, std::int64_t(g.expires_boot_ns)).bind(10, g.boot_id);
        s.bind(11, g.state).bind(12, g.ended_us).bind(13, g.ended_by).bind(14, g.reason);
        s.bind(15, g.ticket).bind(16, list_to_json(g.approvers)).bind(17, g.src).bind(18, g.kind);
        s.bind(19, std::int64_t(g.warn_boot_ns));
        s.step();
        return true;
    });
}

Result<std::optional<GrantRow>> Store::grant(std::int64_t id) {
    return guarded([&]() -> std::optional<GrantRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM grants WHERE id = ?", kGrantCols));
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_grant(s);
    });
}

Result<int> Store::rebase_grants(const std::string& boot_id, std::uint64_t now_boot_ns,
                                 std::int64_t now_wall_us) {
    return guarded([&]() -> int {
        // Time left by the wall clock, from this boot's CLOCK_BOOTTIME; none left: now.
        Stmt s(db_,
               "UPDATE grants SET expires_boot_ns = CASE WHEN expires_us > ?2 THEN ?1 + (expires_us - ?2) * "
               "1000 "
               "ELSE ?1 END, boot_id = ?3 WHERE state = 'active' AND boot_id != ?3");
        s.bind(1, static_cast<std::int64_t>(now_boot_ns)).bind(2, now_wall_us).bind(3, boot_id);
        s.step();
        return sqlite3_changes(db_);
    });
}

Result<bool> Store::rebase_grant(std::int64_t id, const std::string& boot_id, std::uint64_t expires_boot_ns,
                                 std::int64_t expires_us, std::uint64_t warn_boot_ns) {
    return guarded([&]() -> bool {
        Stmt s(
            stmts_,
            "UPDATE grants SET boot_id = ?, expires_boot_ns = ?, expires_us = ?, warn_boot_ns = ? WHERE id "
            "= ? AND state = 'active'");
        s.bind(1, boot_id)
            .bind(2, static_cast<std::int64_t>(expires_boot_ns))
            .bind(3, expires_us)
            .bind(4, static_cast<std::int64_t>(warn_boot_ns))
            .bind(5, id);
        s.step();
        return true;
    });
}

Result<std::vector<GrantRow>> Store::grants_to_warn(const std::string& boot_id, std::uint64_t now_boot_ns,
                                                    int limit) {
    return guarded([&]() -> std::vector<GrantRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM grants WHERE state = 'active' AND warn_boot_ns > 0 AND "
                                   "warn_boot_ns <= ? AND boot_id = ? ORDER BY warn_boot_ns LIMIT ?",
                                   kGrantCols));
        s.bind(1, static_cast<std::int64_t>(now_boot_ns)).bind(2, boot_id).bind(3, std::int64_t(limit));
        return read_all(s, read_grant);
    });
}

Result<bool> Store::set_warned(std::int64_t id) {
    return guarded([&]() -> bool {
        Stmt s(stmts_, "UPDATE grants SET warn_boot_ns = 0 WHERE id = ?");
        s.bind(1, id);
        s.step();
        return true;
    });
}

}  // namespace jg
