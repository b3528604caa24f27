#pragma once
// The address a request came from: the TCP peer, or, when the peer is a
// trusted proxy (--trusted-proxy CIDR), the nearest address in
// X-Forwarded-For that is not itself a trusted proxy.
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "core/result.h"

namespace jg::web {

class TrustedProxies {
public:
    // Err naming the text when it is not an address or CIDR.
    Result<bool> add(std::string_view cidr);
    bool contains(std::string_view addr) const;
    bool empty() const { return nets_.empty(); }

private:
    std::vector<SourceNet> nets_;
};

// The client's address as text (as jitgate's --from takes it); err when
// the peer is a trusted proxy whose X-Forwarded-For is malformed.
Result<std::string> client_address(std::string_view peer, std::string_view forwarded_for,
                                   const TrustedProxies& proxies);

}  // namespace jg::web
