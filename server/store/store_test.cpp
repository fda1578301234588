// store/store_test.cpp: the MailStore contract, run against the SQLite backend on a real file.
// Every backend must pass this suite; RADOS will be added to the backend list.
#include "store/mail_store.h"
#include "store/sqlite/sqlite_store.h"
#include "util/limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

using namespace millipost::store;
namespace fs = std::filesystem;

class StoreContract : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("millipost-store-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        store_ = open_store("sqlite:" + dir_.string());
    }
    void TearDown() override {
        store_.reset();
        fs::remove_all(dir_);
    }
    void reopen() {
        store_.reset();
        store_ = open_store("sqlite:" + dir_.string());
    }
    fs::path dir_;
    std::unique_ptr<MailStore> store_;
};

TEST_F(StoreContract, UsersAreUniqueAndHaveAnInbox) {
    auto id = store_->add_user("alice", "$secret");
    EXPECT_THROW(store_->add_user("alice", "$other"), StoreError);
    auto u = store_->find_user("alice");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, id);
    EXPECT_EQ(u->secret, "$secret");
    EXPECT_FALSE(store_->find_user("bob"));
    auto inbox = store_->find_mailbox(id, "inbox");  // INBOX is case-insensitive
    ASSERT_TRUE(inbox);
    EXPECT_EQ(inbox->name, "INBOX");
    EXPECT_EQ(inbox->uidnext, 1u);
    EXPECT_EQ(store_->user_count(), 1u);
    store_->set_secret("alice", "$new");
    EXPECT_EQ(store_->find_user("alice")->secret, "$new");
    EXPECT_THROW(store_->set_secret("nobody", "$x"), StoreError);
}

TEST_F(StoreContract, DeliveryIsSharedAndUidsAscend) {
    auto a = store_->add_user("a", "$");
    auto b = store_->add_user("b", "$");
    std::vector<UserId> both{a, b};
    auto d1 = store_->deliver(both, "INBOX", "Subject: 1\r\n\r\nx\r\n", 1000);
    auto d2 = store_->deliver(std::vector<UserId>{a}, "INBOX", "Subject: 2\r\n\r\ny\r\n", 1001);
    ASSERT_EQ(d1.size(), 2u);
    EXPECT_EQ(d1[0].uid, 1u);
    EXPECT_EQ(d2[0].uid, 2u);
    auto inbox = *store_->find_mailbox(a, "INBOX");
    auto msgs = store_->messages(a, inbox.id);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].uid, 1u);
    EXPECT_EQ(msgs[1].uid, 2u);
    EXPECT_LT(msgs[0].modseq, msgs[1].modseq);
    EXPECT_EQ(store_->read_message(a, inbox.id, 2), "Subject: 2\r\n\r\ny\r\n");
    EXPECT_EQ(inbox.messages, 2u);
    EXPECT_EQ(inbox.uidnext, 3u);
}

TEST_F(StoreContract, UsersCannotReadEachOthersMail) {
    auto a = store_->add_user("a", "$");
    auto b = store_->add_user("b", "$");
    store_->deliver(std::vector<UserId>{a}, "INBOX", "secret\r\n", 1);
    auto inbox_a = store_->find_mailbox(a, "INBOX")->id;
    EXPECT_THROW(store_->read_message(b, inbox_a, 1), StoreError);
    EXPECT_THROW(store_->messages(b, inbox_a), StoreError);
    EXPECT_THROW(store_->expunge(b, inbox_a, std::vector<std::uint32_t>{1}), StoreError);
    EXPECT_EQ(store_->messages(a, inbox_a).size(), 1u);
}

