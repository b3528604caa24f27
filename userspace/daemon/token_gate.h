#pragma once
// ID tokens presented on the control socket (design.md §8): the verifier of
// the policy's [identity.oidc], made anew when the table changes, and the
// budget of auth_failed records for the tokens it refuses
// (core/refusal_budget.h).  The daemon owns one; control.cpp asks it.
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/refusal_budget.h"
#include "core/result.h"
#include "core/workflow.h"
#include "daemon/control.h"
#include "identity/oidc_verifier.h"

namespace jg {

class TokenGate {
public:
    explicit TokenGate(Clock& clock) : clock_(clock) {}

    // The verifier for `s`: none without [identity.oidc]; made anew (its
    // keys fetched once, bounded) only when the table changed.
    void use(const OidcSettings& s);
    // Whether tokens are taken at all.
    bool enabled() const { return oidc_ != nullptr; }
    // Who the token names, or the check it failed (enabled() only).
    Result<TokenUser> verify(const std::string& token);

    // A refused token by `uid`: true when its auth_failed record is written
    // whole; a window that ended is closed into `audit` first.
    bool record_refusal(std::uint32_t uid, AuditSink& audit);
    // The closing record of a window that ended with refusals only counted.
    void close_refusals(AuditSink& audit);

private:
    std::int64_t now_us() { return std::int64_t(clock_.boot_ns() / 1000); }

    Clock& clock_;
    std::unique_ptr<OidcVerifier> oidc_;
    RefusalBudget refusals_;
};

}  // namespace jg
