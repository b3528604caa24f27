#include "daemon/token_gate.h"

#include <fmt/format.h>

#include "util/log.h"

namespace jg {

void TokenGate::use(const OidcSettings& s) {
    if (!s.enabled()) {
        oidc_.reset();
        return;
    }
    if (oidc_ && oidc_->settings() == s) return;
    oidc_ = std::make_unique<OidcVerifier>(s);
    // Once now, bounded (identity/http_get.h), so the first token does not wait for it.
    if (auto r = oidc_->refresh(); !r)
        log(fmt::format("[identity.oidc]: {}; ID tokens are refused until the keys can be had", r.error()));
}

Result<TokenUser> TokenGate::verify(const std::string& token) {
    auto id = oidc_->verify(token, clock_.wall_us() / 1000000);
    if (!id) return err(id.error());
    return TokenUser{id->user, TokenAuth{id->issuer, id->subject, id->groups}};
}

bool TokenGate::record_refusal(std::uint32_t uid, AuditSink& audit) {
    close_refusals(audit);
    return refusals_.admit(uid, now_us());
}

void TokenGate::close_refusals(AuditSink& audit) {
    if (auto c = refusals_.ended(now_us())) audit.emit(refusal_closing(*c));
}

}  // namespace jg
