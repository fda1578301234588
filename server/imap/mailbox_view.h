// imap/mailbox_view.h: one session's view of its selected mailbox: the sequence number to UID
// map, the flags it has announced, and the diff against the store's current listing that
// becomes untagged EXPUNGE / EXISTS / FETCH FLAGS responses (RFC 9051 §7.5).
#pragma once
#include "store/mail_store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace millipost::imap {

class MailboxView {
  public:
    struct Entry {
        std::uint32_t uid = 0;
        std::uint64_t size = 0;
        std::int64_t internaldate = 0;
        store::ModSeq modseq = 0;
        std::vector<std::string> flags;  // sorted, as the store holds them
        bool expunged = false;  // gone from the store, not yet announced (a ghost the client
                                // still numbers)
    };

    // What one sync() found, in the order the responses must be sent.
    struct Update {
        std::vector<std::uint32_t> expunged;       // "* n EXPUNGE", each n valid when it is sent
        std::vector<std::uint32_t> expunged_uids;  // the same messages' UIDs, ascending
                                                   // ("* VANISHED uids" under QRESYNC)
        std::optional<std::uint32_t> exists;       // "* n EXISTS" when the count grew
        std::vector<std::uint32_t> changed;        // sequence numbers (after the above) whose flags
                                                   // changed: "* n FETCH (UID u FLAGS (...))"
        bool empty() const { return expunged.empty() && !exists && changed.empty(); }
    };

    // Starts over with a listing (SELECT/EXAMINE), ascending by UID.
    void reset(const store::Mailbox& mailbox, std::vector<store::Message> messages);
    void clear() {
        entries_.clear();
        ghosts_ = 0;
        seen_uid_ = 0;
    }

    // Compares with the store's current listing (ascending UIDs). With `allow_expunge` false
    // (during FETCH, STORE and SEARCH, RFC 9051 §7.5.1) removed messages stay as ghosts and only
    // new messages and flag changes are reported; ghosts go at the next sync that allows it.
    Update sync(const std::vector<store::Message>& now, bool allow_expunge);
    // The same from what changed after the view's MODSEQ (store::MailStore::mailbox_changes
    // with `mailbox.highestmodseq`): O(changes), not O(mailbox). Advances the MODSEQ.
    Update apply(const store::MailboxDelta& delta, bool allow_expunge);
    // True while expunged messages are kept as ghosts (an EXPUNGE is owed to the client).
    bool has_ghosts() const { return ghosts_ > 0; }

    std::uint32_t size() const { return static_cast<std::uint32_t>(entries_.size()); }
    std::uint32_t max_uid() const { return entries_.empty() ? 0 : entries_.back().uid; }
    const Entry& at(std::uint32_t seq) const { return entries_[seq - 1]; }
    Entry& at(std::uint32_t seq) { return entries_[seq - 1]; }
    // The sequence number of a UID, or 0.
    std::uint32_t seq_of(std::uint32_t uid) const;
    // Updates the cached flags of one UID (after this session's own STORE).
    void set_flags(std::uint32_t uid, std::vector<std::string> flags, store::ModSeq modseq);

    store::Mailbox mailbox;  // as of the last reset/refresh of its counters
    bool read_only = false;

  private:
    // Sends the ghosts (when allowed) and appends new messages; shared by sync() and apply().
    void finish(Update& up, bool allow_expunge, const std::vector<store::Message>& fresh,
                const std::vector<std::uint32_t>& changed_uids);

    std::vector<Entry> entries_;
    std::uint32_t ghosts_ = 0;
    std::uint32_t seen_uid_ = 0;  // the highest UID the view has ever held
};

}  // namespace millipost::imap
