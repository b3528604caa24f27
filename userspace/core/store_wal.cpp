// When the state database's write-ahead log is copied into the database file.
//
// SQLite checkpoints by itself in every commit while the log holds 1000
// frames or more: it fsyncs the log, writes the pages back and fsyncs the
// database, a millisecond or more here.  In the daemon such a commit is a
// decision's, between its audit record and its map write, so every few dozen
// decisions one grant took that much longer to reach the kernel.  The
// daemon's tick checkpoints instead, and starts the log again there too; a
// commit still checkpoints when the log has grown past kWalHardFrames (the
// tick is late, or commits come faster than a second's worth), so the log
// stays bounded.
#include <fmt/format.h>
#include <sqlite3.h>

#include <stdexcept>

#include "core/store.h"
#include "core/store_stmt.h"

namespace jg {

using store_internal::Stmt;

namespace {

// A PASSIVE checkpoint takes no lock a reader waits for and waits for none
// (RESTART and TRUNCATE would wait up to the busy timeout, in the daemon's
// loop).  SQLITE_OK with *all set when every frame of the log is in the
// database file; *copied is SQLite's pnCkpt.
int checkpoint_passive(sqlite3* db, const char* schema, bool* all, int* copied) {
    int log = 0, done = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    *all = rc == SQLITE_OK && done >= log;
    *copied = done;
    return rc;
}

// SQLite's WAL hook: runs after each commit, outside its locks, with the
// log's length in frames.  A failed checkpoint here leaves the commit as it
// is; the tick reports why.
int on_commit(void* frames_out, sqlite3* db, const char* schema, int frames) {
    int* frames_seen = static_cast<int*>(frames_out);
    *frames_seen = frames;
    bool all = false;
    int copied = 0;
    if (frames >= Store::kWalHardFrames && checkpoint_passive(db, schema, &all, &copied) == SQLITE_OK && all)
        *frames_seen = 0;
    return SQLITE_OK;
}

}  // namespace

// Replaces the hook SQLite installs at open (sqlite3_wal_autocheckpoint);
// `PRAGMA wal_autocheckpoint` would put SQLite's back: never run it here.
void Store::watch_wal() { sqlite3_wal_hook(db_, on_commit, wal_frames_.get()); }

void Store::unwatch_wal() {
    if (db_) sqlite3_wal_hook(db_, nullptr, nullptr);
}

Result<int> Store::checkpoint() {
    return store_internal::guarded([&]() -> int {
        if (wal_frames() < kCheckpointFrames) return 0;
        bool all = false;
        int copied = 0;
        if (checkpoint_passive(db_, "main", &all, &copied) != SQLITE_OK)
            throw std::runtime_error(fmt::format(
                "cannot checkpoint the state database's write-ahead log (it grows until it can): {}",
                sqlite3_errmsg(db_)));
        if (!all) return copied;  // a reader holds part of it: the next tick goes on
        *wal_frames_ = 0;
        // The first commit after a complete checkpoint starts the log from its
        // beginning: SQLite rewrites the header and fsyncs it, and trims the
        // file to journal_size_limit.  This small write pays for that here,
        // not the next decision's commit.
        Stmt s(stmts_,
               "INSERT INTO meta (key, value) VALUES ('wal_restarts', 1) "
               "ON CONFLICT (key) DO UPDATE SET value = value + 1");
        s.step();
        return copied;
    });
}

}  // namespace jg
