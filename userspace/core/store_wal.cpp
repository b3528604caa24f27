// When the state database's write-ahead log is copied into the database file.
//
// SQLite checkpoints by itself in the commit that takes the log past 1000
// frames: it fsyncs the log, writes the pages back and fsyncs the database,
// a millisecond or more here.  In the daemon that commit is a decision's,
// between its audit record and its map write, so every few dozen decisions
// one grant took that much longer to reach the kernel.  The daemon's tick
// checkpoints instead; a commit still does when the log has grown past
// kWalHardFrames (the tick is late, or commits come faster than a second's
// worth), so the log stays bounded.
#include <fmt/format.h>
#include <sqlite3.h>

#include <stdexcept>

#include "core/store.h"
#include "core/store_stmt.h"

namespace jg {

namespace {

// A PASSIVE checkpoint takes no lock a reader waits for and waits for none.
// SQLITE_OK with *all set when every frame of the log is in the database file.
int checkpoint_passive(sqlite3* db, const char* schema, bool* all, int* copied) {
    int log = 0, done = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    *all = rc == SQLITE_OK && done >= log;
    *copied = done;
    return rc;
}

// SQLite's WAL hook: runs after each commit, outside its locks.  A failed
// checkpoint here leaves the commit as it is; the tick's reports why.
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

void Store::watch_wal() { sqlite3_wal_hook(db_, on_commit, wal_frames_.get()); }

Result<int> Store::checkpoint() {
    return store_internal::guarded([&]() -> int {
        if (wal_frames() < kCheckpointFrames) return 0;
        bool all = false;
        int copied = 0;
        if (checkpoint_passive(db_, "main", &all, &copied) != SQLITE_OK)
            throw std::runtime_error(
                fmt::format("sqlite: cannot checkpoint the write-ahead log: {}", sqlite3_errmsg(db_)));
        if (all) *wal_frames_ = 0;
        return copied;
    });
}

}  // namespace jg
