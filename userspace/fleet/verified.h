// Grant documents whose signature this node checked, kept across restarts.
//
// A restarting node reads every grant of the fleet and checks each signature
// against [fleet] signers (design.md §7.3), about 0.1 ms apiece: 10,000
// grants took a second of its start.  A check depends on nothing but the
// document's bytes, its kind and the signers listed, so its key here binds
// all three (SHA-256 over what checks it, Trust::fingerprint, the kind and
// the bytes): the same key found again is the same check with the same
// answer.  "What checks it" is kCheckVersion, jitgate's version and
// libcrypto's: an upgrade of either checks everything once more.  Only
// checks that verified are kept; a changed byte, another kind or another
// list of signers is a key never seen, checked afresh.  The keys live in the
// state database (fleet_verified), which only the node itself writes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/result.h"
#include "core/store.h"
#include "fleet/trust.h"

namespace jg::fleet {

class VerifiedDocs {
public:
    // Beyond this many keys nothing more is kept (those are checked again).
    // A key costs about 150 bytes here (40 MB at the cap, twice that while
    // a full read holds the old and the new set), against the kilobyte or
    // so of each grant document the node's view holds anyway.
    static constexpr std::size_t kMaxKept = std::size_t(1) << 18;
    // Changed when Trust::refusal or signed_text changes what it checks.
    static constexpr const char* kCheckVersion = "jitgate/verified v1";

    static std::string key_of(const Trust& trust, std::string_view kind, std::string_view bytes);

    bool known(const std::string& key) const { return known_.count(key) > 0; }
    // `key` verified now: a check that passed, or a known key a full read
    // found again.
    void add(const std::string& key);
    // A full read holds every document: from its end, the keys it added are
    // all that is kept (what it no longer holds is forgotten).
    void begin_full_read();
    void end_full_read();

    // The kept keys, read once (later calls do nothing).  When it fails, or
    // the table holds more than the cap, the next save writes it whole.
    Result<bool> load(Store& store);
    // What changed since the last save (only that: a full read of many
    // documents changes few), in one transaction; kept for the next save
    // when it fails.
    Result<bool> save(Store& store);
    std::size_t size() const { return known_.size(); }

private:
    std::unordered_set<std::string> known_, next_;
    // Since the last save: keys to write, and keys a full read no longer
    // holds.  A key is in one of them at most (each change cancels the other).
    std::unordered_set<std::string> added_, removed_;
    bool in_full_read_ = false;
    bool loaded_ = false;
    bool rewrite_ = false;  // the table may hold keys known_ does not
};

}  // namespace jg::fleet
