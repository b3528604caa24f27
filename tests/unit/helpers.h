#pragma once
// Helpers shared by the unit tests: a private temporary directory, files in
// it, and sealed audit chains.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/result.h"
#include "core/store.h"
#include "reference_seal.h"

namespace jg::testing {

// An empty in-memory state store, for a test's workflow.
inline Store memory_store() {
    auto s = Store::open(":memory:");
    REQUIRE(s.ok());
    return std::move(*s);
}

// The value of a Result; the test stops (REQUIRE) when it is an error.
template <typename T>
T must(Result<T> r) {
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error()));
    return std::move(*r);
}

// A private directory under $TMPDIR, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "jg-unit-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
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

inline void write_file(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

// The unsealed record number i (1-based) of a test chain.
inline json chain_record(int i) {
    static const char* const kTypes[] = {"request", "approve", "grant", "allow", "deny", "revoke", "expire"};
    return json{{"ts", fmt::format("2026-11-21T09:56:{:02}.{:06}Z", i % 60, i)},
                {"type", kTypes[i % 7]},
                {"uid", 1000 + i % 3},
                {"user", i % 2 ? "alice" : "bob"},
                {"port", 5432},
                {"proto", "tcp"},
                {"reason", fmt::format("record {}", i)}};
}

// Sealed lines (each newline-terminated) continuing `head`.
inline std::vector<std::string> chain(int n, ChainHead& head) {
    std::vector<std::string> lines;
    for (int i = 0; i < n; ++i) {
        json r = chain_record(static_cast<int>(head.seq) + 1);
        seal(r, head);
        lines.push_back(render_line(r));
    }
    return lines;
}

inline std::string text(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l;
    return s;
}

// A stand-in daemon's read of one request: up to the first newline (or EOF),
// without it.
inline std::string read_request_line(int fd) {
    std::string in;
    char buf[4096];
    while (in.find('\n') == std::string::npos) {
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    return in.substr(0, in.find('\n'));
}

}  // namespace jg::testing
