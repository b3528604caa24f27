#include "core/ed25519.h"

#include <memory>

#include "util/crypto_api.h"

namespace jg {

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

bool std_b64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    int n = jg::crypto().EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                         reinterpret_cast<const unsigned char*>(bytes.data()),
                                         static_cast<int>(bytes.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    // EVP_DecodeBlock skips whitespace and reports padding as zero bytes:
    // check the alphabet and the padding first, then trim what it added.
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '=') {
            if (i + 2 < text.size()) return std::nullopt;
            ++pad;
        } else if (pad > 0 || !std_b64_char(c)) {
            return std::nullopt;
        }
    }
    std::string out(text.size() / 4 * 3, '\0');
    int n = jg::crypto().EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                         reinterpret_cast<const unsigned char*>(text.data()),
                                         static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
    out.resize(static_cast<std::size_t>(n) - pad);
    // Canonical only: one text per byte string, so that a signature or a key
    // cannot be re-spelt (unused bits of the last character set).
    if (base64_encode(out) != text) return std::nullopt;
    return out;
}

Result<Ed25519Key> Ed25519Key::generate() {
    EVP_PKEY* raw = jg::crypto().EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!raw) return err("OpenSSL could not generate an Ed25519 key");
    return from_seed([&] {
        std::string seed(32, '\0');
        std::size_t len = seed.size();
        if (jg::crypto().EVP_PKEY_get_raw_private_key(raw, reinterpret_cast<unsigned char*>(seed.data()),
                                                      &len) != 1)
            seed.clear();
        jg::crypto().EVP_PKEY_free(raw);
        return seed;
    }());
}

Result<Ed25519Key> Ed25519Key::from_seed(std::string_view seed) {
    if (seed.size() != 32) return err("an Ed25519 private key is 32 bytes");
    EVP_PKEY* raw = jg::crypto().EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
    if (!raw) return err("OpenSSL could not make an Ed25519 key");
    Ed25519Key key;
    key.pkey_.reset(raw, [](void* p) { jg::crypto().EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
    std::size_t len = key.pub_.size();
    if (jg::crypto().EVP_PKEY_get_raw_public_key(raw, key.pub_.data(), &len) != 1 || len != key.pub_.size())
        return err("OpenSSL could not derive an Ed25519 public key");
    return key;
}

std::string Ed25519Key::seed() const {
    std::string out(32, '\0');
    std::size_t len = out.size();
    jg::crypto().EVP_PKEY_get_raw_private_key(static_cast<EVP_PKEY*>(pkey_.get()),
                                              reinterpret_cast<unsigned char*>(out.data()), &len);
    return out;
}

std::string Ed25519Key::public_base64() const {
    return base64_encode(std::string_view(reinterpret_cast<const char*>(pub_.data()), pub_.size()));
}

std::string Ed25519Key::sign(std::string_view message) const {
    MdCtxPtr ctx(jg::crypto().EVP_MD_CTX_new(), jg::crypto().EVP_MD_CTX_free);
    unsigned char sig[64];
    std::size_t len = sizeof sig;
    if (!ctx ||
        jg::crypto().EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr,
                                        static_cast<EVP_PKEY*>(pkey_.get())) != 1 ||
        jg::crypto().EVP_DigestSign(ctx.get(), sig, &len,
                                    reinterpret_cast<const unsigned char*>(message.data()),
                                    message.size()) != 1)
        return {};  // verifies against nothing: a document signed so is refused everywhere
    return base64_encode(std::string_view(reinterpret_cast<const char*>(sig), len));
}

std::optional<Ed25519Public> parse_ed25519_public(std::string_view base64) {
    auto bytes = base64_decode(base64);
    if (!bytes || bytes->size() != 32) return std::nullopt;
    Ed25519Public pub;
    std::copy(bytes->begin(), bytes->end(), pub.begin());
    return pub;
}

bool ed25519_verify(const Ed25519Public& pub, std::string_view message, std::string_view signature_b64) {
    auto sig = base64_decode(signature_b64);
    if (!sig || sig->size() != 64) return false;
    PkeyPtr key(jg::crypto().EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub.data(), pub.size()),
                jg::crypto().EVP_PKEY_free);
    MdCtxPtr ctx(jg::crypto().EVP_MD_CTX_new(), jg::crypto().EVP_MD_CTX_free);
    if (!key || !ctx ||
        jg::crypto().EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
        return false;
    return jg::crypto().EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                                         sig->size(), reinterpret_cast<const unsigned char*>(message.data()),
                                         message.size()) == 1;
}

}  // namespace jg
