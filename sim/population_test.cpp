// sim/population_test.cpp: users derive from (seed, index) alone; provisioning is idempotent.
#include "population.h"

#include "auth/password.h"
#include "store/mail_store.h"

#include <gtest/gtest.h>

#include <filesystem>

using millipost::sim::Population;

TEST(Population, DerivesTheSameUserFromSeedAndIndex) {
    Population a(7, 1000000), b(7, 1000000), c(8, 1000000);
    EXPECT_EQ(a.user(123456).password, b.user(123456).password);
    EXPECT_EQ(a.user(123456).name, b.user(123456).name);
    EXPECT_NE(a.user(123456).password, c.user(123456).password);
    EXPECT_NE(a.user(1).password, a.user(2).password);
    EXPECT_EQ(a.user(5).login, "user5");
    EXPECT_EQ(a.user(5).address, "user5@localhost");
    EXPECT_THROW(a.user(1000000), std::out_of_range);
}

TEST(Population, SharedPassword) {
    Population p(1, 10, std::string("secret"), "example.org");
    EXPECT_EQ(p.user(3).password, "secret");
    EXPECT_EQ(p.user(3).address, "user3@example.org");
}

TEST(Population, ProvisionLoadsUsersThatCanLogIn) {
    auto dir =
        std::filesystem::temp_directory_path() / ("millipost-pop-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    {
        auto store = millipost::store::open_store("sqlite:" + dir.string());
        Population p(3, 250000);
        std::uint64_t last_progress = 0;
        EXPECT_EQ(p.provision(*store, 0, 250000, 2, [&](std::uint64_t n) { last_progress = n; }),
                  250000u);
        EXPECT_EQ(last_progress, 250000u);
        EXPECT_EQ(p.provision(*store, 0, 1000, 2), 0u);  // idempotent
        auto u = store->find_user("user249999");
        ASSERT_TRUE(u);
        EXPECT_TRUE(millipost::auth::verify_password(u->secret, p.user(249999).password));
        EXPECT_FALSE(millipost::auth::verify_password(u->secret, p.user(1).password));
    }
    std::filesystem::remove_all(dir);
}
