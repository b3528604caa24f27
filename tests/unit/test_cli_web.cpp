// jitgate login / --web URL (design.md §8): the flags, the URL rule, the
// form encoding and the token files, without a network.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "cli/app.h"
#include "cli/http_post.h"
#include "cli/token_store.h"

namespace test_cli_web {
using namespace jg;

namespace {

std::string finish_of(std::vector<const char*> args, CliState& s) {
    auto app = build_app(s);
    args.insert(args.begin(), "jitgate");
    app->parse(static_cast<int>(args.size()), args.data());
    return finish(s);
}

// A private XDG_CONFIG_HOME for one test, restored after it.
struct ConfigHome {
    ConfigHome() {
        char tmpl[] = "/tmp/jg-cliweb-XXXXXX";
        dir = mkdtemp(tmpl);
        const char* old = std::getenv("XDG_CONFIG_HOME");
        saved = old ? std::optional<std::string>(old) : std::nullopt;
        setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
    }
    ~ConfigHome() {
        if (saved)
            setenv("XDG_CONFIG_HOME", saved->c_str(), 1);
        else
            unsetenv("XDG_CONFIG_HOME");
        std::filesystem::remove_all(dir);
    }
    std::string dir;
    std::optional<std::string> saved;
};

}  // namespace

TEST_CASE("cli web: --from-me goes with --web, and becomes from_me") {
    CliState a;
    CHECK(finish_of({"request", "5432", "--for", "5m", "--from-me"}, a).find("--web") != std::string::npos);
    CliState b;
    CHECK(finish_of({"--web", "https://jit.example.org", "request", "5432", "--for", "5m", "--from-me"}, b) ==
          "");
    CHECK(b.args.value("from_me", false));
    CHECK_FALSE(b.args.contains("from"));
    CliState c;
    CHECK_THROWS(finish_of({"request", "5432", "--for", "5m", "--from-me", "--from", "198.51.100.1"}, c));
    CliState d;
    CHECK(finish_of({"list", "--web", "http://198.51.100.1"}, d).find("https") != std::string::npos);
    CliState e;
    CHECK(finish_of({"--web", "https://jit.example.org", "audit", "--follow"}, e).find("--follow") !=
          std::string::npos);
    CliState f;
    CHECK(finish_of({"--web", "https://jit.example.org", "audit", "verify"}, f) != "");
    CliState g;
    CHECK(finish_of({"login", "https://jit.example.org"}, g) == "");
    CHECK(g.op == "login");
    CHECK(g.login_url == "https://jit.example.org");
}

TEST_CASE("cli web: https, or http to loopback; no user in the URL") {
    CHECK(check_http_url("https://jit.example.org", "u"));
    CHECK(check_http_url("http://127.0.0.1:8080/x", "u"));
    CHECK(check_http_url("http://[::1]:8080", "u"));
    CHECK(check_http_url("http://localhost", "u"));
    CHECK_FALSE(check_http_url("http://jit.example.org", "u"));
    CHECK_FALSE(check_http_url("http://127.0.0.1@evil.example.org", "u"));
    CHECK_FALSE(check_http_url("ftp://127.0.0.1", "u"));
    CHECK_FALSE(check_http_url("http://127.evil.example/x", "u"));  // a name, not a loopback address
    CHECK(*normalise_web_url("https://jit.example.org//") == "https://jit.example.org");
    CHECK_FALSE(normalise_web_url("https://jit.example.org/?x=1"));
}

TEST_CASE("cli web: form bodies are percent-encoded") {
    CHECK(form_body({{"a", "b c"}, {"scope", "openid+x&y=z"}}) == "a=b%20c&scope=openid%2Bx%26y%3Dz");
}

TEST_CASE("cli web: token files are 0600 in a 0700 directory, and others' readable ones are refused") {
    ConfigHome home;
    StoredToken t;
    t.url = "https://jit.example.org";
    t.issuer = "https://idp.example.org";
    t.client_id = "jitgate";
    t.token_endpoint = "https://idp.example.org/token";
    t.id_token = "a.b.c";
    t.refresh_token = "r1";
    t.expires_at = 2000000000;
    CHECK(*load_token(t.url) == std::nullopt);
    auto path = save_token(t);
    REQUIRE(path);
    CHECK(path->starts_with(home.dir + "/jitgate/"));
    struct stat st {};
    REQUIRE(stat(path->c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    REQUIRE(stat((home.dir + "/jitgate").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    auto back = load_token(t.url);
    REQUIRE(back);
    REQUIRE(*back);
    CHECK((*back)->refresh_token == "r1");
    CHECK((*back)->expires_at == 2000000000);
    CHECK(*load_token("https://other.example.org") == std::nullopt);
    chmod(path->c_str(), 0640);
    auto refused = load_token(t.url);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("read by others") != std::string::npos);
    chmod(path->c_str(), 0600);
    std::ofstream(*path) << "not json";
    CHECK_FALSE(load_token(t.url));
    CHECK(*forget_token(t.url));
    CHECK_FALSE(*forget_token(t.url));
}

TEST_CASE("cli web: an ID token's exp and user are read, not trusted") {
    std::int64_t exp = 0;
    std::string user;
    // {"alg":"none"} . {"exp":2000000000,"preferred_username":"dana"}
    CHECK(read_token_claims(
        "eyJhbGciOiJub25lIn0.eyJleHAiOjIwMDAwMDAwMDAsInByZWZlcnJlZF91c2VybmFtZSI6ImRhbmEifQ.x", exp, user));
    CHECK(exp == 2000000000);
    CHECK(user == "dana");
    CHECK_FALSE(read_token_claims("garbage", exp, user));
}

}  // namespace test_cli_web
