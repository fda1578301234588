// sim/population_test.cpp: users derive from (seed, index) alone; provisioning is idempotent.
#include "population.h"

#include "message_gen.h"

#include "auth/password.h"
#include "store/mail_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

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

TEST(Population, PopulateMailboxesFillsEachUsersMailboxes) {
    auto dir =
        std::filesystem::temp_directory_path() / ("millipost-popmb-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    {
        auto store = millipost::store::open_store("sqlite:" + dir.string());
        Population p(5, 30);
        ASSERT_EQ(p.provision(*store, 0, 30, 2), 30u);
        millipost::sim::MailboxPlan plan;
        plan.messages = 150;  // with 20 users: more than one batch of 2000
        std::uint64_t last_users = 0, last_messages = 0;
        auto added =
            p.populate_mailboxes(*store, 5, 25, plan, 2, [&](std::uint64_t u, std::uint64_t m) {
                EXPECT_GE(u, last_users);
                EXPECT_GT(m, last_messages);
                last_users = u;
                last_messages = m;
            });
        EXPECT_EQ(added, 20u * 150);
        EXPECT_EQ(last_users, 20u);
        EXPECT_EQ(last_messages, added);
        for (std::uint64_t i : {0ull, 5ull, 17ull, 24ull, 25ull}) {
            auto u = store->find_user(p.user(i).login);
            ASSERT_TRUE(u);
            auto usage = store->usage(u->id);
            EXPECT_EQ(usage.messages, (i >= 5 && i < 25) ? 150u : 0u) << i;
        }
        auto u = *store->find_user("user17");
        auto inbox = *store->find_mailbox(u.id, "INBOX");
        EXPECT_GT(inbox.messages, 100u);
        auto sent = store->find_mailbox(u.id, "Sent");
        ASSERT_TRUE(sent);
        EXPECT_EQ(sent->special_use, "\\Sent");
        // The first INBOX message is the generator's message for (user 17, its k), intact.
        auto msgs = store->messages(u.id, inbox.id);
        auto bytes = store->read_message(u.id, inbox.id, msgs[0].uid);
        auto id_pos = bytes.find("X-Millipost-Id: 5.");
        ASSERT_NE(id_pos, std::string::npos);
        auto id = bytes.substr(id_pos + 16, bytes.find('\r', id_pos) - id_pos - 16);
        auto index = std::stoull(id.substr(2), nullptr, 16);
        EXPECT_EQ(index >> 24, 17u);
        millipost::sim::MessageSpec spec{5, index, "", "user17@localhost", {}};
        auto from_pos = bytes.find("\r\nFrom: ");
        ASSERT_NE(from_pos, std::string::npos);
        // Regenerating needs the same sender: the contact is in the From header.
        auto lt = bytes.find('<', from_pos), gt = bytes.find('>', from_pos);
        spec.from = bytes.substr(lt + 1, gt - lt - 1);
        if (auto irt = bytes.find("\r\nIn-Reply-To: "); irt != std::string::npos)
            spec.in_reply_to = bytes.substr(irt + 15, bytes.find('\r', irt + 2) - irt - 15);
        EXPECT_EQ(millipost::sim::generate_message(spec).bytes, bytes);
        // Older messages read, the newest tenth not.
        auto all = store->messages(u.id, inbox.id);
        auto seen = std::count_if(all.begin(), all.end(), [](auto& m) {
            return std::find(m.flags.begin(), m.flags.end(), "\\Seen") != m.flags.end();
        });
        EXPECT_GT(seen, static_cast<long>(all.size() * 7 / 10));
        EXPECT_LT(seen, static_cast<long>(all.size()));
        // Unprovisioned users are refused.
        Population bigger(5, 100);
        EXPECT_THROW(bigger.populate_mailboxes(*store, 90, 91, plan, 1), std::runtime_error);
    }
    std::filesystem::remove_all(dir);
}

TEST(Population, VariedMailboxSizesAreHeavyTailedAroundTheMedian) {
    Population p(9, 100000);
    millipost::sim::MailboxPlan plan;
    plan.messages = 1000;
    plan.vary = true;
    std::vector<std::uint32_t> n;
    for (std::uint64_t i = 0; i < 20000; ++i)
        n.push_back(p.mailbox_messages(i, plan));
    std::sort(n.begin(), n.end());
    EXPECT_GT(n[10000], 900u);
    EXPECT_LT(n[10000], 1100u);
    EXPECT_GT(n[19800], 5000u);  // p99 ~ e^2.33 times the median
    EXPECT_LE(n.back(), 20000u);
    plan.vary = false;
    EXPECT_EQ(p.mailbox_messages(3, plan), 1000u);
}
