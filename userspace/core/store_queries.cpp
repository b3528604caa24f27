// The state store's queries of many rows: by state, due, by principal,
// counts, pages for list, and the retention prune.
#include <fmt/format.h>

#include "core/store.h"
#include "core/store_stmt.h"

namespace jg {

using namespace store_internal;

Result<std::vector<RequestRow>> Store::requests(const std::string& state, int limit) {
    return guarded([&]() -> std::vector<RequestRow> {
        std::string sql =
            state == "all" ? fmt::format("SELECT {} FROM requests ORDER BY id DESC LIMIT ?", kRequestCols)
                           : fmt::format("SELECT {} FROM requests WHERE state = ? ORDER BY id DESC LIMIT ?",
                                         kRequestCols);
        Stmt s(stmts_, sql);
        if (state == "all") {
            s.bind(1, std::int64_t(limit));
        } else {
            s.bind(1, state).bind(2, std::int64_t(limit));
        }
        return read_all(s, read_request);
    });
}

Result<std::vector<RequestRow>> Store::requests_due(std::int64_t now_wall_us) {
    return guarded([&]() -> std::vector<RequestRow> {
        Stmt s(stmts_,
               fmt::format(
                   "SELECT {} FROM requests WHERE state = 'pending' AND deadline_us <= ? ORDER BY id DESC",
                   kRequestCols));
        s.bind(1, now_wall_us);
        return read_all(s, read_request);
    });
}

Result<std::vector<RequestRow>> Store::requests_due_boot(const std::string& boot_id,
                                                         std::uint64_t now_boot_ns) {
    return guarded([&]() -> std::vector<RequestRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM requests WHERE state = 'pending' AND boot_id = ? AND "
                                   "deadline_boot_ns <= ? ORDER BY id DESC",
                                   kRequestCols));
        s.bind(1, boot_id).bind(2, static_cast<std::int64_t>(now_boot_ns));
        return read_all(s, read_request);
    });
}

Result<std::vector<GrantRow>> Store::active_grants_of(std::uint32_t uid, const std::string& user) {
    return guarded([&]() -> std::vector<GrantRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM grants WHERE state = 'active' AND uid = ? AND user = ? "
                                   "ORDER BY id",
                                   kGrantCols));
        s.bind(1, std::int64_t(uid)).bind(2, user);
        return read_all(s, read_grant);
    });
}

Result<std::vector<RequestRow>> Store::pending_requests_of(std::uint32_t uid, const std::string& user) {
    return guarded([&]() -> std::vector<RequestRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM requests WHERE state = 'pending' AND uid = ? AND user = ? "
                                   "ORDER BY id",
                                   kRequestCols));
        s.bind(1, std::int64_t(uid)).bind(2, user);
        return read_all(s, read_request);
    });
}

Result<std::vector<std::pair<std::uint32_t, std::string>>> Store::accounts_after(std::uint32_t uid,
                                                                                 const std::string& user,
                                                                                 int limit) {
    return guarded([&]() -> std::vector<std::pair<std::uint32_t, std::string>> {
        Stmt s(stmts_,
               "SELECT uid, user FROM (SELECT uid, user FROM grants WHERE state = 'active' UNION "
               "SELECT uid, user FROM requests WHERE state = 'pending') WHERE uid > ?1 OR (uid = ?1 AND user "
               "> ?2) "
               "ORDER BY uid, user LIMIT ?3");
        s.bind(1, std::int64_t(uid)).bind(2, user).bind(3, std::int64_t(limit));
        std::vector<std::pair<std::uint32_t, std::string>> out;
        while (s.step()) out.emplace_back(static_cast<std::uint32_t>(s.i64(0)), s.text(1));
        return out;
    });
}

Result<std::int64_t> Store::count_requests(const std::string& state) {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, "SELECT COUNT(*) FROM requests WHERE state = ?");
        s.bind(1, state);
        return s.step() ? s.i64(0) : 0;
    });
}

Result<std::int64_t> Store::count_grants(const std::string& state) {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, "SELECT COUNT(*) FROM grants WHERE state = ?");
        s.bind(1, state);
        return s.step() ? s.i64(0) : 0;
    });
}

Result<std::vector<GrantRow>> Store::grants_due(std::uint64_t now_boot_ns) {
    return guarded([&]() -> std::vector<GrantRow> {
        Stmt s(stmts_,
               fmt::format(
                   "SELECT {} FROM grants WHERE state = 'active' AND expires_boot_ns <= ? ORDER BY id DESC",
                   kGrantCols));
        s.bind(1, static_cast<std::int64_t>(now_boot_ns));
        return read_all(s, read_grant);
    });
}

Result<std::vector<GrantRow>> Store::grants_of_kind(const std::string& kind, std::int64_t since_wall_us,
                                                    int limit) {
    return guarded([&]() -> std::vector<GrantRow> {
        Stmt s(stmts_,
               fmt::format("SELECT {} FROM grants WHERE kind = ? AND start_us >= ? ORDER BY start_us DESC, "
                           "id DESC LIMIT ?",
                           kGrantCols));
        s.bind(1, kind).bind(2, since_wall_us).bind(3, std::int64_t(limit));
        return read_all(s, read_grant);
    });
}

