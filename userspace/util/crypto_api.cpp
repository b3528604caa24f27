#include "util/crypto_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace jg {

Result<CryptoApi> load_crypto(const char* soname) {
    // Never unloaded: keys and contexts live as long as their owners.
    void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    // dlerror() names the library first.
    if (!lib) return err(fmt::format("cannot load libcrypto ({}); install the libssl3 package", dlerror()));
    CryptoApi api;
    std::string missing;
    auto bind = [&](const char* name, auto& fn) {
        if (!missing.empty()) return;
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
        if (!fn) missing = name;
    };
#define JG_CRYPTO_BIND(name) bind(#name, api.name);
    JG_CRYPTO_FUNCTIONS(JG_CRYPTO_BIND)
#undef JG_CRYPTO_BIND
    if (!missing.empty())
        return err(fmt::format("{} has no {}; install libssl3 of Debian 12 or newer", soname, missing));
    return api;
}

const CryptoApi& crypto() {
    // Never destroyed, as the library is never unloaded: a key freed while
    // the process exits still finds its deleter.
    static const CryptoApi* api = [] {
        auto a = load_crypto("libcrypto.so.3");
        if (!a) {
            std::fprintf(stderr, "%s\n", a.error().c_str());
            std::exit(1);
        }
        return new CryptoApi(*a);
    }();
    return *api;
}

}  // namespace jg