// Every call that takes a mailbox id is scoped by the caller's user id: another user's id names
// no mailbox for the caller (NotFound, or nothing), and the owner's data stays exactly as it was.
// Mailbox ids are global, so a session that got hold of one (a bug elsewhere, a guessed
// number) must still not reach through the store.
TEST_F(StoreContract, CrossUserMailboxIdsReachNothing) {
    auto a = store_->add_user("a", "$");
    auto b = store_->add_user("b", "$");
    store_->create_mailbox(a, "Secrets");
    auto secrets = store_->find_mailbox(a, "Secrets")->id;
    auto inbox_a = store_->find_mailbox(a, "INBOX")->id;
    auto inbox_b = store_->find_mailbox(b, "INBOX")->id;
    store_->deliver(std::vector<UserId>{a}, "Secrets", "secret one\r\n", 1);
    store_->deliver(std::vector<UserId>{a}, "INBOX", "secret two\r\n", 2);
    store_->deliver(std::vector<UserId>{b}, "INBOX", "b's own\r\n", 3);
    store_->add_subscription(a, "Secrets");
    const std::vector<std::string> seen{"\\Seen"};
    store_->store_flags(a, secrets, std::vector<std::uint32_t>{1}, FlagOp::Add, seen);

    auto snapshot = [&] {
        std::string out;
        for (auto& mb : store_->list_mailboxes(a)) {
            out += mb.name + " " + std::to_string(mb.id) + " " + std::to_string(mb.uidnext) + " " +
                   std::to_string(mb.highestmodseq) + " " + std::to_string(mb.messages) + " " +
                   std::to_string(mb.recent) + ";";
            for (auto& m : store_->messages(a, mb.id)) {
                out += std::to_string(m.uid) + ":" + std::to_string(m.modseq);
                for (auto& f : m.flags)
                    out += " " + f;
                out += " " + store_->read_message(a, mb.id, m.uid) + ";";
            }
        }
        for (auto& sub : store_->subscriptions(a))
            out += "sub " + sub + ";";
        out += "state " + std::to_string(store_->state(a));
        return out;
    };
    const auto before = snapshot();
    const std::vector<std::uint32_t> uids{1, 2, 3};
    const std::string_view bytes = "planted\r\n";
    const std::vector<NewMessage> planted{NewMessage{bytes, 4, {}}};
    // Names are per user: b's lookups of a's names find nothing.
    EXPECT_FALSE(store_->find_mailbox(b, "Secrets"));
    for (auto mb : {secrets, inbox_a}) {
        SCOPED_TRACE(mb);
        EXPECT_THROW(store_->messages(b, mb), StoreError);
        EXPECT_THROW(store_->read_message(b, mb, 1), StoreError);
        EXPECT_THROW(store_->mailbox_changes(b, mb, 0), StoreError);
        EXPECT_THROW(store_->claim_recent(b, mb), StoreError);
        EXPECT_THROW(store_->update_flags(b, mb, uids, FlagOp::Replace, {}), StoreError);
        EXPECT_THROW(store_->expunge(b, mb, uids), StoreError);
        EXPECT_THROW(store_->append(b, mb, planted), StoreError);
        // Copy and move in both directions: out of a's mailbox, and into it.
        EXPECT_THROW(store_->copy_messages(b, mb, uids, inbox_b), StoreError);
        EXPECT_THROW(store_->move_messages(b, mb, uids, inbox_b), StoreError);
        EXPECT_THROW(store_->copy_messages(b, inbox_b, uids, mb), StoreError);
        EXPECT_THROW(store_->move_messages(b, inbox_b, uids, mb), StoreError);
        EXPECT_THROW(store_->rename_mailbox(b, mb, "Stolen"), StoreError);
        EXPECT_THROW(store_->delete_mailbox(b, mb), StoreError);
    }
    // Delivery to b never lands in a mailbox of a's, even by a's mailbox's name.
    EXPECT_THROW(store_->deliver(std::vector<UserId>{b}, "Secrets", "x\r\n", 5), StoreError);
    // b's own changes to names a also has (creating, renaming, subscribing, removing) touch
    // only b's.
    store_->create_mailbox(b, "Secrets");
    auto b_secrets = store_->find_mailbox(b, "Secrets")->id;
    EXPECT_NE(b_secrets, secrets);
    store_->rename_mailbox(b, b_secrets, "Secrets2");
    store_->add_subscription(b, "Secrets");
    store_->remove_subscription(b, "Secrets");
    store_->delete_mailbox(b, b_secrets);
    EXPECT_EQ(store_->usage(b).messages, 1u);
    EXPECT_EQ(store_->messages(b, inbox_b).size(), 1u);
    EXPECT_EQ(snapshot(), before);
    // The change log of b names none of a's mailboxes (ids are "<mailbox>" or "<mailbox>:<uid>").
    for (auto& c : store_->changes_since(b, 0, 1000).changes) {
        auto id = c.id.substr(0, c.id.find(':'));
        EXPECT_NE(id, std::to_string(secrets));
        EXPECT_NE(id, std::to_string(inbox_a));
    }
}

