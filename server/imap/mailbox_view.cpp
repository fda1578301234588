// imap/mailbox_view.cpp: the selected mailbox's sequence map and its diff (see mailbox_view.h).
#include "imap/mailbox_view.h"

#include <algorithm>

namespace millipost::imap {

void MailboxView::reset(const store::Mailbox& mb, std::vector<store::Message> messages) {
    mailbox = mb;
    entries_.clear();
    ghosts_ = 0;
    entries_.reserve(messages.size());
    seen_uid_ = 0;
    for (auto& m : messages) {
        seen_uid_ = std::max(seen_uid_, m.uid);
        std::sort(m.flags.begin(), m.flags.end());
        entries_.push_back({m.uid, m.size, m.internaldate, m.modseq, std::move(m.flags), false});
    }
}

std::uint32_t MailboxView::seq_of(std::uint32_t uid) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), uid,
                               [](const Entry& e, std::uint32_t u) { return e.uid < u; });
    if (it == entries_.end() || it->uid != uid) return 0;
    return static_cast<std::uint32_t>(it - entries_.begin()) + 1;
}

void MailboxView::set_flags(std::uint32_t uid, std::vector<std::string> flags,
                            store::ModSeq modseq) {
    if (auto seq = seq_of(uid)) {
        std::sort(flags.begin(), flags.end());
        at(seq).flags = std::move(flags);
        at(seq).modseq = modseq;
    }
}

MailboxView::Update MailboxView::sync(const std::vector<store::Message>& now, bool allow_expunge) {
    Update up;
    // Mark what is gone and find flag changes; both lists ascend by UID.
    std::vector<std::uint32_t> changed_uids;
    std::size_t j = 0;
    for (auto& e : entries_) {
        while (j < now.size() && now[j].uid < e.uid)
            ++j;  // cannot happen (new UIDs are above ours); skip defensively
        if (j < now.size() && now[j].uid == e.uid) {
            auto flags = now[j].flags;
            std::sort(flags.begin(), flags.end());
            if (!e.expunged && flags != e.flags) {
                e.flags = std::move(flags);
                changed_uids.push_back(e.uid);
            }
            e.modseq = now[j].modseq;
            ++j;
        } else if (!e.expunged) {
            e.expunged = true;
            ++ghosts_;
        }
    }
    finish(up, allow_expunge, now, changed_uids);
    return up;
}

MailboxView::Update MailboxView::apply(const store::MailboxDelta& delta, bool allow_expunge) {
    Update up;
    for (auto uid : delta.vanished) {
        if (auto seq = seq_of(uid); seq && !at(seq).expunged) {
            at(seq).expunged = true;
            ++ghosts_;
        }
    }
    std::vector<std::uint32_t> changed_uids;
    for (auto& m : delta.changed) {
        if (m.uid > seen_uid_) break;  // new messages: finish() appends them
        auto seq = seq_of(m.uid);
        if (!seq) continue;
        auto& e = at(seq);
        auto flags = m.flags;
        std::sort(flags.begin(), flags.end());
        if (!e.expunged && flags != e.flags) {
            e.flags = std::move(flags);
            changed_uids.push_back(e.uid);
        }
        e.modseq = m.modseq;
    }
    auto counters = delta.mailbox;
    finish(up, allow_expunge, delta.changed, changed_uids);
    mailbox = counters;
    return up;
}

void MailboxView::finish(Update& up, bool allow_expunge, const std::vector<store::Message>& fresh,
                         const std::vector<std::uint32_t>& changed_uids) {
    if (allow_expunge && ghosts_ > 0) {
        // Highest first, so that every number sent is valid when it is sent.
        for (std::size_t i = entries_.size(); i-- > 0;) {
            if (!entries_[i].expunged) continue;
            up.expunged.push_back(static_cast<std::uint32_t>(i + 1));
            up.expunged_uids.push_back(entries_[i].uid);
        }
        std::reverse(up.expunged_uids.begin(), up.expunged_uids.end());
        std::erase_if(entries_, [](const Entry& e) { return e.expunged; });
        ghosts_ = 0;
    }
    // New messages: UIDs above every UID the view has had. After an expunge of the highest
    // message max_uid() drops, so compare with the highest UID ever seen instead.
    auto before = entries_.size();
    for (auto& m : fresh) {
        if (m.uid <= seen_uid_) continue;
        auto flags = m.flags;
        std::sort(flags.begin(), flags.end());
        entries_.push_back({m.uid, m.size, m.internaldate, m.modseq, std::move(flags), false});
        seen_uid_ = m.uid;
    }
    if (entries_.size() > before) up.exists = size();
    for (auto uid : changed_uids)
        if (auto seq = seq_of(uid)) up.changed.push_back(seq);
}

}  // namespace millipost::imap
