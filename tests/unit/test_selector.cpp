// parse_selector (`request --on`, a grant's "on"): node names, labels, every
// refusal in one sentence with hostile text escaped, and matching.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/selector.h"

namespace test_selector {
using namespace jg;

namespace {

// The refusal of `text`, which must be refused.
std::string refusal(const std::string& text) {
    auto s = parse_selector(text);
    REQUIRE_FALSE(s.ok());
    return s.error();
}

}  // namespace

TEST_CASE("selector: a node name") {
    for (const std::string& name :
         std::vector<std::string>{"db-1", "a", "0", "web.prod_2", std::string(63, 'n')}) {
        CAPTURE(name);
        auto s = parse_selector(name);
        REQUIRE(s.ok());
        CHECK(s->node == name);
        CHECK(s->labels.empty());
        CHECK(s->text() == name);
    }
}

TEST_CASE("selector: labels, sorted by key in its text") {
    auto s = parse_selector("role=db,env=prod");
    REQUIRE(s.ok());
    CHECK(s->node.empty());
    CHECK(s->labels == Labels{{"env", "prod"}, {"role", "db"}});
    CHECK(s->text() == "env=prod,role=db");
    auto one = parse_selector("role=db");
    REQUIRE(one.ok());
    CHECK(one->labels == Labels{{"role", "db"}});
}

TEST_CASE("selector: what is not a node name or labels is refused in one sentence") {
    CHECK(refusal("").find("--on needs a node name or labels") != std::string::npos);
    for (const std::string& bad :
         std::vector<std::string>{"db 1", "-db", ".db", "_db", "db/1", "db:1", "dé", std::string(64, 'n')}) {
        CAPTURE(bad);
        CHECK(refusal(bad).find("is not a node name") != std::string::npos);
    }
    for (const std::string& bad :
         std::vector<std::string>{"role=", "=db", "role==db", "role=db,", ",role=db", "role=db,,env=prod",
                                  "role=db,env", "role=d b", "ro le=db", "role=-db", "role=db;env=prod",
                                  "role=" + std::string(64, 'v'), std::string(64, 'k') + "=v"}) {
        CAPTURE(bad);
        CHECK(refusal(bad).find("is not a selector") != std::string::npos);
    }
}

TEST_CASE("selector: a label named twice is refused, naming it") {
    const std::string why = refusal("role=db,env=prod,role=web");
    CHECK(why.find("names label 'role' twice") != std::string::npos);
    CHECK(refusal("role=db,role=db").find("twice") != std::string::npos);
}

TEST_CASE("selector: at most 16 labels") {
    std::string sixteen;
    // Appended piece by piece: GCC 12's -Wrestrict misfires on a + chain at -O3.
    for (int i = 0; i < 16; ++i) {
        if (i) sixteen += ',';
        sixteen += 'k';
        sixteen += std::to_string(i);
        sixteen += "=v";
    }
    auto s = parse_selector(sixteen);
    REQUIRE(s.ok());
    CHECK(s->labels.size() == 16);
    CHECK(refusal(sixteen + ",k16=v").find("more than 16 labels") != std::string::npos);
}

TEST_CASE("selector: hostile text is escaped and cut short in the refusal") {
    const std::string why = refusal("\x1b]0;owned\x07\x1b[2J");
    CHECK(why.find('\x1b') == std::string::npos);
    CHECK(why.find('\x07') == std::string::npos);
    CHECK(why.find("\\x1b") != std::string::npos);
    const std::string labels = refusal("role=db,env=\x9b\xff\xfe");
    CHECK(labels.find('\xff') == std::string::npos);
    CHECK(labels.find("\\xff") != std::string::npos);
    const std::string bidi = refusal("role=\u202edb");
    CHECK(bidi.find("\u202e") == std::string::npos);
    // A long selector is shown by its first 80 bytes only.
    const std::string longer = refusal(std::string(200, 'x') + "!");
    CHECK(longer.find(std::string(80, 'x')) != std::string::npos);
    CHECK(longer.find(std::string(81, 'x')) == std::string::npos);
}

TEST_CASE("selector: matches a node by name, or by every label") {
    const Labels db_prod{{"role", "db"}, {"env", "prod"}, {"zone", "a"}};
    auto by_name = *parse_selector("db-1");
    CHECK(by_name.matches("db-1", {}));
    CHECK_FALSE(by_name.matches("db-10", db_prod));
    CHECK_FALSE(by_name.matches("db", db_prod));

    auto by_labels = *parse_selector("role=db,env=prod");
    CHECK(by_labels.matches("anything", db_prod));
    CHECK_FALSE(by_labels.matches("db-1", {{"role", "db"}}));
    CHECK_FALSE(by_labels.matches("db-1", {{"role", "db"}, {"env", "dev"}}));
    CHECK_FALSE(by_labels.matches("db-1", {}));

    // A selector naming nothing (a port's hosts left out) is every node.
    CHECK(Selector{}.matches("any", {}));
    CHECK(Selector{}.matches("any", db_prod));
}

TEST_CASE("selector: labels_match and labels_text") {
    CHECK(labels_match({}, {}));
    CHECK(labels_match({}, {{"role", "db"}}));
    CHECK(labels_match({{"role", "db"}}, {{"role", "db"}, {"env", "prod"}}));
    CHECK_FALSE(labels_match({{"role", "db"}}, {{"role", "dbx"}}));
    CHECK_FALSE(labels_match({{"role", "db"}}, {{"Role", "db"}}));  // names are case-sensitive
    CHECK_FALSE(labels_match({{"role", "db"}, {"env", "prod"}}, {{"role", "db"}}));
    CHECK(labels_text({}).empty());
    CHECK(labels_text({{"z", "1"}, {"a", "2"}}) == "a=2,z=1");
}

TEST_CASE("selector: text() reads back as the same selector") {
    for (const char* in : {"db-1", "role=db", "role=db,env=prod", "b=2,a=1,c=3"}) {
        CAPTURE(in);
        auto s = parse_selector(in);
        REQUIRE(s.ok());
        auto again = parse_selector(s->text());
        REQUIRE(again.ok());
        CHECK(*again == *s);
        CHECK(again->text() == s->text());
    }
}

TEST_CASE("selector: valid_fleet_name") {
    CHECK(valid_fleet_name("db-1"));
    CHECK(valid_fleet_name("9"));
    CHECK(valid_fleet_name(std::string(63, 'a')));
    CHECK_FALSE(valid_fleet_name(""));
    CHECK_FALSE(valid_fleet_name(std::string(64, 'a')));
    CHECK_FALSE(valid_fleet_name("-a"));
    CHECK_FALSE(valid_fleet_name("a=b"));
    CHECK_FALSE(valid_fleet_name("a,b"));
    CHECK_FALSE(valid_fleet_name("a/b"));
    CHECK_FALSE(valid_fleet_name(std::string("a\0b", 3)));
}

}  // namespace test_selector