TEST_F(StoreContract, ExpungeNeverReusesUidsAndFreesBodies) {
    auto a = store_->add_user("a", "$");
    auto mb = store_->find_mailbox(a, "INBOX")->id;
    store_->deliver(std::vector<UserId>{a}, "INBOX", "m1\r\n", 1);
    store_->deliver(std::vector<UserId>{a}, "INBOX", "m2\r\n", 1);
    store_->expunge(a, mb, std::vector<std::uint32_t>{2});
    reopen();
    auto d = store_->deliver(std::vector<UserId>{a}, "INBOX", "m3\r\n", 1);
    EXPECT_EQ(d[0].uid, 3u);
    auto msgs = store_->messages(a, mb);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].uid, 1u);
    EXPECT_EQ(msgs[1].uid, 3u);
}

TEST_F(StoreContract, FlagsBumpModseqOnlyWhenTheyChange) {
    auto a = store_->add_user("a", "$");
    auto mb = store_->find_mailbox(a, "INBOX")->id;
    store_->deliver(std::vector<UserId>{a}, "INBOX", "m\r\n", 1);
    std::vector<std::uint32_t> uid1{1};
    std::vector<std::string> seen{"\\Seen"};
    auto m1 = store_->store_flags(a, mb, uid1, FlagOp::Add, seen);
    auto m2 = store_->store_flags(a, mb, uid1, FlagOp::Add, seen);
    EXPECT_EQ(m1, m2);
    auto m3 = store_->store_flags(a, mb, uid1, FlagOp::Remove, seen);
    EXPECT_GT(m3, m2);
    EXPECT_TRUE(store_->messages(a, mb)[0].flags.empty());
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->highestmodseq, m3);
}

TEST_F(StoreContract, ChangeLogReportsWhatChangedSinceAState) {
    auto a = store_->add_user("a", "$");
    auto s0 = store_->state(a);
    auto mb = store_->create_mailbox(a, "Archive");
    store_->deliver(std::vector<UserId>{a}, "Archive", "m\r\n", 1);
    auto ch = store_->changes_since(a, s0, 10);
    ASSERT_EQ(ch.changes.size(), 2u);
    EXPECT_EQ(ch.changes[0].kind, Change::Kind::Mailbox);
    EXPECT_EQ(ch.changes[1].kind, Change::Kind::Message);
    EXPECT_EQ(ch.changes[1].id, std::to_string(mb.id) + ":1");
    EXPECT_EQ(ch.state, store_->state(a));
    auto limited = store_->changes_since(a, s0, 1);
    EXPECT_TRUE(limited.has_more);
    EXPECT_EQ(limited.changes.size(), 1u);
    EXPECT_TRUE(store_->changes_since(a, ch.state, 10).changes.empty());
}

TEST_F(StoreContract, NotificationsFollowDurableChanges) {
    auto a = store_->add_user("a", "$");
    std::vector<Event> seen;
    {
        auto sub = store_->subscribe(a, [&](const Event& e) { seen.push_back(e); });
        store_->deliver(std::vector<UserId>{a}, "INBOX", "m\r\n", 1);
    }
    store_->deliver(std::vector<UserId>{a}, "INBOX", "m\r\n", 1);  // after unsubscribe
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].kind, Event::Kind::Appended);
    EXPECT_EQ(seen[0].uids, std::vector<std::uint32_t>{1});
}

TEST_F(StoreContract, BulkAddSkipsExistingAndIsDurable) {
    store_->add_user("u1", "$");
    std::vector<NewUser> users;
    for (int i = 0; i < 1000; ++i)
        users.push_back({"u" + std::to_string(i), "$s"});
    EXPECT_EQ(store_->add_users(users, {}), 999u);
    reopen();
    EXPECT_EQ(store_->user_count(), 1000u);
    auto u = store_->find_user("u999");
    ASSERT_TRUE(u);
    EXPECT_TRUE(store_->find_mailbox(u->id, "INBOX"));
}

