// Node keys (design.md §7.3): OpenSSL's Ed25519 matches RFC 8032's vectors,
// a signature holds for its message and key only, the base64 every key and
// signature travels in is read strictly, and a key file others could read
// is refused.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/ed25519.h"
#include "fleet/node_key.h"

namespace test_ed25519 {
using namespace jg;

namespace {

std::string unhex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/jg-key-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("ed25519: RFC 8032 test 1 (empty message)") {
    auto key =
        Ed25519Key::from_seed(unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
    REQUIRE(key);
    CHECK(base64_decode(key->public_base64()) ==
          unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
    auto sig = key->sign("");
    CHECK(base64_decode(sig) ==
          unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a3"
                "3bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"));
    CHECK(ed25519_verify(key->public_key(), "", sig));
}

TEST_CASE("ed25519: a signature holds for its own message and key only") {
    auto a = Ed25519Key::generate();
    auto b = Ed25519Key::generate();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->public_base64() != b->public_base64());
    std::string msg = R"({"grant":7,"user":"alice"})";
    auto sig = a->sign(msg);
    CHECK(ed25519_verify(a->public_key(), msg, sig));
    CHECK_FALSE(ed25519_verify(b->public_key(), msg, sig));
    CHECK_FALSE(ed25519_verify(a->public_key(), R"({"grant":7,"user":"mallory"})", sig));
    CHECK_FALSE(ed25519_verify(a->public_key(), msg, ""));
    CHECK_FALSE(ed25519_verify(a->public_key(), msg, "not base64!"));
    CHECK_FALSE(ed25519_verify(a->public_key(), msg, base64_encode(std::string(64, '\0'))));
    CHECK_FALSE(ed25519_verify(a->public_key(), msg, sig.substr(0, 40)));
    // A seed saved and read back is the same key.
    auto again = Ed25519Key::from_seed(a->seed());
    REQUIRE(again);
    CHECK(again->public_base64() == a->public_base64());
}

TEST_CASE("base64: strict standard alphabet, canonical, padded") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_decode("Zm9vYmFy") == "foobar");
    CHECK(base64_decode("Zm9vYg==") == "foob");
    CHECK(base64_decode("Zg==") == "f");
    CHECK(base64_decode("") == "");
    CHECK_FALSE(base64_decode("Zg"));          // padding missing
    CHECK_FALSE(base64_decode("Zh=="));        // unused bits set: not canonical
    CHECK_FALSE(base64_decode("Zm9v\nYmFy"));  // whitespace
    CHECK_FALSE(base64_decode("Zm9-"));        // URL-safe alphabet
    CHECK_FALSE(base64_decode("Z=g="));        // padding inside
    CHECK_FALSE(base64_decode("===="));
}

TEST_CASE("node key file: created 0600 once, then read back; refused when others can read it") {
    TempDir dir;
    std::string path = dir.path + "/node.key";
    auto first = fleet::load_or_create_key(path);
    REQUIRE(first);
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto second = fleet::load_or_create_key(path);
    REQUIRE(second);
    CHECK(second->public_base64() == first->public_base64());

    chmod(path.c_str(), 0644);
    auto loose = fleet::load_key(path);
    REQUIRE_FALSE(loose);
    CHECK(loose.error().find("chmod 0600") != std::string::npos);

    std::string junk = dir.path + "/junk.key";
    { std::ofstream(junk) << "hello\n"; }
    chmod(junk.c_str(), 0600);
    CHECK_FALSE(fleet::load_key(junk));
    CHECK_FALSE(fleet::load_key(dir.path + "/missing.key"));
}

TEST_CASE("signers: NODE:BASE64 entries") {
    auto key = Ed25519Key::generate();
    REQUIRE(key);
    auto text = fleet::signer_text("db-1", *key);
    auto s = fleet::parse_signer(text);
    REQUIRE(s);
    CHECK(s->node == "db-1");
    CHECK(s->key == key->public_key());
    CHECK_FALSE(fleet::parse_signer("db-1"));
    // fmt, not "literal" + std::string: GCC 12 -O3 warns falsely there (-Wrestrict).
    CHECK_FALSE(fleet::parse_signer(fmt::format(":{}", key->public_base64())));
    CHECK_FALSE(fleet::parse_signer("db-1:AAAA"));
    CHECK_FALSE(fleet::parse_signer(fmt::format("db 1:{}", key->public_base64())));
}

}  // namespace test_ed25519
