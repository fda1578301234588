// imap/mailbox_view_test.cpp: the selected mailbox's view: expunges announced highest first and
// only where allowed, EXISTS for new messages, FETCH FLAGS for changed ones.
#include "imap/mailbox_view.h"

#include <gtest/gtest.h>

using namespace millipost;
using millipost::imap::MailboxView;

namespace {

store::Message msg(std::uint32_t uid, std::vector<std::string> flags = {}) {
    store::Message m;
    m.uid = uid;
    m.size = 10;
    m.flags = std::move(flags);
    return m;
}

}  // namespace

TEST(MailboxView, NumbersFollowUids) {
    MailboxView v;
    v.reset({}, {msg(3), msg(5), msg(9)});
    EXPECT_EQ(v.size(), 3u);
    EXPECT_EQ(v.seq_of(5), 2u);
    EXPECT_EQ(v.seq_of(4), 0u);
    EXPECT_EQ(v.max_uid(), 9u);
}

TEST(MailboxView, ExpungesAreAnnouncedHighestFirst) {
    MailboxView v;
    v.reset({}, {msg(1), msg(2), msg(3), msg(4)});
    auto up = v.sync({msg(1), msg(3), msg(5)}, true);
    EXPECT_EQ(up.expunged, (std::vector<std::uint32_t>{4, 2}));
    ASSERT_TRUE(up.exists);
    EXPECT_EQ(*up.exists, 3u);
    EXPECT_EQ(v.seq_of(5), 3u);
}

TEST(MailboxView, ExpungesWaitWhereTheyAreNotAllowed) {
    MailboxView v;
    v.reset({}, {msg(1), msg(2)});
    auto up = v.sync({msg(2), msg(3)}, false);
    EXPECT_TRUE(up.expunged.empty());
    ASSERT_TRUE(up.exists);
    EXPECT_EQ(*up.exists, 3u);  // the ghost of UID 1 keeps its number
    EXPECT_TRUE(v.at(1).expunged);
    up = v.sync({msg(2), msg(3)}, true);
    EXPECT_EQ(up.expunged, (std::vector<std::uint32_t>{1}));
    EXPECT_FALSE(up.exists);
    EXPECT_EQ(v.seq_of(3), 2u);
}

TEST(MailboxView, FlagChangesAreReportedOnce) {
    MailboxView v;
    v.reset({}, {msg(1), msg(2)});
    auto up = v.sync({msg(1), msg(2, {"\\Seen"})}, true);
    EXPECT_EQ(up.changed, (std::vector<std::uint32_t>{2}));
    EXPECT_TRUE(v.sync({msg(1), msg(2, {"\\Seen"})}, true).empty());
    v.set_flags(1, {"\\Flagged"}, 7);  // this session's own STORE: nothing to report
    EXPECT_TRUE(v.sync({msg(1, {"\\Flagged"}), msg(2, {"\\Seen"})}, true).empty());
}

namespace {

store::MailboxDelta delta(store::ModSeq highest, std::vector<store::Message> changed,
                          std::vector<std::uint32_t> vanished = {}) {
    store::MailboxDelta d;
    d.mailbox.highestmodseq = highest;
    d.changed = std::move(changed);
    d.vanished = std::move(vanished);
    return d;
}

}  // namespace

TEST(MailboxView, DeltasGiveTheSameUpdatesAsListings) {
    MailboxView v;
    v.reset({}, {msg(1), msg(2), msg(3), msg(4)});
    // 4 and 2 expunged, 3 flagged, 5 and 6 new, 7 new and already expunged.
    auto up = v.apply(delta(9, {msg(3, {"\\Flagged"}), msg(5), msg(6)}, {2, 4, 7}), true);
    EXPECT_EQ(up.expunged, (std::vector<std::uint32_t>{4, 2}));
    EXPECT_EQ(up.expunged_uids, (std::vector<std::uint32_t>{2, 4}));
    ASSERT_TRUE(up.exists);
    EXPECT_EQ(*up.exists, 4u);
    EXPECT_EQ(up.changed, (std::vector<std::uint32_t>{2}));  // UID 3 is now number 2
    EXPECT_EQ(v.mailbox.highestmodseq, 9u);
    EXPECT_EQ(v.seq_of(6), 4u);
    EXPECT_FALSE(v.has_ghosts());
}

TEST(MailboxView, DeltaGhostsWaitAndNewMessagesAfterTheTopExpungeAreStillNew) {
    MailboxView v;
    v.reset({}, {msg(1), msg(2)});
    auto up = v.apply(delta(5, {}, {2}), false);  // during FETCH: UID 2 stays a ghost
    EXPECT_TRUE(up.empty());
    EXPECT_TRUE(v.has_ghosts());
    up = v.apply(delta(5, {}), true);  // nothing new in the store, but the EXPUNGE is owed
    EXPECT_EQ(up.expunged, (std::vector<std::uint32_t>{2}));
    EXPECT_EQ(v.max_uid(), 1u);
    // A flag change of the expunged top UID cannot come; a new UID 3 is new, not a change.
    up = v.apply(delta(6, {msg(3, {"\\Seen"})}), true);
    ASSERT_TRUE(up.exists);
    EXPECT_EQ(*up.exists, 2u);
    EXPECT_TRUE(up.changed.empty());
}