TEST_F(StoreContract, BulkAppendContinuesUidsCreatesMailboxesAndLogsChanges) {
    auto a = store_->add_user("a", "$");
    auto b = store_->add_user("b", "$");
    store_->deliver(std::vector<UserId>{a}, "INBOX", "first\r\n", 1);
    auto s0 = store_->state(a);
    auto inbox = *store_->find_mailbox(a, "INBOX");
    std::vector<BulkMessage> batch = {
        {a, "inbox", "one\r\n", 10, "\\Seen"},
        {a, "INBOX", "two\r\n", 11, "\\Seen \\Flagged \\Seen"},
        {a, "Sent", "sent\r\n", 12, ""},
        {b, "INBOX", "b1\r\n", 13, ""},
        {a, "INBOX", "three\r\n", 14, ""},
    };
    EXPECT_EQ(store_->bulk_append(batch), 5u);
    auto msgs = store_->messages(a, inbox.id);
    ASSERT_EQ(msgs.size(), 4u);
    EXPECT_EQ(msgs[1].uid, 2u);
    EXPECT_EQ(msgs[3].uid, 4u);
    EXPECT_EQ(msgs[2].flags, (std::vector<std::string>{"\\Flagged", "\\Seen"}));
    EXPECT_GT(msgs[3].modseq, msgs[0].modseq);
    EXPECT_EQ(store_->read_message(a, inbox.id, 4), "three\r\n");
    auto after = *store_->find_mailbox(a, "INBOX");
    EXPECT_EQ(after.uidnext, 5u);
    EXPECT_EQ(after.messages, 4u);
    EXPECT_EQ(after.size, 7u + 5 + 5 + 7);
    EXPECT_EQ(after.highestmodseq, msgs[3].modseq);
    auto sent = store_->find_mailbox(a, "Sent");
    ASSERT_TRUE(sent);
    EXPECT_EQ(sent->special_use, "\\Sent");
    EXPECT_EQ(sent->messages, 1u);
    // One change per message and one for the new mailbox, in order.
    auto ch = store_->changes_since(a, s0, 100);
    ASSERT_EQ(ch.changes.size(), 5u);
    EXPECT_EQ(ch.changes[0].id, std::to_string(inbox.id) + ":2");
    EXPECT_EQ(ch.changes[2].kind, Change::Kind::Mailbox);
    EXPECT_EQ(ch.state, store_->state(a));
    // Later deliveries continue after the bulk-loaded UIDs.
    auto d = store_->deliver(std::vector<UserId>{a}, "INBOX", "later\r\n", 20);
    EXPECT_EQ(d[0].uid, 5u);
    EXPECT_EQ(store_->usage(b).messages, 1u);
    // An unknown user fails the whole batch.
    std::vector<BulkMessage> bad = {{a, "INBOX", "x\r\n", 1, ""}, {9999, "INBOX", "y\r\n", 1, ""}};
    EXPECT_THROW(store_->bulk_append(bad), StoreError);
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->messages, 5u);
}

TEST_F(StoreContract, ConcurrentDeliveriesKeepUidsUnique) {
    auto a = store_->add_user("a", "$");
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                try {
                    store_->deliver(std::vector<UserId>{a}, "INBOX", "m\r\n", 1);
                } catch (...) {
                    ++failures;
                }
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(failures, 0);
    auto msgs = store_->messages(a, store_->find_mailbox(a, "INBOX")->id);
    ASSERT_EQ(msgs.size(), 100u);
    for (std::size_t i = 0; i < msgs.size(); ++i)
        EXPECT_EQ(msgs[i].uid, i + 1);
}

TEST_F(StoreContract, CopyKeepsFlagsAndSharesBodies) {
    auto a = store_->add_user("a", "$");
    std::vector<UserId> me{a};
    std::vector<std::string> seen{"\\Seen"};
    store_->deliver(me, "INBOX", "Subject: 1\r\n\r\nx\r\n", 1000, seen);
    store_->deliver(me, "INBOX", "Subject: 2\r\n\r\ny\r\n", 1001);
    auto inbox = *store_->find_mailbox(a, "INBOX");
    auto dst = store_->create_mailbox(a, "Archive");
    std::vector<std::uint32_t> uids{2, 1, 7};
    auto map = store_->copy_messages(a, inbox.id, uids, dst.id);
    ASSERT_EQ(map.size(), 2u);  // UID 7 does not exist
    EXPECT_EQ(map[0], std::make_pair(1u, 1u));
    EXPECT_EQ(map[1], std::make_pair(2u, 2u));
    auto copied = store_->messages(a, dst.id);
    ASSERT_EQ(copied.size(), 2u);
    EXPECT_EQ(copied[0].flags, seen);
    EXPECT_EQ(copied[0].internaldate, 1000);
    EXPECT_EQ(store_->read_message(a, dst.id, 2), "Subject: 2\r\n\r\ny\r\n");
    // The body outlives the expunge of the original.
    std::vector<std::uint32_t> one{1};
    store_->expunge(a, inbox.id, one);
    EXPECT_EQ(store_->read_message(a, dst.id, 1), "Subject: 1\r\n\r\nx\r\n");
    EXPECT_EQ(store_->find_mailbox(a, "Archive")->messages, 2u);
}

