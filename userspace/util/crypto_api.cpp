#include "util/crypto_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace jg {

namespace {

struct Loaded {
    CryptoApi api;
    std::string error;  // empty: api is whole
};

Loaded load(const char* soname) {
    Loaded out;
    // Never unloaded: keys and contexts live as long as their owners.
    void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        out.error =
            fmt::format("cannot load libcrypto ({}: {}); install the libssl3 package", soname, dlerror());
        return out;
    }
    auto bind = [&](const char* name, auto& fn) {
        if (!out.error.empty()) return;
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
        if (!fn) out.error = fmt::format("{} has no {}; install libssl3 of Debian 12 or newer", soname, name);
    };
#define JG_CRYPTO_BIND(name) bind(#name, out.api.name);
    JG_CRYPTO_FUNCTIONS(JG_CRYPTO_BIND)
#undef JG_CRYPTO_BIND
    return out;
}

}  // namespace

Result<const CryptoApi*> crypto_api(const char* soname) {
    static std::mutex mu;
    // By soname (one, but for the test).  Never destroyed, as the library is
    // never unloaded: a key freed while the process exits still finds its
    // deleter.
    static auto& loaded = *new std::map<std::string, Loaded>;
    std::lock_guard lock(mu);
    auto it = loaded.find(soname);
    if (it == loaded.end()) it = loaded.emplace(soname, load(soname)).first;
    if (!it->second.error.empty()) return err(it->second.error);
    return &it->second.api;
}

const CryptoApi& crypto() {
    static const CryptoApi* api = [] {
        auto a = crypto_api();
        if (!a) {
            std::fprintf(stderr, "%s\n", a.error().c_str());
            std::exit(1);
        }
        return *a;
    }();
    return *api;
}

}  // namespace jg
