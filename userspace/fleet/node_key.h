#pragma once
// A node's signing key on disk and the `signers` entries that name the keys
// a node trusts (design.md §7.3).  The key file holds the 32-byte Ed25519
// seed as base64 on one line; it is created once, mode 0600, and a file
// that others could read or write is refused rather than used.
#include <string>
#include <string_view>

#include "core/ed25519.h"
#include "core/result.h"

namespace jg::fleet {

// The key at `path`, created (O_EXCL, 0600, fsynced with its directory)
// when missing.  Refused with one sentence: a file that is not a regular
// file owned by us, is readable or writable by group or others, or does
// not hold a key.
Result<Ed25519Key> load_or_create_key(const std::string& path);
// The key at `path`, which must exist (same checks).
Result<Ed25519Key> load_key(const std::string& path);

// One `signers` entry, "NODE:BASE64" (what `jitgated --print-key` prints).
struct Signer {
    std::string node;
    Ed25519Public key{};
};
Result<Signer> parse_signer(std::string_view entry);
std::string signer_text(std::string_view node, const Ed25519Key& key);

}  // namespace jg::fleet