TEST_F(StoreContract, MoveRemovesTheOriginalsAndNotifies) {
    auto a = store_->add_user("a", "$");
    std::vector<UserId> me{a};
    store_->deliver(me, "INBOX", "Subject: 1\r\n\r\nx\r\n", 1000);
    auto inbox = *store_->find_mailbox(a, "INBOX");
    auto dst = store_->create_mailbox(a, "Trash");
    std::vector<Event> events;
    auto sub = store_->subscribe(a, [&](const Event& e) { events.push_back(e); });
    std::vector<std::uint32_t> uids{1};
    auto map = store_->move_messages(a, inbox.id, uids, dst.id);
    ASSERT_EQ(map.size(), 1u);
    EXPECT_TRUE(store_->messages(a, inbox.id).empty());
    EXPECT_EQ(store_->messages(a, dst.id).size(), 1u);
    EXPECT_EQ(store_->read_message(a, dst.id, map[0].second), "Subject: 1\r\n\r\nx\r\n");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, Event::Kind::Appended);
    EXPECT_EQ(events[1].kind, Event::Kind::Expunged);
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->messages, 0u);
}

TEST_F(StoreContract, RenameMovesChildrenAndRefusesTakenNames) {
    auto a = store_->add_user("a", "$");
    auto p = store_->create_mailbox(a, "Projects");
    store_->create_mailbox(a, "Projects/2026");
    store_->create_mailbox(a, "Other");
    EXPECT_THROW(store_->rename_mailbox(a, p.id, "Other"), StoreError);
    EXPECT_THROW(store_->rename_mailbox(a, p.id, "Projects/2026/x"), StoreError);
    auto inbox = *store_->find_mailbox(a, "INBOX");
    EXPECT_THROW(store_->rename_mailbox(a, inbox.id, "Old"), StoreError);
    store_->rename_mailbox(a, p.id, "Work");
    EXPECT_FALSE(store_->find_mailbox(a, "Projects"));
    auto w = store_->find_mailbox(a, "Work");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->id, p.id);
    EXPECT_EQ(w->uidvalidity, p.uidvalidity);
    EXPECT_TRUE(store_->find_mailbox(a, "Work/2026"));
}

// RFC 9051 §2.3.1.1: a name deleted and created again has a new UIDVALIDITY, even within the
// same second (imaptest's uidvalidity group does exactly that).
TEST_F(StoreContract, RecreatedMailboxGetsANewUidValidity) {
    auto a = store_->add_user("a", "$");
    std::set<std::uint32_t> seen{store_->find_mailbox(a, "INBOX")->uidvalidity};
    for (int i = 0; i < 5; ++i) {
        auto m = store_->create_mailbox(a, "Box");
        EXPECT_TRUE(seen.insert(m.uidvalidity).second) << m.uidvalidity;
        store_->delete_mailbox(a, m.id);
    }
    EXPECT_EQ(store_->create_mailbox(a, "Other", "\\Sent").special_use, "\\Sent");
}

TEST_F(StoreContract, SubscriptionsAreNamesPerUser) {
    auto a = store_->add_user("a", "$");
    auto b = store_->add_user("b", "$");
    store_->add_subscription(a, "inbox");
    store_->add_subscription(a, "Lists/x");
    store_->add_subscription(a, "Lists/x");
    EXPECT_EQ(store_->subscriptions(a), (std::vector<std::string>{"INBOX", "Lists/x"}));
    EXPECT_TRUE(store_->subscriptions(b).empty());
    store_->remove_subscription(a, "Lists/x");
    EXPECT_EQ(store_->subscriptions(a), (std::vector<std::string>{"INBOX"}));
}