Result<std::vector<GrantRow>> Store::grants(const std::string& state, int limit) {
    std::vector<GrantRow> out;
    auto each = each_grant(state, limit, [&](GrantRow& g) { out.push_back(std::move(g)); });
    if (!each) return err(each.error());
    return out;
}

Result<bool> Store::each_grant(const std::string& state, int limit,
                               const std::function<void(GrantRow&)>& fn) {
    return guarded([&]() -> bool {
        std::string sql =
            state == "all"
                ? fmt::format("SELECT {} FROM grants ORDER BY id DESC LIMIT ?", kGrantCols)
                : fmt::format("SELECT {} FROM grants WHERE state = ? ORDER BY id DESC LIMIT ?", kGrantCols);
        Stmt s(stmts_, sql);
        if (state == "all") {
            s.bind(1, std::int64_t(limit));
        } else {
            s.bind(1, state).bind(2, std::int64_t(limit));
        }
        while (s.step()) {
            GrantRow g = read_grant(s);
            fn(g);
        }
        return true;
    });
}

Result<std::int64_t> Store::count_pending(std::uint32_t uid) {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, "SELECT COUNT(*) FROM requests WHERE state = 'pending' AND uid = ?");
        s.bind(1, std::int64_t(uid));
        return s.step() ? s.i64(0) : 0;
    });
}

Result<std::int64_t> Store::count_pending(std::uint32_t uid, std::uint16_t port, Proto proto) {
    return guarded([&]() -> std::int64_t {
        Stmt s(
            stmts_,
            "SELECT COUNT(*) FROM requests WHERE state = 'pending' AND uid = ? AND port = ? AND proto = ?");
        s.bind(1, std::int64_t(uid)).bind(2, std::int64_t(port)).bind(3, std::int64_t(proto));
        return s.step() ? s.i64(0) : 0;
    });
}

namespace {

// "WHERE state = ? AND id < ?" and its bindings, for the pages of list.
std::string page_where(const std::string& state, std::int64_t before) {
    std::string w = state == "all" ? "WHERE 1" : "WHERE state = ?1";
    if (before > 0) w += " AND id < ?2";
    return w;
}

}  // namespace

Result<std::vector<RequestRow>> Store::requests_before(const std::string& state, std::int64_t before,
                                                       int limit) {
    return guarded([&]() -> std::vector<RequestRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM requests {} ORDER BY id DESC LIMIT ?3", kRequestCols,
                                   page_where(state, before)));
        if (state != "all") s.bind(1, state);
        if (before > 0) s.bind(2, before);
        s.bind(3, std::int64_t(limit));
        return read_all(s, read_request);
    });
}

Result<std::int64_t> Store::count_requests_before(const std::string& state, std::int64_t before) {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, fmt::format("SELECT COUNT(*) FROM requests {}", page_where(state, before)));
        if (state != "all") s.bind(1, state);
        if (before > 0) s.bind(2, before);
        return s.step() ? s.i64(0) : 0;
    });
}

Result<std::vector<GrantRow>> Store::grants_before(const std::string& state, std::int64_t before, int limit) {
    return guarded([&]() -> std::vector<GrantRow> {
        Stmt s(stmts_, fmt::format("SELECT {} FROM grants {} ORDER BY id DESC LIMIT ?3", kGrantCols,
                                   page_where(state, before)));
        if (state != "all") s.bind(1, state);
        if (before > 0) s.bind(2, before);
        s.bind(3, std::int64_t(limit));
        return read_all(s, read_grant);
    });
}

Result<std::int64_t> Store::count_grants_before(const std::string& state, std::int64_t before) {
    return guarded([&]() -> std::int64_t {
        Stmt s(stmts_, fmt::format("SELECT COUNT(*) FROM grants {}", page_where(state, before)));
        if (state != "all") s.bind(1, state);
        if (before > 0) s.bind(2, before);
        return s.step() ? s.i64(0) : 0;
    });
}

Result<int> Store::prune(std::int64_t before_wall_us, int limit) {
    return guarded([&]() -> int {
        // Decided requests whose grant (if any) has ended too, then ended grants;
        // requests_decided and grants_ended keep each a range scan.
        Stmt r(
            stmts_,
            "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE decided_us > 0 AND decided_us < "
            "?1 "
            "AND state != 'pending' AND NOT EXISTS (SELECT 1 FROM grants WHERE grants.id = requests.grant_id "
            "AND grants.state = 'active') LIMIT ?2)");
        r.bind(1, before_wall_us).bind(2, std::int64_t(limit));
        r.step();
        int n = sqlite3_changes(db_);
        Stmt g(
            stmts_,
            "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE ended_us > 0 AND ended_us < ?1 AND "
            "state != 'active' LIMIT ?2)");
        g.bind(1, before_wall_us).bind(2, std::int64_t(limit));
        g.step();
        return n + sqlite3_changes(db_);
    });
}

}  // namespace jg
