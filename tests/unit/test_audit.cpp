// The audit record chain: canonical form, SHA-256, seal, line rendering, head recovery.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/audit.h"

using namespace jg;

namespace {

// A private temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "jg-unit-audit-XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        REQUIRE(mkdtemp(buf.data()) != nullptr);
        path_ = buf.data();
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

void write_file(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

json sample(const char* type) {
    return json{{"ts", "2026-11-21T09:56:00.123456Z"},
                {"type", type},
                {"uid", 1000},
                {"user", "alice"},
                {"port", 5432},
                {"proto", "tcp"},
                {"approvers", {"bob", "carol"}},
                {"reason", "incident 42: \"db\" down"}};
}

// The keys of a rendered line, in the order they appear.
std::vector<std::string> key_order(const std::string& line) {
    auto o = nlohmann::ordered_json::parse(line);
    std::vector<std::string> keys;
    for (auto& [k, v] : o.items()) keys.push_back(k);
    return keys;
}

}  // namespace

TEST_SUITE("audit") {
    TEST_CASE("sha256_hex known vectors") {
        CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        CHECK(sha256_hex(std::string("a\0b", 3)) != sha256_hex("a"));
    }

    TEST_CASE("canonical: sorted keys, no whitespace, no hash") {
        json a = {{"type", "grant"},
                  {"seq", 3},
                  {"hash", "ffff"},
                  {"prev_hash", "00"},
                  {"b", {{"y", 1}, {"x", 2}}}};
        CHECK(canonical(a) == R"({"b":{"x":2,"y":1},"prev_hash":"00","seq":3,"type":"grant"})");
        // The record itself is not changed.
        CHECK(a.contains("hash"));
    }

    TEST_CASE("canonical does not depend on key insertion order") {
        json a;
        a["type"] = "deny";
        a["uid"] = 7;
        a["port"] = 22;
        json b;
        b["port"] = 22;
        b["uid"] = 7;
        b["type"] = "deny";
        CHECK(canonical(a) == canonical(b));
        // Nor does parsing text with another key order.
        CHECK(canonical(json::parse(R"({"z":1,"a":{"d":1,"c":2}})")) ==
              canonical(json::parse(R"({"a":{"c":2,"d":1},"z":1})")));
        // A record with and without "hash" has the same canonical form.
        json c = a;
        c["hash"] = "abc";
        CHECK(canonical(a) == canonical(c));
    }

    TEST_CASE("canonical replaces invalid UTF-8 instead of throwing") {
        json r = {{"comm", std::string("ab\xFF")}};
        std::string s;
        CHECK_NOTHROW(s = canonical(r));
        CHECK(s == "{\"comm\":\"ab\xEF\xBF\xBD\"}");
    }

    TEST_CASE("seal chains seq, prev_hash and hash and advances the head") {
        ChainHead head;
        CHECK(head.seq == 0);
        CHECK(head.hash == kGenesisHash);
        CHECK(std::string(kGenesisHash).size() == 64);

        json r1 = sample("request");
        seal(r1, head);
        CHECK(r1["seq"].get<std::uint64_t>() == 1);
        CHECK(r1["prev_hash"] == kGenesisHash);
        REQUIRE(r1["hash"].is_string());
        const std::string h1 = r1["hash"].get<std::string>();
        CHECK(h1.size() == 64);
        CHECK(h1 == sha256_hex(canonical(r1)));
        CHECK(head.seq == 1);
        CHECK(head.hash == h1);

        json r2 = sample("approve");
        seal(r2, head);
        CHECK(r2["seq"].get<std::uint64_t>() == 2);
        CHECK(r2["prev_hash"] == h1);
        CHECK(r2["hash"] == sha256_hex(canonical(r2)));
        CHECK(r2["hash"] != r1["hash"]);
        CHECK(head.seq == 2);
        CHECK(head.hash == r2["hash"].get<std::string>());

        // The same content sealed at another place in the chain hashes differently.
        ChainHead other;
        json r2b = sample("approve");
        seal(r2b, other);
        CHECK(r2b["hash"] != r2["hash"]);
    }

    TEST_CASE("seal ignores a stale hash and seq already in the record") {
        ChainHead head{41, std::string(64, 'a')};
        json r = sample("grant");
        r["seq"] = 999;
        r["hash"] = "bogus";
        r["prev_hash"] = "bogus";
        seal(r, head);
        CHECK(r["seq"].get<std::uint64_t>() == 42);
        CHECK(r["prev_hash"] == std::string(64, 'a'));
        CHECK(r["hash"] == sha256_hex(canonical(r)));
        CHECK(head.seq == 42);
    }

    TEST_CASE("the hash covers every field: any change changes it") {
        ChainHead head;
        json r = sample("revoke");
        seal(r, head);
        const std::string h = r["hash"].get<std::string>();
        for (const char* key :
             {"ts", "type", "uid", "user", "port", "proto", "approvers", "reason", "seq", "prev_hash"}) {
            CAPTURE(key);
            json m = r;
            if (m[key].is_string()) {
                std::string s = m[key].get<std::string>();
                s.back() = static_cast<char>(s.back() ^ 1);
                m[key] = s;
            } else if (m[key].is_number()) {
                m[key] = m[key].get<std::int64_t>() + 1;
            } else {
                m[key].push_back("mallory");
            }
            CHECK(sha256_hex(canonical(m)) != h);
        }
        json extra = r;
        extra["note"] = "";
        CHECK(sha256_hex(canonical(extra)) != h);
        json missing = r;
        missing.erase("reason");
        CHECK(sha256_hex(canonical(missing)) != h);
    }

    TEST_CASE("render_line: ts, seq, type first; prev_hash, hash last; one line") {
        ChainHead head;
        json r = sample("grant");
        r["grant_id"] = 17;
        seal(r, head);
        const std::string line = render_line(r);
        REQUIRE(!line.empty());
        CHECK(line.back() == '\n');
        CHECK(line.find('\n') == line.size() - 1);
        // Compact: exactly what a whitespace-free dump of the same key order gives.
        CHECK(nlohmann::ordered_json::parse(line).dump() + "\n" == line);
        const auto keys = key_order(line);
        const std::vector<std::string> want = {"ts",    "seq",    "type", "approvers", "grant_id",  "port",
                                               "proto", "reason", "uid",  "user",      "prev_hash", "hash"};
        CHECK(keys == want);
    }

    TEST_CASE("render_line omits missing leading fields rather than writing null") {
        json r = {{"type", "daemon_start"}, {"hash", "h"}};
        const auto keys = key_order(render_line(r));
        CHECK(keys == std::vector<std::string>{"type", "hash"});
    }

    TEST_CASE("a rendered line re-parsed verifies: hash == sha256(canonical(parsed))") {
        ChainHead head;
        std::string prev = kGenesisHash;
        for (const char* type : {"request", "approve", "grant", "allow", "revoke"}) {
            CAPTURE(type);
            json r = sample(type);
            r["comm"] = std::string("ps\xC3");  // invalid UTF-8, as comm can be
            seal(r, head);
            const std::string line = render_line(r);
            json parsed = json::parse(line);
            CHECK(parsed["prev_hash"] == prev);
            CHECK(parsed["hash"].get<std::string>() == sha256_hex(canonical(parsed)));
            CHECK(parsed["hash"] == r["hash"]);
            prev = parsed["hash"].get<std::string>();

            // Changing any one byte of the line's content breaks verification
            // (or the line no longer parses).
            int broken = 0, tried = 0;
            for (std::size_t i = 0; i + 1 < line.size(); ++i) {
                std::string t = line;
                t[i] = static_cast<char>(t[i] == 'a' ? 'b' : (t[i] == '1' ? '2' : 'a'));
                ++tried;
                json p = json::parse(t, nullptr, false);
                if (p.is_discarded() || !p.is_object() || !p.contains("hash") || !p["hash"].is_string() ||
                    p["hash"].get<std::string>() != sha256_hex(canonical(p)))
                    ++broken;
            }
            CHECK(broken == tried);
        }
    }

    TEST_CASE("read_chain_head: missing and empty files are genesis") {
        TempDir dir;
        auto missing = read_chain_head(dir.file("none.jsonl"));
        REQUIRE(missing.ok());
        CHECK(missing->seq == 0);
        CHECK(missing->hash == kGenesisHash);

        write_file(dir.file("empty.jsonl"), "");
        auto empty = read_chain_head(dir.file("empty.jsonl"));
        REQUIRE(empty.ok());
        CHECK(empty->seq == 0);
        CHECK(empty->hash == kGenesisHash);

        write_file(dir.file("nl.jsonl"), "\n\n");
        auto nl = read_chain_head(dir.file("nl.jsonl"));
        REQUIRE(nl.ok());
        CHECK(nl->seq == 0);
    }

    TEST_CASE("read_chain_head: the last sealed line gives seq and hash") {
        TempDir dir;
        ChainHead head;
        std::string log;
        for (int i = 0; i < 3; ++i) {
            json r = sample("deny");
            seal(r, head);
            log += render_line(r);
        }
        write_file(dir.file("audit.jsonl"), log);
        auto h = read_chain_head(dir.file("audit.jsonl"));
        REQUIRE(h.ok());
        CHECK(h->seq == 3);
        CHECK(h->hash == head.hash);

        // Continuing from the recovered head links to the file's last record.
        ChainHead resumed = *h;
        json next = sample("expire");
        seal(next, resumed);
        CHECK(next["seq"].get<std::uint64_t>() == 4);
        CHECK(next["prev_hash"] == head.hash);

        // A last line without its newline (cut short after the write) still reads.
        write_file(dir.file("nonl.jsonl"), log.substr(0, log.size() - 1));
        auto h2 = read_chain_head(dir.file("nonl.jsonl"));
        REQUIRE(h2.ok());
        CHECK(h2->seq == 3);
    }

    TEST_CASE("read_chain_head: the last line beyond 64 KiB of earlier records") {
        TempDir dir;
        ChainHead head;
        std::string log;
        while (log.size() < 200 * 1024) {
            json r = sample("deny");
            r["reason"] = std::string(3000, 'x');
            seal(r, head);
            log += render_line(r);
        }
        write_file(dir.file("big.jsonl"), log);
        auto h = read_chain_head(dir.file("big.jsonl"));
        REQUIRE(h.ok());
        CHECK(h->seq == head.seq);
        CHECK(h->hash == head.hash);
    }

    TEST_CASE("read_chain_head: a garbage or unsealed last line is an error naming the file") {
        TempDir dir;
        ChainHead head;
        json r = sample("deny");
        seal(r, head);
        const std::string good = render_line(r);
        const std::vector<std::string> tails = {
            "not json at all\n",
            "{\"seq\": 2, \"hash\": \"ab\"\n",        // truncated
            "[1,2,3]\n",                              // not an object
            "{\"type\":\"deny\",\"hash\":\"ab\"}\n",  // no seq
            "{\"seq\":2,\"type\":\"deny\"}\n",        // no hash
            "{\"seq\":\"2\",\"hash\":\"ab\"}\n",      // seq not a number
            "{\"seq\":-2,\"hash\":\"ab\"}\n",         // negative seq
            "{\"seq\":2,\"hash\":7}\n",               // hash not a string
        };
        for (const auto& t : tails) {
            CAPTURE(t);
            const std::string path = dir.file("bad.jsonl");
            write_file(path, good + t);
            auto h = read_chain_head(path);
            REQUIRE_FALSE(h.ok());
            CHECK(h.error().find(path) != std::string::npos);
        }
    }

}  // TEST_SUITE