TEST_F(StoreContract, MailboxChangesReportNewFlaggedAndVanishedSinceAModseq) {
    auto a = store_->add_user("a", "$");
    auto inbox = *store_->find_mailbox(a, "INBOX");
    std::vector<UserId> to{a};
    for (int i = 0; i < 4; ++i)
        store_->deliver(to, "INBOX", "Subject: x\r\n\r\nx\r\n", 1000 + i);
    auto base = store_->find_mailbox(a, "INBOX")->highestmodseq;
    EXPECT_TRUE(store_->mailbox_changes(a, inbox.id, base).changed.empty());

    std::vector<std::uint32_t> two{2};
    std::vector<std::string> seen{"\\Seen"};
    store_->store_flags(a, inbox.id, two, FlagOp::Add, seen);
    std::vector<std::uint32_t> three{3};
    store_->expunge(a, inbox.id, three);
    store_->deliver(to, "INBOX", "Subject: y\r\n\r\ny\r\n", 2000);
    auto archive = store_->create_mailbox(a, "Archive");
    std::vector<std::uint32_t> one{1};
    store_->move_messages(a, inbox.id, one, archive.id);

    auto d = store_->mailbox_changes(a, inbox.id, base);
    std::vector<std::uint32_t> changed;
    for (auto& m : d.changed) {
        changed.push_back(m.uid);
        EXPECT_GT(m.modseq, base);
    }
    EXPECT_EQ(changed, (std::vector<std::uint32_t>{2, 5}));
    EXPECT_EQ(d.vanished, (std::vector<std::uint32_t>{1, 3}));
    EXPECT_EQ(d.mailbox.messages, 3u);  // UIDs 2, 4 and 5
    EXPECT_GT(d.mailbox.highestmodseq, base);
    // Nothing after the newest MODSEQ; tombstones survive a restart.
    EXPECT_TRUE(store_->mailbox_changes(a, inbox.id, d.mailbox.highestmodseq).vanished.empty());
    reopen();
    EXPECT_EQ(store_->mailbox_changes(a, inbox.id, base).vanished,
              (std::vector<std::uint32_t>{1, 3}));
    EXPECT_THROW(store_->mailbox_changes(store_->add_user("b", "$"), inbox.id, 0), StoreError);
}

TEST_F(StoreContract, RecentIsClaimedOnce) {
    auto a = store_->add_user("a", "$");
    auto inbox = *store_->find_mailbox(a, "INBOX");
    std::vector<UserId> to{a};
    store_->deliver(to, "INBOX", "x\r\n", 1);
    store_->deliver(to, "INBOX", "y\r\n", 2);
    using Range = std::pair<std::uint32_t, std::uint32_t>;
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->recent, 2u);
    EXPECT_EQ(store_->claim_recent(a, inbox.id), Range(1, 3));  // UIDs 1 and 2: this caller's
    EXPECT_EQ(store_->claim_recent(a, inbox.id), Range(3, 3));  // nothing new for the next
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->recent, 0u);
    store_->deliver(to, "INBOX", "z\r\n", 3);
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->recent, 1u);
    EXPECT_EQ(store_->claim_recent(a, inbox.id), Range(3, 4));
    EXPECT_EQ(store_->claim_recent(a, inbox.id), Range(4, 4));
}

TEST_F(StoreContract, AppendIsAtomicAndUsageCountsEveryMailbox) {
    auto a = store_->add_user("a", "$");
    auto inbox = *store_->find_mailbox(a, "INBOX");
    auto sent = store_->create_mailbox(a, "Sent", "\\Sent");
    EXPECT_EQ(sent.special_use, "\\Sent");
    EXPECT_EQ(store_->find_mailbox(a, "Sent")->special_use, "\\Sent");
    std::vector<NewMessage> batch{{"aaaa\r\n", 10, {"\\Seen"}}, {"bb\r\n", 11, {}}};
    auto uids = store_->append(a, sent.id, batch);
    EXPECT_EQ(uids, (std::vector<std::uint32_t>{1, 2}));
    auto msgs = store_->messages(a, sent.id);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].flags, (std::vector<std::string>{"\\Seen"}));
    EXPECT_EQ(msgs[1].internaldate, 11);
    EXPECT_EQ(store_->read_message(a, sent.id, 2), "bb\r\n");
    std::vector<UserId> to{a};
    store_->deliver(to, "INBOX", "cccccc\r\n", 1);
    auto u = store_->usage(a);
    EXPECT_EQ(u.messages, 3u);
    EXPECT_EQ(u.bytes, 6u + 4u + 8u);
    auto b = store_->add_user("b", "$");
    EXPECT_THROW(store_->append(b, inbox.id, batch), StoreError);
    EXPECT_EQ(store_->usage(b).messages, 0u);
}

