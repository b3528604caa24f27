#pragma once
// The witnessed audit (design.md §7.3): a node signs its audit chain head
// (seq, hash) with its node key and publishes it in its ack and in a short
// history of heads in etcd, so that a log cut or rewritten on one host is
// visible from every other.  Here: the signed head (its canonical message,
// signing, parsing, verifying) and the check of one node's published heads
// against each other; nothing here talks to etcd.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/audit_chain.h"
#include "core/ed25519.h"
#include "core/result.h"

namespace jg {

struct SignedHead {
    std::string node;
    std::uint64_t seq = 0;
    std::string hash;          // 64 hex digits
    std::int64_t time_us = 0;  // when the node published it (its wall clock)
    std::string sig;           // base64 Ed25519 signature of head_message()
};

// What is signed: a domain tag (a head is never mistaken for another
// signed document of the fleet) and the canonical JSON of node, seq, hash
// and time_us (keys sorted, no whitespace, as the audit chain's).
std::string head_message(const SignedHead& h);
SignedHead sign_head(const Ed25519Key& key, const std::string& node, const ChainHead& head,
                     std::int64_t time_us);
bool verify_head(const Ed25519Public& key, const SignedHead& h);
// By any of `keys` (a node listed with two keys while its key is rotated).
bool verify_head(const std::vector<Ed25519Public>& keys, const SignedHead& h);
// {"node","seq","hash","time_us","sig"}: the ack's "audit_head" and a
// history entry's value.
nlohmann::json head_json(const SignedHead& h);
// Every field checked (untrusted: read from etcd); one sentence when not.
Result<SignedHead> parse_head(const nlohmann::json& j);

// One entry of a node's history as etcd holds it: P/heads/NODE/<seq>.
struct HeadEntry {
    std::uint64_t key_seq = 0;  // the seq in its key
    std::int64_t version = 1;   // etcd's: more than 1 when the key was written over
    std::string value;
};

// What check_heads found for one node.
struct WitnessReport {
    std::string node;
    std::optional<SignedHead> head;  // the ack's, when it verified
    std::optional<SignedHead> open;  // the ack's audit_open: the log's head when the daemon started
    std::size_t history = 0;         // history entries that verified
    std::vector<std::string> problems;
    // History entries no key listed for the node signs: forged by an etcd
    // writer, or signed by a key of the node's since taken out of signers
    // (a rotation).  Judged by nothing (they can neither hide nor invent a
    // cut), so listed apart and not a problem; at most 10, all counted.
    std::vector<std::string> unverified;
    std::size_t unverified_count = 0;
};

// How far a node's clock may seem to step back between two heads it
// published before that counts as the head going backwards.
inline constexpr std::int64_t kHeadClockSlackUs = 2'000'000;

// Checks node `node`'s published heads: the ack's (`ack`: the ack document's
// text; none when it has no ack) and its history, each signed by one of
// `keys` (empty: no key is known for it), each history entry under its own seq and
// never written over, one hash per seq, and no head going backwards (a
// lower seq published after a higher one, an ack behind its history, or
// a log that at the daemon's start (the ack's "audit_open") ended below a
// head published before).
WitnessReport check_heads(const std::string& node, const std::optional<std::string>& ack,
                          const std::vector<HeadEntry>& history, const std::vector<Ed25519Public>& keys);

}  // namespace jg
