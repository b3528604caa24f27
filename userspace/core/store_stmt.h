#pragma once
// Inside the state store (store.cpp, store_queries.cpp) only: a prepared
// statement that throws on an SQLite error, guarded() which turns that into
// the Result of the Store method that ran it, and the row readers.
#include <sqlite3.h>

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/store.h"

namespace jg::store_internal {

// A prepared statement; throws on SQLite errors, which guarded() turns into
// the Result of the Store method that ran it.
class Stmt {
public:
    Stmt(sqlite3* db, const char* sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
            throw std::runtime_error(fmt::format("sqlite prepare: {}", sqlite3_errmsg(db)));
    }
    // One of the connection's kept statements (a fresh one while that is in use).
    Stmt(StmtCache& cache, const std::string& sql)
        : db_(cache.db), s_(cache.get(sql)), cached_(s_ != nullptr) {
        if (!s_ && sqlite3_prepare_v2(db_, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            throw std::runtime_error(fmt::format("sqlite prepare: {}", sqlite3_errmsg(db_)));
    }
    ~Stmt() {
        if (cached_) {
            sqlite3_reset(s_);
            sqlite3_clear_bindings(s_);
        } else {
            sqlite3_finalize(s_);
        }
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(s_, i, v);
        return *this;
    }
    Stmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    bool step() {
        int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw std::runtime_error(fmt::format("sqlite step: {}", sqlite3_errmsg(db_)));
    }
    std::int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
    std::string text(int c) {
        auto p = sqlite3_column_text(s_, c);
        return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    }

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
    bool cached_ = false;
};

// Every row `s` returns.
template <typename Row>
std::vector<Row> read_all(Stmt& s, Row (*read)(Stmt&)) {
    std::vector<Row> out;
    while (s.step()) out.push_back(read(s));
    return out;
}

// Runs a body that throws on an SQLite error (Stmt, exec) and gives its
// value, or the error as a Result: no exception leaves the Store.
template <typename F>
auto guarded(F&& body) -> Result<decltype(body())> {
    try {
        return body();
    } catch (const std::exception& e) {
        return err(e.what());
    }
}

// The columns read_request and read_grant read, in their order.
extern const char* const kRequestCols;
extern const char* const kGrantCols;
RequestRow read_request(Stmt& s);
GrantRow read_grant(Stmt& s);

}  // namespace jg::store_internal