TEST_F(StoreContract, UnchangedSinceRefusesMessagesChangedLater) {
    auto a = store_->add_user("a", "$");
    auto inbox = *store_->find_mailbox(a, "INBOX");
    std::vector<UserId> to{a};
    for (int i = 0; i < 3; ++i)
        store_->deliver(to, "INBOX", "x\r\n", i);
    std::vector<std::uint32_t> two{2};
    std::vector<std::string> flagged{"\\Flagged"}, seen{"\\Seen"};
    auto before = store_->find_mailbox(a, "INBOX")->highestmodseq;
    store_->store_flags(a, inbox.id, two, FlagOp::Add, flagged);  // 2 changes after `before`
    std::vector<std::uint32_t> all{3, 1, 2, 9};
    auto r = store_->update_flags(a, inbox.id, all, FlagOp::Add, seen, before);
    EXPECT_EQ(r.modified, (std::vector<std::uint32_t>{2}));
    EXPECT_EQ(r.changed, (std::vector<std::uint32_t>{1, 3}));
    ASSERT_EQ(r.messages.size(), 3u);  // 9 does not exist
    EXPECT_EQ(r.messages[0].flags, seen);
    EXPECT_EQ(r.messages[1].flags, flagged);
    EXPECT_EQ(r.messages[0].modseq, r.modseq);
    EXPECT_EQ(store_->find_mailbox(a, "INBOX")->highestmodseq, r.modseq);
    // UNCHANGEDSINCE 0 always fails; a STORE that changes nothing keeps the MODSEQ.
    EXPECT_EQ(store_->update_flags(a, inbox.id, all, FlagOp::Add, seen, 0).modified.size(), 3u);
    auto again = store_->update_flags(a, inbox.id, all, FlagOp::Add, seen);
    EXPECT_EQ(again.changed, (std::vector<std::uint32_t>{2}));  // the one refused above
    auto noop = store_->update_flags(a, inbox.id, all, FlagOp::Add, seen);
    EXPECT_TRUE(noop.changed.empty());
    EXPECT_EQ(noop.modseq, again.modseq);
}

// A deleted mailbox's id must not name a mailbox created later (SQLite would hand the newest
// row's rowid out again): the old id is refused, also across a reopen. Found by the store model.
TEST_F(StoreContract, MailboxIdsAreNeverReused) {
    auto a = store_->add_user("a", "$");
    auto first = store_->create_mailbox(a, "Box");
    store_->delete_mailbox(a, first.id);
    auto second = store_->create_mailbox(a, "Box");
    EXPECT_NE(second.id, first.id);
    std::vector<std::uint32_t> one{1};
    std::vector<std::string> seen{"\\Seen"};
    EXPECT_THROW(store_->update_flags(a, first.id, one, FlagOp::Add, seen), StoreError);
    store_->delete_mailbox(a, second.id);
    reopen();
    auto third = store_->create_mailbox(a, "Box");
    EXPECT_GT(third.id, second.id);
    auto b = store_->add_user("b", "$");  // its INBOX too
    EXPECT_GT(store_->find_mailbox(b, "INBOX")->id, third.id);
    std::vector<NewUser> more{{"c", "$"}};
    store_->add_users(more, {});
    EXPECT_GT(store_->find_mailbox(store_->find_user("c")->id, "INBOX")->id,
              store_->find_mailbox(b, "INBOX")->id);
}

TEST_F(StoreContract, AMailboxCreatedAgainGetsANewUidvalidity) {
    auto a = store_->add_user("a", "$");
    auto first = store_->create_mailbox(a, "Box");
    store_->delete_mailbox(a, first.id);
    auto second = store_->create_mailbox(a, "Box");  // within the same second
    EXPECT_GT(second.uidvalidity, first.uidvalidity);
    reopen();
    auto third = store_->create_mailbox(a, "Other");
    EXPECT_GT(third.uidvalidity, second.uidvalidity);
}

