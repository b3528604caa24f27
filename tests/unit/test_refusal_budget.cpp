// Refused tokens (core/refusal_budget.h): at most 100 recorded one by one
// in 10 s, the rest counted and written as one closing record that says how
// many it stands for and who presented them; nothing is dropped untold.
#include <doctest/doctest.h>

#include <cstdint>

#include "core/refusal_budget.h"

namespace test_refusal_budget {
using namespace jg;

TEST_SUITE("refusal budget") {
    TEST_CASE("100 a window recorded whole, the rest counted into one closing record") {
        RefusalBudget b;
        const std::int64_t t0 = 5'000'000;
        for (int i = 0; i < RefusalBudget::kPerWindow; ++i) CHECK(b.admit(1000, t0 + i));
        int counted = 0;
        for (std::uint32_t uid = 2000; uid < 2050; ++uid) counted += b.admit(uid, t0 + 1000) ? 0 : 1;
        CHECK(counted == 50);
        CHECK_FALSE(b.admit(1000, t0 + RefusalBudget::kWindowUs + 1));  // counted: the closing is pending
        CHECK_FALSE(b.ended(t0 + RefusalBudget::kWindowUs - 1));        // the window has not ended
        auto c = b.ended(t0 + RefusalBudget::kWindowUs + 2);
        REQUIRE(c);
        CHECK(c->suppressed == 51);
        CHECK(c->uids.size() == RefusalBudget::kUidsNamed);
        CHECK(c->more_uids);
        CHECK_FALSE(b.ended(t0 + 3 * RefusalBudget::kWindowUs));  // closed once
        // The next window records again.
        CHECK(b.admit(1000, t0 + RefusalBudget::kWindowUs + 3));
        const auto r = refusal_closing(*c);
        CHECK(r.at("type") == "auth_failed");
        CHECK(r.at("suppressed") == 51);
        CHECK(r.at("reason").get<std::string>().find("51 more tokens were refused within 10 s") !=
              std::string::npos);
        CHECK(r.at("reason").get<std::string>().find("2000, 2001") != std::string::npos);
        CHECK(r.at("reason").get<std::string>().find("and others") != std::string::npos);
    }

    TEST_CASE("a quiet window records nothing more; a clock stepped back ends a window") {
        RefusalBudget b;
        CHECK(b.admit(7, 100));
        CHECK_FALSE(b.ended(100 + 2 * RefusalBudget::kWindowUs));  // nothing counted: no closing record
        for (int i = 1; i < RefusalBudget::kPerWindow; ++i) CHECK(b.admit(7, 200));
        CHECK_FALSE(b.admit(7, 300));
        auto c = b.ended(50);  // before the window began
        REQUIRE(c);
        CHECK(c->suppressed == 1);
        CHECK(c->uids == std::set<std::uint32_t>{7});
        CHECK_FALSE(c->more_uids);
    }
}

}  // namespace test_refusal_budget
