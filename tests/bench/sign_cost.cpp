// Figure 9's cost of trust (design.md §7.3): what signing a grant document
// and checking its signature take, through the code jitgated runs
// (fleet/trust: canonical JSON, Ed25519 by OpenSSL's EVP).  One thread, no
// kernel: `jitgate_bench --sign-cost N` prints {"sign_us","verify_us"}, each
// the median of 5 rounds of N documents.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "fleet/docs.h"
#include "fleet/trust.h"

namespace {

double per_doc_us(int n, const std::function<void(int)>& one) {
    std::vector<double> rounds;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) one(i);
        rounds.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n);
    }
    std::sort(rounds.begin(), rounds.end());
    return rounds[rounds.size() / 2];
}

}  // namespace

namespace jgbench {

int sign_cost(const char* count) {
    const int n = std::atoi(count);
    if (n < 1 || n > 1000000) {
        std::fprintf(stderr, "jitgate_bench: --sign-cost takes a number of documents from 1 to 1000000\n");
        return 2;
    }
    auto key = jg::Ed25519Key::generate();
    if (!key) {
        std::fprintf(stderr, "jitgate_bench: %s\n", key.error().c_str());
        return 1;
    }
    jg::fleet::Trust trust("db-1", *key, {{"db-1", key->public_key()}, {"db-2", key->public_key()}});
    // A grant as the ledger writes it: a remote principal, a reason, an approver.
    std::vector<jg::fleet::json> docs;
    for (int i = 0; i < n; ++i) {
        jg::GrantRow g;
        g.id = 1000 + i;
        g.request_id = 999 + i;
        g.user = "alice";
        g.port = 5432;
        g.start_us = 1760000000000000LL + i;
        g.expires_us = g.start_us + 3600LL * 1000000;
        g.state = "active";
        g.reason = "INC-4711: replica lag on db-2";
        g.approvers = {"bob"};
        g.src = "2001:db8:19::" + std::to_string(i % 9999 + 1);
        docs.push_back(jg::fleet::grant_doc(g, {"role=db", "db-1"}));
    }
    const double sign_us = per_doc_us(n, [&](int i) { trust.sign(jg::fleet::kSigGrant, docs[i]); });
    int bad = 0;
    const double verify_us =
        per_doc_us(n, [&](int i) { bad += trust.refusal(jg::fleet::kSigGrant, docs[i]).has_value(); });
    if (bad) {
        std::fprintf(stderr, "jitgate_bench: %d signatures did not verify\n", bad);
        return 1;
    }
    std::printf("{\"documents\":%d,\"sign_us\":%.2f,\"verify_us\":%.2f}\n", n, sign_us, verify_us);
    return 0;
}

}  // namespace jgbench