TEST_F(StoreContract, TombstonesAreBoundedAndOlderResyncsAreFlaggedIncomplete) {
    auto a = store_->add_user("a", "$");
    auto inbox = *store_->find_mailbox(a, "INBOX");
    // Half of them expunged: more tombstones than kept.
    const std::size_t n = millipost::limits::kTombstonesPerMailbox * 24 / 10;
    std::vector<NewMessage> batch(n, NewMessage{"x\r\n", 1, {}});
    auto uids = store_->append(a, inbox.id, batch);
    auto before = store_->find_mailbox(a, "INBOX")->highestmodseq;
    // Expunged one at a time, so that each has its own MODSEQ.
    for (std::size_t i = 0; i + 1 < uids.size(); i += 2) {
        std::vector<std::uint32_t> one{uids[i]};
        store_->expunge(a, inbox.id, one);
    }
    auto recent_since = store_->find_mailbox(a, "INBOX")->highestmodseq - 10;
    auto d = store_->mailbox_changes(a, inbox.id, recent_since);
    EXPECT_TRUE(d.vanished_complete);
    EXPECT_EQ(d.vanished.size(), 10u);
    // Fewer than n/2 tombstones may be dropped, but nothing beyond the limit is kept; a resync
    // from before all of them is flagged.
    auto old = store_->mailbox_changes(a, inbox.id, before);
    EXPECT_LE(old.vanished.size(), millipost::limits::kTombstonesPerMailbox +
                                       millipost::limits::kTombstonesPerMailbox / 10);
    EXPECT_EQ(old.vanished_complete, old.vanished.size() == n / 2);
}

TEST_F(StoreContract, OutboundQueueIsDurableAndOrdered) {
    EXPECT_TRUE(store_->outbound_queue().empty());
    std::vector<std::string> two = {"bob@remote.example", "carol@other.example"};
    std::vector<std::string> one = {"dave@remote.example"};
    std::string bytes("Subject: x\r\n\r\nbody\0with nul\r\n", 30);
    auto a = store_->enqueue_outbound("alice@localhost", two, bytes, 100);
    auto b = store_->enqueue_outbound("", one, "m2", 101);
    EXPECT_LT(a, b);
    reopen();  // durable when enqueue_outbound returned
    auto q = store_->outbound_queue();
    ASSERT_EQ(q.size(), 2u);
    EXPECT_EQ(q[0].id, a);
    EXPECT_EQ(q[0].sender, "alice@localhost");
    EXPECT_EQ(q[0].recipients, two);
    EXPECT_EQ(q[0].bytes, bytes);
    EXPECT_EQ(q[0].queued_at, 100);
    EXPECT_EQ(q[1].sender, "");
    EXPECT_EQ(q[1].recipients, one);
    store_->remove_outbound(a);
    store_->remove_outbound(a);  // absent: no-op
    q = store_->outbound_queue();
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].id, b);
}

TEST_F(StoreContract, OutboundScheduleAndPerRecipientProgress) {
    std::vector<std::string> three = {"a@x.example", "b@y.example", "c@x.example"};
    auto a = store_->enqueue_outbound("alice@localhost", three, "m1", 100);
    auto b = store_->enqueue_outbound("alice@localhost", three, "m2", 105);
    // Due from the time it was queued.
    EXPECT_TRUE(store_->outbound_due(99, 10).empty());
    EXPECT_EQ(store_->outbound_due(100, 10), std::vector<std::int64_t>{a});
    EXPECT_EQ(store_->outbound_due(200, 1), std::vector<std::int64_t>{a});
    EXPECT_EQ(store_->outbound_next_due(100), std::optional<std::int64_t>(105));
    // One recipient accepted, the others deferred: the accepted one is never pending again.
    std::vector<std::string> done = {"b@y.example"};
    store_->outbound_done(a, done);
    store_->outbound_defer(a, 160, "451 4.3.0 try later");
    reopen();
    auto e = store_->outbound_entry(a);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->recipients, (std::vector<std::string>{"a@x.example", "c@x.example"}));
    EXPECT_EQ(e->attempts, 1);
    EXPECT_EQ(e->next_attempt_at, 160);
    EXPECT_EQ(e->last_error, "451 4.3.0 try later");
    EXPECT_EQ(e->bytes, "m1");
    EXPECT_EQ(store_->outbound_due(150, 10), std::vector<std::int64_t>{b});
    EXPECT_EQ(store_->outbound_next_due(150), std::optional<std::int64_t>(160));
    // The last recipients final: the entry is gone.
    store_->outbound_done(a, e->recipients);
    EXPECT_FALSE(store_->outbound_entry(a));
    store_->outbound_done(a, e->recipients);  // absent: no-op
    store_->remove_outbound(b);
    EXPECT_FALSE(store_->outbound_next_due(0));
    EXPECT_TRUE(store_->outbound_due(1000, 10).empty());
}
