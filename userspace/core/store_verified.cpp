// The fleet agent's record of signatures it checked (fleet/verified.h): one
// table of keys, which the state database keeps across restarts.
#include "core/store.h"
#include "core/store_stmt.h"

namespace jg {

using namespace store_internal;

Result<bool> Store::each_verified_key(const std::function<void(std::string)>& fn) {
    return guarded([&]() -> bool {
        Stmt s(stmts_, "SELECT key FROM fleet_verified");
        while (s.step()) fn(s.text(0));
        return true;
    });
}

namespace {

// One statement on the table, with the key bound when there is one.
Result<bool> write_keys(StmtCache& stmts, const char* sql, const std::string* key) {
    return guarded([&]() -> bool {
        Stmt s(stmts, sql);
        if (key) s.bind(1, *key);
        s.step();
        return true;
    });
}

}  // namespace

Result<bool> Store::put_verified_key(const std::string& key) {
    return write_keys(stmts_, "INSERT OR IGNORE INTO fleet_verified (key) VALUES (?)", &key);
}

Result<bool> Store::delete_verified_key(const std::string& key) {
    return write_keys(stmts_, "DELETE FROM fleet_verified WHERE key = ?", &key);
}

Result<bool> Store::clear_verified_keys() {
    return write_keys(stmts_, "DELETE FROM fleet_verified", nullptr);
}

}  // namespace jg
