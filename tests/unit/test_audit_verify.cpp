// verify_chain: every kind of tampering is named at its first broken record
// (file, line, seq); rotated logs verify as one chain.
#include <doctest/doctest.h>

#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/audit.h"
#include "helpers.h"

namespace test_audit_verify {
using namespace jg;
using namespace jg::testing;

namespace {

VerifyResult verify_texts(const std::vector<std::pair<std::string, std::string>>& files,
                          const ChainHead* head = nullptr) {
    std::vector<std::istringstream> streams;
    streams.reserve(files.size());
    for (const auto& f : files) streams.emplace_back(f.second);
    std::vector<std::pair<std::string, std::istream*>> in;
    for (std::size_t i = 0; i < files.size(); ++i) in.emplace_back(files[i].first, &streams[i]);
    return verify_chain(in, head);
}

VerifyResult verify_text(const std::string& t, const ChainHead* head = nullptr) {
    return verify_texts({{"audit.jsonl", t}}, head);
}

// The first broken record must be at `line` with `seq`, its problem containing `what`.
void expect_broken(const VerifyResult& r, std::uint64_t line, std::uint64_t seq, const std::string& what,
                   const std::string& file = "audit.jsonl") {
    INFO("problem: ", r.problem);
    CHECK_FALSE(r.ok);
    CHECK(r.file == file);
    CHECK(r.line == line);
    CHECK(r.seq == seq);
    CHECK(r.problem.find(what) != std::string::npos);
}

// Re-seals line k (1-based) after `edit`, keeping its seq and prev_hash: what
// someone who knows the format but not the next record's hash would do.
std::string reseal(const std::string& line, const std::function<void(json&)>& edit) {
    json r = json::parse(line);
    edit(r);
    ChainHead before{r["seq"].get<std::uint64_t>() - 1, r["prev_hash"].get<std::string>()};
    seal(r, before);
    return render_line(r);
}

}  // namespace

TEST_SUITE("audit verify") {
    TEST_CASE("an intact chain verifies: count, seq range, last hash") {
        ChainHead head;
        const auto lines = chain(10, head);
        const auto r = verify_text(text(lines));
        INFO(r.problem);
        CHECK(r.ok);
        CHECK(r.records == 10);
        CHECK(r.first_seq == 1);
        CHECK(r.last_seq == 10);
        CHECK(r.last_hash == head.hash);
        CHECK(r.last_file == "audit.jsonl");
        CHECK_FALSE(r.continues);
        CHECK_FALSE(r.truncated);
        CHECK(r.problem.empty());
    }

    TEST_CASE("no files, an empty file: intact with no records") {
        const auto none = verify_chain({});
        CHECK(none.ok);
        CHECK(none.records == 0);
        const auto empty = verify_text("");
        CHECK(empty.ok);
        CHECK(empty.records == 0);
        CHECK(empty.last_seq == 0);
    }

    TEST_CASE("a changed byte in any field of record k: record k, its hash does not match") {
        ChainHead head;
        const auto lines = chain(10, head);
        for (const std::string field : {"\"bob\"", "\"record 4\"", "5432", "\"tcp\"", "09:56:04"}) {
            CAPTURE(field);
            auto t = lines;
            const auto at = t[3].find(field);
            REQUIRE(at != std::string::npos);
            t[3][at + 1] = static_cast<char>(t[3][at + 1] ^ 1);
            expect_broken(verify_text(text(t)), 4, 4, "record seq 4 (line 4) was changed");
        }
        // A changed seq is a changed record too, reported with the seq it claims.
        auto t = lines;
        t[3].replace(t[3].find("\"seq\":4"), 7, "\"seq\":5");
        expect_broken(verify_text(text(t)), 4, 5, "was changed: its hash does not match its content");
        // So is a field added or removed.
        t = lines;
        t[6].insert(1, "\"note\":\"x\",");
        expect_broken(verify_text(text(t)), 7, 7, "record seq 7 (line 7) was changed");
        const auto r = verify_text(text(t));
        CHECK(r.records == 6);
        CHECK(r.last_seq == 6);
    }

    TEST_CASE("a deleted record: the seq jump names what is missing") {
        ChainHead head;
        const auto lines = chain(10, head);
        auto one = lines;
        one.erase(one.begin() + 4);  // seq 5
        expect_broken(verify_text(text(one)), 5, 6, "seq 6 follows seq 4: record 5 was removed");
        CHECK(verify_text(text(one)).records == 4);

        auto three = lines;
        three.erase(three.begin() + 4, three.begin() + 7);  // seq 5-7
        expect_broken(verify_text(text(three)), 5, 8, "seq 8 follows seq 4: records 5-7 were removed");

        auto first = lines;
        first.erase(first.begin());  // seq 1: what is left looks like a rotated file
        const auto r = verify_text(text(first));
        CHECK(r.ok);
        CHECK(r.continues);
        CHECK(r.first_seq == 2);
    }

    TEST_CASE("swapped or moved records: reordered, at the first record out of place") {
        ChainHead head;
        const auto lines = chain(10, head);
        auto swapped = lines;
        std::swap(swapped[2], swapped[3]);  // seq 3 and 4
        expect_broken(verify_text(text(swapped)), 3, 4,
                      "seq 4 follows seq 2, and a record between them comes later (line 4): records were "
                      "reordered");

        auto moved = lines;
        const std::string eight = moved[7];
        moved.erase(moved.begin() + 7);
        moved.insert(moved.begin() + 2, eight);  // seq 8 now after seq 2
        expect_broken(verify_text(text(moved)), 3, 8, "records were reordered");

        auto back = lines;
        std::swap(back[8], back[9]);  // seq 10 then 9
        expect_broken(verify_text(text(back)), 9, 10, "records were reordered");

        auto dup = lines;
        dup.insert(dup.begin() + 5, dup[4]);  // seq 5 twice
        expect_broken(verify_text(text(dup)), 6, 5,
                      "seq 5 follows seq 5: records were reordered or duplicated");
    }

    TEST_CASE("a truncated tail: the last line is incomplete") {
        ChainHead head;
        const auto lines = chain(10, head);
        const std::string all = text(lines);
        // Cut in the middle of the last line.
        const std::string mid = all.substr(0, all.size() - lines[9].size() / 2);
        auto r = verify_text(mid);
        expect_broken(r, 10, 0, "the last line is incomplete: the log was truncated");
        CHECK(r.truncated);
        CHECK(r.records == 9);
        CHECK(r.last_seq == 9);
        // Only the final newline is missing: the record is readable, its seq known.
        r = verify_text(all.substr(0, all.size() - 1));
        expect_broken(r, 10, 10, "the last line is incomplete");
        CHECK(r.truncated);
        // A last line that is not JSON, newline or not.
        expect_broken(verify_text(all + "{\"seq\":11,\"ty\n"), 11, 0, "the last line is incomplete");
        // In the middle, the same is a broken record, not a truncation.
        auto t = lines;
        t[4] = t[4].substr(0, 40) + "\n";
        r = verify_text(text(t));
        expect_broken(r, 5, 0, "line 5 is not an audit record: it is not valid JSON");
        CHECK_FALSE(r.truncated);
    }

    TEST_CASE("the last line deleted whole: the file alone is intact; only jitgated's head shows it") {
        ChainHead head;
        auto lines = chain(10, head);
        lines.pop_back();
        // verify_chain cannot see this by itself: what is left is a valid,
        // shorter chain. The daemon's chain head (status: audit.seq/hash) can.
        const auto alone = verify_text(text(lines));
        CHECK(alone.ok);
        CHECK(alone.last_seq == 9);
        expect_broken(verify_text(text(lines), &head), 10, 10,
                      "the log ends at seq 9 but jitgated has written up to seq 10: the tail was removed");

        lines.erase(lines.begin() + 6, lines.end());  // seq 7-10 gone
        expect_broken(verify_text(text(lines), &head), 7, 7,
                      "ends at seq 6 but jitgated has written up to seq 10");
        expect_broken(verify_text("", &head), 1, 1,
                      "the log has no records but jitgated has written up to seq 10");
    }

    TEST_CASE("the daemon's head: earlier records are fine (it writes on); another hash is not") {
        ChainHead head;
        const auto lines = chain(10, head);
        CHECK(verify_text(text(lines), &head).ok);
        ChainHead genesis;
        CHECK(verify_text("", &genesis).ok);
        // status was answered at seq 6; the daemon wrote 7-10 before we read.
        ChainHead at6{6, json::parse(lines[5])["hash"].get<std::string>()};
        CHECK(verify_text(text(lines), &at6).ok);
        ChainHead wrong{6, std::string(64, 'e')};
        expect_broken(verify_text(text(lines), &wrong), 6, 6,
                      "record seq 6 (line 6) does not match the daemon's record");

        // The last record edited and re-sealed: intact alone, not against the head.
        auto t = lines;
        t[9] = reseal(t[9], [](json& r) { r["reason"] = "nothing to see"; });
        CHECK(verify_text(text(t)).ok);
        expect_broken(verify_text(text(t), &head), 10, 10, "does not match the daemon's record");
    }

    TEST_CASE("a record edited and re-sealed: the next record does not chain to it") {
        ChainHead head;
        const auto lines = chain(10, head);
        auto t = lines;
        t[5] = reseal(t[5], [](json& r) { r["user"] = "mallory"; });
        CHECK(json::parse(t[5])["hash"] == sha256_hex(canonical(json::parse(t[5]))));
        expect_broken(
            verify_text(text(t)), 7, 7,
            "record seq 7 (line 7) does not chain to the record before it: its prev_hash is not the "
            "hash of seq 6");
        CHECK(verify_text(text(t)).records == 6);
    }

    TEST_CASE("an inserted record: forged hash, or sealed in place") {
        ChainHead head;
        const auto lines = chain(10, head);
        // A record with a made-up hash.
        json forged = chain_record(5);
        forged["seq"] = 5;
        forged["prev_hash"] = json::parse(lines[3])["hash"];
        forged["hash"] = std::string(64, 'a');
        auto t = lines;
        t.insert(t.begin() + 4, render_line(forged));
        expect_broken(verify_text(text(t)), 5, 5, "record seq 5 (line 5) was changed");

        // Sealed properly after record 4: the real record 5 then repeats seq 5.
        ChainHead after4{4, json::parse(lines[3])["hash"].get<std::string>()};
        json sealed = chain_record(5);
        sealed["user"] = "mallory";
        seal(sealed, after4);
        t = lines;
        t.insert(t.begin() + 4, render_line(sealed));
        expect_broken(verify_text(text(t)), 6, 5,
                      "seq 5 follows seq 5: records were reordered or duplicated");

        // Sealed with the next seq but chained to nothing real.
        ChainHead nowhere{4, std::string(64, 'b')};
        json loose = chain_record(5);
        seal(loose, nowhere);
        t = lines;
        t[4] = render_line(loose);
        expect_broken(verify_text(text(t)), 5, 5, "does not chain to the record before it");
    }

    TEST_CASE("lines that are not audit records") {
        ChainHead head;
        const auto lines = chain(10, head);
        struct Case {
            std::string line, what;
        };
        const std::vector<Case> cases = {
            {"hello\n", "line 7 is not an audit record: it is not valid JSON"},
            {"[1,2,3]\n", "line 7 is not an audit record: it is not a JSON object"},
            {"\n", "line 7 is not an audit record: it is empty"},
            {"{\"type\":\"deny\"}\n", "line 7 is not an audit record: it has no seq"},
            {"{\"seq\":\"7\"}\n", "its seq is not a positive whole number"},
            {"{\"seq\":0}\n", "its seq is not a positive whole number"},
            {"{\"seq\":-7}\n", "its seq is not a positive whole number"},
            {"{\"seq\":7.5}\n", "its seq is not a positive whole number"},
            {"{\"seq\":7,\"hash\":\"" + std::string(64, 'a') + "\"}\n", "it has no prev_hash"},
            {"{\"seq\":7,\"prev_hash\":\"" + std::string(64, 'a') + "\"}\n", "it has no hash"},
            {"{\"seq\":7,\"prev_hash\":7,\"hash\":\"" + std::string(64, 'a') + "\"}\n",
             "its prev_hash is not 64 hex digits"},
            {"{\"seq\":7,\"prev_hash\":\"" + std::string(64, 'a') + "\",\"hash\":\"" + std::string(64, 'A') +
                 "\"}\n",
             "its hash is not 64 hex digits"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.line);
            auto t = lines;
            t[6] = c.line;
            const auto r = verify_text(text(t));
            INFO(r.problem);
            CHECK_FALSE(r.ok);
            CHECK(r.line == 7);
            CHECK(r.problem.find(c.what) != std::string::npos);
            CHECK(r.records == 6);
        }
        // An empty line between records, and blank lines at the end, are broken too.
        auto t = lines;
        t.insert(t.begin() + 3, "\n");
        expect_broken(verify_text(text(t)), 4, 0, "line 4 is not an audit record: it is empty");
        expect_broken(verify_text(text(lines) + "\n"), 11, 0, "it is empty");
    }

    TEST_CASE("a line over the limit is a broken record, and the lines are still counted right") {
        ChainHead head;
        const auto lines = chain(4, head);
        const std::string huge = "{\"reason\":\"" + std::string(kMaxAuditLineBytes + 10, 'x') + "\"}\n";
        auto r = verify_text(lines[0] + huge + lines[1]);
        expect_broken(r, 2, 0, "line 2 is not an audit record: it is longer than");
        // Exactly at the limit is read (and then judged on its content).
        std::string at_limit = "{\"r\":\"" + std::string(kMaxAuditLineBytes - 8, 'x') + "\"}";
        REQUIRE(at_limit.size() == kMaxAuditLineBytes);
        r = verify_text(lines[0] + at_limit + "\n" + lines[1]);
        expect_broken(r, 2, 0, "it has no seq");
        // One byte over, at the end of the file without a newline.
        r = verify_text(lines[0] + at_limit + "x");
        expect_broken(r, 2, 0, "it is longer than");
    }

    TEST_CASE("seq 1 must follow the genesis hash") {
        ChainHead fake{0, std::string(64, 'c')};
        const auto lines = chain(3, fake);
        expect_broken(verify_text(text(lines)), 1, 1,
                      "record seq 1 (line 1) does not start a chain: its prev_hash is not the genesis hash");
    }

    TEST_CASE("rotated files continuing one chain verify as one") {
        ChainHead head;
        const auto lines = chain(10, head);
        const std::vector<std::string> a(lines.begin(), lines.begin() + 6), b(lines.begin() + 6, lines.end());
        auto r = verify_texts({{"audit.jsonl.1", text(a)}, {"audit.jsonl", text(b)}});
        INFO(r.problem);
        CHECK(r.ok);
        CHECK(r.records == 10);
        CHECK(r.first_seq == 1);
        CHECK(r.last_seq == 10);
        CHECK(r.last_file == "audit.jsonl");
        CHECK_FALSE(r.continues);

        // The second alone starts mid-chain.
        r = verify_text(text(b));
        CHECK(r.ok);
        CHECK(r.continues);
        CHECK(r.first_seq == 7);
        CHECK(r.records == 4);

        // An empty file between them changes nothing.
        r = verify_texts({{"a", text(a)}, {"empty", ""}, {"b", text(b)}});
        CHECK(r.ok);
        CHECK(r.records == 10);

        // The head check applies to the chain's end, in the last file.
        r = verify_texts({{"audit.jsonl.1", text(a)}, {"audit.jsonl", text(b)}}, &head);
        CHECK(r.ok);
        r = verify_texts({{"audit.jsonl.1", text(a)},
                          {"audit.jsonl", text(b).substr(0, text(b).size() - lines[9].size())}},
                         &head);
        expect_broken(r, 4, 10, "the tail was removed", "audit.jsonl");
    }

    TEST_CASE("a second file that does not continue the first is caught at its first line") {
        ChainHead head;
        const auto lines = chain(10, head);
        const std::vector<std::string> a(lines.begin(), lines.begin() + 6);

        ChainHead other;
        const auto fresh = chain(4, other);  // a new chain from seq 1
        auto r = verify_texts({{"a.jsonl", text(a)}, {"b.jsonl", text(fresh)}});
        expect_broken(r, 1, 1,
                      "b.jsonl does not continue a.jsonl: seq 1 follows seq 6: records were reordered or "
                      "duplicated",
                      "b.jsonl");
        CHECK(r.records == 6);

        ChainHead elsewhere{6, std::string(64, 'd')};
        const auto forked = chain(4, elsewhere);  // seq 7.. but chained to another record 6
        r = verify_texts({{"a.jsonl", text(a)}, {"b.jsonl", text(forked)}});
        expect_broken(r, 1, 7, "b.jsonl does not continue a.jsonl: record seq 7 (line 1) does not chain",
                      "b.jsonl");

        // A missing file in the middle.
        const std::vector<std::string> first(lines.begin(), lines.begin() + 3),
            last(lines.begin() + 6, lines.end());
        r = verify_texts({{"a.jsonl", text(first)}, {"c.jsonl", text(last)}});
        expect_broken(r, 1, 7,
                      "c.jsonl does not continue a.jsonl: seq 7 follows seq 3: records 4-6 were removed",
                      "c.jsonl");

        // Files given in the wrong order.
        const std::vector<std::string> b(lines.begin() + 6, lines.end());
        r = verify_texts({{"new.jsonl", text(b)}, {"old.jsonl", text(a)}});
        expect_broken(r, 1, 1, "old.jsonl does not continue new.jsonl: seq 1 follows seq 10", "old.jsonl");
    }

    TEST_CASE("a record moved into a later file is a reordering, named with its file") {
        ChainHead head;
        auto lines = chain(10, head);
        std::vector<std::string> a(lines.begin(), lines.begin() + 6), b(lines.begin() + 6, lines.end());
        const std::string five = a[4];
        a.erase(a.begin() + 4);
        b.insert(b.begin() + 1, five);
        auto r = verify_texts({{"a.jsonl", text(a)}, {"b.jsonl", text(b)}});
        expect_broken(r, 5, 6, "comes later (line 2 of b.jsonl): records were reordered", "a.jsonl");
    }

    TEST_CASE("a stream that cannot be read is a broken record, not an intact empty log") {
        std::istringstream bad("x");
        bad.setstate(std::ios::failbit);
        auto r = verify_chain({{"gone.jsonl", &bad}});
        CHECK_FALSE(r.ok);
        CHECK(r.file == "gone.jsonl");
        CHECK(r.problem.find("cannot be read") != std::string::npos);
        r = verify_chain({{"null.jsonl", nullptr}});
        CHECK_FALSE(r.ok);
    }

    TEST_CASE("invalid UTF-8: a record sealed with replaced bytes verifies") {
        ChainHead head;
        json r = chain_record(1);
        r["comm"] = std::string("ps\xC3");
        seal(r, head);
        CHECK(verify_text(render_line(r)).ok);
    }

    TEST_CASE("bytes other than jitgated wrote, with the same parsed content, are caught") {
        ChainHead head;
        json r = chain_record(1);
        r["user"] = "alice";
        seal(r, head);
        const std::string line = render_line(r);
        REQUIRE(verify_text(line).ok);
        const std::string body = line.substr(1, line.size() - 3);  // between { and }\n
        // A duplicate key before the real one: parsers that keep the first
        // value would show "root"; the hash covers "alice".
        expect_broken(verify_text("{\"user\":\"root\"," + body + "}\n"), 1, 1, "byte for byte");
        expect_broken(verify_text(line.substr(0, line.size() - 1) + "\r\n"), 1, 1, "byte for byte");
        expect_broken(verify_text("\xEF\xBB\xBF" + line), 1, 1, "byte for byte");
        expect_broken(verify_text("{ " + line.substr(1)), 1, 1, "byte for byte");
    }

    TEST_CASE("a long chain streams through") {
        ChainHead head;
        std::string all;
        for (int i = 0; i < 20000; ++i) {
            json r = chain_record(i + 1);
            seal(r, head);
            all += render_line(r);
        }
        const auto r = verify_text(all, &head);
        CHECK(r.ok);
        CHECK(r.records == 20000);
        CHECK(r.last_hash == head.hash);
    }
}

}  // namespace test_audit_verify
