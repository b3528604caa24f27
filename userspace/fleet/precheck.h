// The documents of a large batch parsed and their signatures checked ahead,
// on several threads. A restarting node reads every grant of the fleet at
// once and must check each signature (design.md §7.3): one Ed25519 check is
// about 0.1 ms, so 10,000 grants are a second on one core.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "fleet/docs.h"
#include "fleet/etcd_client.h"
#include "fleet/trust.h"

namespace jg::fleet {

// One document as absorb_put would judge it: parsed, then its signature
// against `kind` (unset when it did not parse).
struct CheckedDoc {
    Result<json> doc;
    std::optional<std::string> untrusted;
};

// Each of `kvs` checked, on up to `threads` threads; an entry is empty when
// its check threw (the caller checks that one itself, and sees the same).
// Trust::refusal reads only what is fixed while the batch is absorbed.  An
// entry `known` marks (fleet/verified.h: these bytes verified under these
// signers before) is parsed and not checked again.
std::vector<std::optional<CheckedDoc>> check_documents(const Trust& trust, const char* kind,
                                                       const std::vector<const KeyValue*>& kvs,
                                                       unsigned threads, const std::vector<bool>& known = {});

}  // namespace jg::fleet
