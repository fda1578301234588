// properties/store_model_test.cpp: the MailStore interface (server/store/mail_store.h) against a
// pure model, as one suite that every backend runs: users, mailboxes (create, rename with their
// children, delete, subscriptions), deliver (atomic over recipients) and append (one or several
// messages), copy and move, update_flags (with UNCHANGEDSINCE), expunge, claim_recent,
// mailbox_changes deltas, usage, and closing and reopening the store (what was committed stays).
//
// What the model predicts exactly and what it only constrains, so that other backends fit:
// - UIDs: a new message gets the mailbox's uidnext and uidnext grows by one (the model predicts
//   UIDs exactly; never reused follows).
// - MODSEQ: not predicted as numbers. Every command that changes a mailbox's messages is one
//   "tick" of that mailbox in the model; the harness records the HIGHESTMODSEQ observed at each
//   tick and requires it to grow at every tick and stay between ticks. A message's MODSEQ must lie
//   in the range of the tick that last changed it, which makes mailbox_changes(since),
//   UNCHANGEDSINCE and the per-message MODSEQs checkable exactly at tick granularity.
// - UIDVALIDITY: not predicted; it must stay for a mailbox's lifetime (renames and reopens
//   included) and a name created again must get one that name never had before.
// - The per-user change-log state grows at every logged change and stays otherwise.
// - Errors: the kind of StoreError is checked; where several reasons apply (rename) any of their
//   kinds is accepted, since the interface does not order the checks.
//
// A backend joins the suite by adding a Backend (a name and a factory that opens a store in a
// directory) and a TEST that calls run_suite: see the end of the file.
//
// Users (taken logins, secrets) and the per-user change log (changes_since, paging) too.
//
// Every run prints its seed; replay a failure with RC_PARAMS="reproduce=<string>" (printed with
// the shrunk command sequence). The default (100 cases of up to ~100 commands) takes about a
// second; the long form is RC_PARAMS="max_success=5000 max_size=200".
#include "support/generators.h"
#include "support/test_service.h"

#include "store/mail_store.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace {

using namespace millipost;
using store::FlagOp;
using store::MailStore;
using store::StoreError;

// A storage backend under test: `open` opens (or reopens) a store kept in `dir`.
struct Backend {
    std::string name;
    std::function<std::unique_ptr<MailStore>(const std::filesystem::path& dir)> open;
};

const std::vector<std::string> kLogins = {"ann", "bob"};
// Names collide often on purpose: parents and children, INBOX in two spellings.
const std::vector<std::string> kNames = {"A", "A/B", "A/B/C", "B", "B/A", "Trash", "inbox"};
const std::vector<std::string> kFlags = {"\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "$Work"};

// ---------------------------------------------------------------------------------------------
// Model

struct MMsg {
    std::uint32_t uid = 0;
    std::string bytes;
    std::int64_t date = 0;
    std::set<std::string> flags;
    int tick = 0;  // the mailbox tick that last changed it (created or flags)
};

struct MBox {
    int key = 0;  // the model's name for this mailbox (one lifetime: created to deleted)
    std::string name;
    std::string special_use;
    std::uint32_t uidnext = 1;
    std::uint32_t recent_from = 1;  // UIDs from here on are recent (not yet claimed)
    int tick = 0;
    std::vector<MMsg> msgs;                               // ascending UIDs
    std::vector<std::pair<std::uint32_t, int>> vanished;  // expunged UID, tick

    const MMsg* find(std::uint32_t uid) const {
        for (auto& m : msgs)
            if (m.uid == uid) return &m;
        return nullptr;
    }
    MMsg& add(MMsg m) {
        m.uid = uidnext++;
        msgs.push_back(std::move(m));
        return msgs.back();
    }
    std::uint32_t recent() const {
        return static_cast<std::uint32_t>(std::count_if(
            msgs.begin(), msgs.end(), [this](const MMsg& m) { return m.uid >= recent_from; }));
    }
};

struct MUser {
    std::string secret = "$secret";
    std::map<int, MBox> boxes;  // by key
    std::set<int> dead;         // keys of deleted mailboxes
    std::set<std::string> subs;
    int epoch = 0;  // logged changes (one per command that changed something)

    const MBox* by_name(const std::string& name) const {
        for (auto& [k, b] : boxes)
            if (b.name == name) return &b;
        return nullptr;
    }
};

struct StoreModel {
    std::vector<MUser> users;
    int next_key = 0;
    int next_serial = 1;

    StoreModel() {
        for (std::size_t u = 0; u < kLogins.size(); ++u) {
            MUser user;
            MBox inbox;
            inbox.key = next_key++;
            inbox.name = "INBOX";
            user.boxes[inbox.key] = inbox;
            users.push_back(user);
        }
    }
};

std::string canonical(const std::string& name) {
    std::string up = name;
    std::transform(up.begin(), up.end(), up.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    return up == "INBOX" ? "INBOX" : name;
}

// ---------------------------------------------------------------------------------------------
// System under test: the store, the ids it gave out, and what was observed of it.

struct StoreSut {
    const Backend& backend;
    std::filesystem::path dir = props::scratch_dir("millipost-store");
    std::unique_ptr<MailStore> store;
    std::vector<store::UserId> users;
    std::map<int, store::MailboxId> ids;            // model key -> mailbox id
    std::map<int, std::vector<store::ModSeq>> hms;  // key -> HIGHESTMODSEQ observed per tick
    std::map<int, std::uint32_t> uidvalidity;       // key -> UIDVALIDITY observed
    std::map<std::pair<std::size_t, std::string>, std::set<std::uint32_t>> validities;
    std::vector<std::vector<std::uint64_t>> states;  // user -> change-log state per epoch

    explicit StoreSut(const Backend& b) : backend(b) {
        store = backend.open(dir);
        for (auto& login : kLogins)
            users.push_back(store->add_user(login, "$secret"));
        states.resize(users.size());
        int key = 0;
        for (auto u : users)
            ids[key++] = store->find_mailbox(u, "INBOX")->id;
    }
    ~StoreSut() {
        store.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    StoreSut(const StoreSut&) = delete;
    StoreSut& operator=(const StoreSut&) = delete;
};

std::string show_uids(const std::vector<std::uint32_t>& uids) {
    std::string out = "{";
    for (auto u : uids)
        out += (out.size() > 1 ? "," : "") + std::to_string(u);
    return out + "}";
}

std::string show_kind(StoreError::Kind k) {
    switch (k) {
        case StoreError::Kind::Exists:
            return "Exists";
        case StoreError::Kind::NotFound:
            return "NotFound";
        case StoreError::Kind::Invalid:
            return "Invalid";
        case StoreError::Kind::Backend:
            return "Backend";
    }
    return "?";
}

// Runs `f`, which must throw a StoreError of one of `kinds`.
template <class F>
void expect_error(std::set<StoreError::Kind> kinds, const std::string& what, F&& f) {
    try {
        f();
    } catch (const StoreError& e) {
        if (kinds.count(e.kind())) return;
        RC_FAIL(what + ": threw " + show_kind(e.kind()) + " (" + e.what() + ")");
    }
    std::string want;
    for (auto k : kinds)
        want += (want.empty() ? "" : " or ") + show_kind(k);
    RC_FAIL(what + ": expected StoreError " + want + ", nothing thrown");
}

// Records an observation that belongs to step `step` of a history: a new step must see a larger
// value than the last, the same step the same value.
void observe_step(std::vector<std::uint64_t>& hist, int step, std::uint64_t value,
                  const std::string& what) {
    auto n = static_cast<int>(hist.size());
    if (n == step + 1) {
        if (hist.back() != value)
            RC_FAIL(what + " changed from " + std::to_string(hist.back()) + " to " +
                    std::to_string(value) + " though nothing changed");
    } else if (n == step) {
        if (n > 0 && value <= hist.back())
            RC_FAIL(what + " did not grow: " + std::to_string(hist.back()) + " then " +
                    std::to_string(value));
        hist.push_back(value);
    } else {
        RC_FAIL(what + ": model step " + std::to_string(step) + ", " + std::to_string(n) +
                " observed");
    }
}

// A message as the store lists it agrees with the model's (MODSEQ within its tick).
void check_message(const StoreSut& sut, int key, const MMsg& want, const store::Message& got,
                   const std::string& where) {
    auto what = where + " UID " + std::to_string(want.uid);
    if (got.uid != want.uid) RC_FAIL(where + ": UID " + std::to_string(got.uid) + " not " + what);
    std::vector<std::string> flags(want.flags.begin(), want.flags.end());
    auto sorted = got.flags;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != flags) RC_FAIL(what + ": flags differ from the model");
    auto& h = sut.hms.at(key);
    auto t = static_cast<std::size_t>(want.tick);
    if (t == 0 || t >= h.size()) RC_FAIL(what + ": tick out of range");
    if (!(got.modseq > h[t - 1] && got.modseq <= h[t]))
        RC_FAIL(what + ": MODSEQ " + std::to_string(got.modseq) + " not in (" +
                std::to_string(h[t - 1]) + ", " + std::to_string(h[t]) + "]");
}

// Everything the store shows of both users agrees with the model. With `bytes`, every message's
// bytes are read as well (after a reopen).
void check_all(const StoreModel& s, StoreSut& sut, bool bytes = false) {
    auto& st = *sut.store;
    for (std::size_t u = 0; u < s.users.size(); ++u) {
        auto uid = sut.users[u];
        auto& mu = s.users[u];
        auto who = kLogins[u];
        observe_step(sut.states[u], mu.epoch, st.state(uid), who + "'s change-log state");

        auto listed = st.list_mailboxes(uid);
        if (listed.size() != mu.boxes.size())
            RC_FAIL(who + " has " + std::to_string(listed.size()) + " mailboxes, model " +
                    std::to_string(mu.boxes.size()));
        std::uint64_t count = 0, size = 0;
        for (auto& [key, mb] : mu.boxes) {
            auto where = who + "'s " + mb.name;
            auto it = std::find_if(listed.begin(), listed.end(),
                                   [&](const store::Mailbox& m) { return m.name == mb.name; });
            if (it == listed.end()) RC_FAIL(where + " is not listed");
            if (it->id != sut.ids.at(key)) RC_FAIL(where + ": id changed");
            if (it->special_use != mb.special_use) RC_FAIL(where + ": special-use differs");
            auto [v, fresh] = sut.uidvalidity.emplace(key, it->uidvalidity);
            if (fresh) {
                if (!sut.validities[{u, mb.name}].insert(it->uidvalidity).second)
                    RC_FAIL(where + " created again with an old UIDVALIDITY " +
                            std::to_string(it->uidvalidity));
            } else if (v->second != it->uidvalidity) {
                RC_FAIL(where + ": UIDVALIDITY changed from " + std::to_string(v->second) + " to " +
                        std::to_string(it->uidvalidity));
            }
            if (it->uidnext != mb.uidnext)
                RC_FAIL(where + ": UIDNEXT " + std::to_string(it->uidnext) + ", model " +
                        std::to_string(mb.uidnext));
            observe_step(sut.hms[key], mb.tick, it->highestmodseq, where + " HIGHESTMODSEQ");
            std::uint64_t mb_size = 0;
            for (auto& m : mb.msgs)
                mb_size += m.bytes.size();
            if (it->messages != mb.msgs.size() || it->size != mb_size)
                RC_FAIL(where + ": " + std::to_string(it->messages) + " messages of " +
                        std::to_string(it->size) + " octets, model " +
                        std::to_string(mb.msgs.size()) + " of " + std::to_string(mb_size));
            if (it->recent != mb.recent())
                RC_FAIL(where + ": recent " + std::to_string(it->recent) + ", model " +
                        std::to_string(mb.recent()));
            count += mb.msgs.size();
            size += mb_size;

            auto msgs = st.messages(uid, sut.ids.at(key));
            if (msgs.size() != mb.msgs.size()) RC_FAIL(where + ": messages() count differs");
            for (std::size_t i = 0; i < msgs.size(); ++i) {
                check_message(sut, key, mb.msgs[i], msgs[i], where);
                if (msgs[i].size != mb.msgs[i].bytes.size() ||
                    msgs[i].internaldate != mb.msgs[i].date)
                    RC_FAIL(where + " UID " + std::to_string(msgs[i].uid) +
                            ": size or internal date differs");
                if (bytes && st.read_message(uid, sut.ids.at(key), msgs[i].uid) != mb.msgs[i].bytes)
                    RC_FAIL(where + " UID " + std::to_string(msgs[i].uid) + ": bytes differ");
            }
        }
        auto usage = st.usage(uid);
        if (usage.messages != count || usage.bytes != size)
            RC_FAIL(who + "'s usage " + std::to_string(usage.messages) + "/" +
                    std::to_string(usage.bytes) + ", model " + std::to_string(count) + "/" +
                    std::to_string(size));
        auto subs = st.subscriptions(uid);
        if (subs != std::vector<std::string>(mu.subs.begin(), mu.subs.end()))
            RC_FAIL(who + "'s subscriptions differ from the model");
    }
}

using StoreCommand = rc::state::Command<StoreModel, StoreSut>;

// ---------------------------------------------------------------------------------------------
// Generators over the model

std::size_t gen_user() {
    return *rc::gen::weightedElement<std::size_t>({{4, 0}, {1, 1}});
}

// A mailbox key of user `u`: mostly a live one, sometimes one deleted earlier.
int gen_key(const StoreModel& s, std::size_t u) {
    std::vector<int> live, dead(s.users[u].dead.begin(), s.users[u].dead.end());
    for (auto& [k, b] : s.users[u].boxes)
        live.push_back(k);
    if (dead.empty() || *rc::gen::weightedElement<bool>({{8, true}, {1, false}}))
        return *rc::gen::elementOf(live);
    return *rc::gen::elementOf(dead);
}

// UIDs to act on: some of the mailbox's, sometimes one that does not exist.
std::vector<std::uint32_t> gen_uids(const StoreModel& s, std::size_t u, int key) {
    std::vector<std::uint32_t> pool = {1};
    auto it = s.users[u].boxes.find(key);
    if (it != s.users[u].boxes.end()) {
        for (auto& m : it->second.msgs)
            pool.push_back(m.uid);
        pool.push_back(it->second.uidnext);
    }
    auto n = *rc::gen::inRange<std::size_t>(1, std::min<std::size_t>(pool.size(), 4) + 1);
    return *rc::gen::container<std::vector<std::uint32_t>>(n, rc::gen::elementOf(pool));
}

bool known_key(const StoreModel& s, std::size_t u, int key) {
    return s.users[u].boxes.count(key) || s.users[u].dead.count(key);
}

std::vector<std::uint32_t> sorted_unique(std::vector<std::uint32_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

std::string gen_bytes(int serial) {
    return "Subject: message " + std::to_string(serial) + "\r\n\r\n" + *props::gen::text(60) +
           "\r\n";
}

// ---------------------------------------------------------------------------------------------
// Commands

struct CreateMailbox : StoreCommand {
    std::size_t u = gen_user();
    int key;
    std::string name = *rc::gen::elementOf(kNames);
    std::string special_use = *rc::gen::weightedElement<std::string>({{4, ""}, {1, "\\Archive"}});
    explicit CreateMailbox(const StoreModel& s) : key(s.next_key) {}

    bool ok(const StoreModel& s) const { return !s.users[u].by_name(canonical(name)); }
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(key >= s.next_key); }
    void apply(StoreModel& s) const override {
        s.next_key = key + 1;
        if (!ok(s)) return;
        MBox b;
        b.key = key;
        b.name = canonical(name);
        b.special_use = special_use;
        s.users[u].boxes[key] = b;
        ++s.users[u].epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (ok(s)) {
            auto mb = sut.store->create_mailbox(sut.users[u], name, special_use);
            sut.ids[key] = mb.id;
            RC_ASSERT(mb.name == canonical(name));
        } else {
            expect_error({StoreError::Kind::Exists}, "create " + name,
                         [&] { sut.store->create_mailbox(sut.users[u], name, special_use); });
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": create #" << key << " \"" << name << "\"" << special_use;
    }
};

struct DeleteMailbox : StoreCommand {
    std::size_t u;
    int key;
    explicit DeleteMailbox(const StoreModel& s) : u(gen_user()), key(gen_key(s, u)) {}
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, u, key));
        // Deleting INBOX is the protocol layer's business (IMAP refuses it), not the store's.
        // (RC_PRE captures its operands, so no short-circuit inside it.)
        bool inbox = live(s) && s.users[u].boxes.at(key).name == "INBOX";
        RC_PRE(!inbox);
    }
    void apply(StoreModel& s) const override {
        if (!live(s)) return;
        s.users[u].boxes.erase(key);
        s.users[u].dead.insert(key);
        ++s.users[u].epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (live(s))
            sut.store->delete_mailbox(sut.users[u], sut.ids.at(key));
        else
            expect_error({StoreError::Kind::NotFound}, "delete a deleted mailbox",
                         [&] { sut.store->delete_mailbox(sut.users[u], sut.ids.at(key)); });
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override { os << kLogins[u] << ": delete #" << key; }
};

struct RenameMailbox : StoreCommand {
    std::size_t u;
    int key;
    std::string to = *rc::gen::elementOf(kNames);
    explicit RenameMailbox(const StoreModel& s) : u(gen_user()), key(gen_key(s, u)) {}

    // Why the rename must fail (every reason that applies), empty when it must succeed.
    std::set<StoreError::Kind> refusals(const StoreModel& s) const {
        std::set<StoreError::Kind> why;
        auto target = canonical(to);
        auto& mu = s.users[u];
        if (target == "INBOX") why.insert(StoreError::Kind::Exists);
        auto it = mu.boxes.find(key);
        if (it == mu.boxes.end()) {
            why.insert(StoreError::Kind::NotFound);
            return why;
        }
        auto& old = it->second.name;
        if (old == "INBOX") why.insert(StoreError::Kind::Invalid);
        if (target == old) why.insert(StoreError::Kind::Exists);
        if (target.size() > old.size() && target.compare(0, old.size() + 1, old + "/") == 0)
            why.insert(StoreError::Kind::Invalid);
        for (auto& [k, b] : mu.boxes)
            if (b.name == old || b.name.rfind(old + "/", 0) == 0)
                if (mu.by_name(target + b.name.substr(old.size())))
                    why.insert(StoreError::Kind::Exists);
        return why;
    }
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(known_key(s, u, key)); }
    void apply(StoreModel& s) const override {
        if (!refusals(s).empty()) return;
        auto& mu = s.users[u];
        auto old = mu.boxes.at(key).name;
        for (auto& [k, b] : mu.boxes)
            if (b.name == old || b.name.rfind(old + "/", 0) == 0)
                b.name = canonical(to) + b.name.substr(old.size());
        ++mu.epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto why = refusals(s);
        if (why.empty())
            sut.store->rename_mailbox(sut.users[u], sut.ids.at(key), to);
        else
            expect_error(why, "rename to " + to,
                         [&] { sut.store->rename_mailbox(sut.users[u], sut.ids.at(key), to); });
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": rename #" << key << " to \"" << to << "\"";
    }
};

struct Subscribe : StoreCommand {
    std::size_t u = gen_user();
    bool add = *rc::gen::weightedElement<bool>({{2, true}, {1, false}});
    std::string name = *rc::gen::elementOf(kNames);
    void apply(StoreModel& s) const override {
        if (add)
            s.users[u].subs.insert(canonical(name));
        else
            s.users[u].subs.erase(canonical(name));
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (add)
            sut.store->add_subscription(sut.users[u], name);
        else
            sut.store->remove_subscription(sut.users[u], name);
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": " << (add ? "subscribe " : "unsubscribe ") << name;
    }
};

// deliver(): to one or both users, into a mailbox by name; all or nothing.
struct Deliver : StoreCommand {
    std::vector<std::size_t> to;
    std::string name;
    int serial;
    std::string bytes;
    std::int64_t date = *rc::gen::inRange<std::int64_t>(0, 2000000000);
    std::vector<std::string> flags = *rc::gen::weightedOneOf<std::vector<std::string>>({
        {3, rc::gen::just(std::vector<std::string>{})},
        {1, rc::gen::container<std::vector<std::string>>(rc::gen::elementOf(kFlags))},
    });

    explicit Deliver(const StoreModel& s) : serial(s.next_serial), bytes(gen_bytes(serial)) {
        using V = std::vector<std::size_t>;
        to = *rc::gen::element(V{0}, V{1}, V{0, 1}, V{1, 0});
        // Mostly a name one recipient has; both have INBOX.
        std::vector<std::string> names = {"INBOX", "inbox", "Nowhere"};
        for (auto& [k, b] : s.users[to[0]].boxes)
            names.push_back(b.name);
        name = *rc::gen::elementOf(names);
    }
    bool ok(const StoreModel& s) const {
        for (auto u : to)
            if (!s.users[u].by_name(canonical(name))) return false;
        return true;
    }
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(serial >= s.next_serial); }
    void apply(StoreModel& s) const override {
        s.next_serial = serial + 1;
        if (!ok(s)) return;
        for (auto u : to) {
            auto& mu = s.users[u];
            auto& b = mu.boxes.at(mu.by_name(canonical(name))->key);
            ++b.tick;
            b.add({0, bytes, date, {flags.begin(), flags.end()}, b.tick});
            ++mu.epoch;
        }
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        std::vector<store::UserId> ids;
        for (auto u : to)
            ids.push_back(sut.users[u]);
        if (!ok(s)) {
            expect_error({StoreError::Kind::NotFound}, "deliver to " + name,
                         [&] { sut.store->deliver(ids, name, bytes, date, flags); });
        } else {
            auto got = sut.store->deliver(ids, name, bytes, date, flags);
            RC_ASSERT(got.size() == to.size());
            for (std::size_t i = 0; i < to.size(); ++i) {
                auto* b = s.users[to[i]].by_name(canonical(name));
                RC_ASSERT(got[i].user == ids[i]);
                RC_ASSERT(got[i].mailbox == sut.ids.at(b->key));
                RC_ASSERT(got[i].uid == b->uidnext);
            }
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << "deliver #" << serial << " to";
        for (auto u : to)
            os << " " << kLogins[u];
        os << " into \"" << name << "\" (" << bytes.size() << " octets, " << flags.size()
           << " flags)";
    }
};

// append(): one to three messages into one mailbox, in one step.
struct Append : StoreCommand {
    std::size_t u;
    int key;
    int serial;
    std::vector<std::string> bodies;
    std::vector<std::vector<std::string>> flags;
    explicit Append(const StoreModel& s)
        : u(gen_user()), key(gen_key(s, u)), serial(s.next_serial) {
        auto n = *rc::gen::inRange(1, 4);
        for (int i = 0; i < n; ++i) {
            bodies.push_back(gen_bytes(serial + i));
            flags.push_back(*rc::gen::container<std::vector<std::string>>(
                *rc::gen::inRange<std::size_t>(0, 3), rc::gen::elementOf(kFlags)));
        }
    }
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, u, key) && serial >= s.next_serial);
    }
    void apply(StoreModel& s) const override {
        s.next_serial = serial + static_cast<int>(bodies.size());
        if (!live(s)) return;
        auto& b = s.users[u].boxes.at(key);
        ++b.tick;
        for (std::size_t i = 0; i < bodies.size(); ++i)
            b.add({0,
                   bodies[i],
                   1000 + static_cast<std::int64_t>(i),
                   {flags[i].begin(), flags[i].end()},
                   b.tick});
        ++s.users[u].epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        std::vector<store::NewMessage> batch;
        for (std::size_t i = 0; i < bodies.size(); ++i)
            batch.push_back({bodies[i], 1000 + static_cast<std::int64_t>(i), flags[i]});
        if (!live(s)) {
            expect_error({StoreError::Kind::NotFound}, "append to a deleted mailbox",
                         [&] { sut.store->append(sut.users[u], sut.ids.at(key), batch); });
        } else {
            auto uids = sut.store->append(sut.users[u], sut.ids.at(key), batch);
            auto first = s.users[u].boxes.at(key).uidnext;
            std::vector<std::uint32_t> want;
            for (std::size_t i = 0; i < bodies.size(); ++i)
                want.push_back(first + static_cast<std::uint32_t>(i));
            if (uids != want)
                RC_FAIL("append gave UIDs " + show_uids(uids) + ", model " + show_uids(want));
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": append " << bodies.size() << " to #" << key;
    }
};

// copy_messages / move_messages within one user.
struct Transfer : StoreCommand {
    std::size_t u;
    int from, to;
    bool move = *rc::gen::arbitrary<bool>();
    std::vector<std::uint32_t> uids;
    explicit Transfer(const StoreModel& s)
        : u(gen_user()), from(gen_key(s, u)), to(gen_key(s, u)), uids(gen_uids(s, u, from)) {}
    bool live(const StoreModel& s) const {
        return s.users[u].boxes.count(from) && s.users[u].boxes.count(to);
    }
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, u, from) && known_key(s, u, to));
        RC_PRE(!(move && from == to));  // MOVE into the same mailbox is refused by IMAP
    }
    // The (source, new) UID pairs the model expects.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> plan(const StoreModel& s) const {
        std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
        if (!live(s)) return out;
        auto next = s.users[u].boxes.at(to).uidnext;
        for (auto uid : sorted_unique(uids))
            if (s.users[u].boxes.at(from).find(uid)) out.emplace_back(uid, next++);
        return out;
    }
    void apply(StoreModel& s) const override {
        auto p = plan(s);
        if (p.empty()) return;
        auto& mu = s.users[u];
        auto& dst = mu.boxes.at(to);
        ++dst.tick;
        std::vector<MMsg> copies;
        for (auto& [src, nu] : p)
            copies.push_back(*mu.boxes.at(from).find(src));
        for (auto& m : copies) {
            m.tick = dst.tick;
            dst.add(m);
        }
        if (move) {
            auto& src = mu.boxes.at(from);
            ++src.tick;
            for (auto& [uid, nu] : p) {
                std::erase_if(src.msgs, [uid](const MMsg& m) { return m.uid == uid; });
                src.vanished.emplace_back(uid, src.tick);
            }
        }
        ++mu.epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto call = [&] {
            return move ? sut.store->move_messages(sut.users[u], sut.ids.at(from), uids,
                                                   sut.ids.at(to))
                        : sut.store->copy_messages(sut.users[u], sut.ids.at(from), uids,
                                                   sut.ids.at(to));
        };
        if (!live(s)) {
            expect_error({StoreError::Kind::NotFound}, "copy/move with a deleted mailbox", call);
        } else {
            auto got = call();
            if (got != plan(s)) RC_FAIL("copy/move returned another UID map than the model's");
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": " << (move ? "move " : "copy ") << show_uids(uids) << " #" << from
           << " -> #" << to;
    }
};

struct UpdateFlags : StoreCommand {
    std::size_t u;
    int key;
    std::vector<std::uint32_t> uids;
    FlagOp op = *rc::gen::element(FlagOp::Replace, FlagOp::Add, FlagOp::Remove);
    std::vector<std::string> flags = *rc::gen::container<std::vector<std::string>>(
        *rc::gen::inRange<std::size_t>(0, 3), rc::gen::elementOf(kFlags));
    // UNCHANGEDSINCE: none, or the HIGHESTMODSEQ seen at tick `since` (-1: MODSEQ 0).
    std::optional<int> since;
    explicit UpdateFlags(const StoreModel& s)
        : u(gen_user()), key(gen_key(s, u)), uids(gen_uids(s, u, key)) {
        auto it = s.users[u].boxes.find(key);
        if (it != s.users[u].boxes.end() &&
            *rc::gen::weightedElement<bool>({{1, true}, {2, false}}))
            since = *rc::gen::inRange(-1, it->second.tick + 1);
    }
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, u, key));
        if (since && live(s)) RC_PRE(*since <= s.users[u].boxes.at(key).tick);
    }
    std::set<std::string> after(const MMsg& m) const {
        if (op == FlagOp::Replace) return {flags.begin(), flags.end()};
        auto out = m.flags;
        for (auto& f : flags)
            op == FlagOp::Add ? (void)out.insert(f) : (void)out.erase(f);
        return out;
    }
    // The model's result: (changed, modified) UIDs.
    std::pair<std::vector<std::uint32_t>, std::vector<std::uint32_t>> plan(
        const StoreModel& s) const {
        std::vector<std::uint32_t> changed, modified;
        auto& b = s.users[u].boxes.at(key);
        for (auto uid : sorted_unique(uids)) {
            auto* m = b.find(uid);
            if (!m) continue;
            if (since && m->tick > *since)
                modified.push_back(uid);
            else if (after(*m) != m->flags)
                changed.push_back(uid);
        }
        return {changed, modified};
    }
    void apply(StoreModel& s) const override {
        if (!live(s)) return;
        auto [changed, modified] = plan(s);
        if (changed.empty()) return;
        auto& b = s.users[u].boxes.at(key);
        ++b.tick;
        for (auto& m : b.msgs)
            if (std::count(changed.begin(), changed.end(), m.uid)) {
                m.flags = after(m);
                m.tick = b.tick;
            }
        ++s.users[u].epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto us = [&]() -> std::optional<store::ModSeq> {
            if (!since) return std::nullopt;
            return *since < 0 ? 0 : sut.hms.at(key).at(static_cast<std::size_t>(*since));
        }();
        if (!live(s)) {
            expect_error({StoreError::Kind::NotFound}, "flags in a deleted mailbox", [&] {
                sut.store->update_flags(sut.users[u], sut.ids.at(key), uids, op, flags, us);
            });
            return check_all(nextState(s), sut);
        }
        auto r = sut.store->update_flags(sut.users[u], sut.ids.at(key), uids, op, flags, us);
        auto next = nextState(s);
        check_all(next, sut);
        auto [changed, modified] = plan(s);
        if (r.changed != changed)
            RC_FAIL("changed " + show_uids(r.changed) + ", model " + show_uids(changed));
        if (r.modified != modified)
            RC_FAIL("modified " + show_uids(r.modified) + ", model " + show_uids(modified));
        auto& b = next.users[u].boxes.at(key);
        RC_ASSERT(r.modseq == sut.hms.at(key).back());
        std::vector<std::uint32_t> existing;
        for (auto uid : sorted_unique(uids))
            if (b.find(uid)) existing.push_back(uid);
        RC_ASSERT(r.messages.size() == existing.size());
        for (std::size_t i = 0; i < existing.size(); ++i)
            check_message(sut, key, *b.find(existing[i]), r.messages[i], "update_flags result");
    }
    void show(std::ostream& os) const override {
        static const char* ops[] = {"replace", "add", "remove"};
        os << kLogins[u] << ": " << ops[static_cast<int>(op)] << " flags";
        for (auto& f : flags)
            os << " " << f;
        os << " on " << show_uids(uids) << " in #" << key;
        if (since) os << " unchanged since tick " << *since;
    }
};

struct Expunge : StoreCommand {
    std::size_t u;
    int key;
    std::vector<std::uint32_t> uids;
    explicit Expunge(const StoreModel& s)
        : u(gen_user()), key(gen_key(s, u)), uids(gen_uids(s, u, key)) {}
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(known_key(s, u, key)); }
    void apply(StoreModel& s) const override {
        if (!live(s)) return;
        auto& b = s.users[u].boxes.at(key);
        std::vector<std::uint32_t> gone;
        for (auto uid : sorted_unique(uids))
            if (b.find(uid)) gone.push_back(uid);
        if (gone.empty()) return;
        ++b.tick;
        for (auto uid : gone) {
            std::erase_if(b.msgs, [uid](const MMsg& m) { return m.uid == uid; });
            b.vanished.emplace_back(uid, b.tick);
        }
        ++s.users[u].epoch;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (live(s))
            sut.store->expunge(sut.users[u], sut.ids.at(key), uids);
        else
            expect_error({StoreError::Kind::NotFound}, "expunge in a deleted mailbox",
                         [&] { sut.store->expunge(sut.users[u], sut.ids.at(key), uids); });
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": expunge " << show_uids(uids) << " in #" << key;
    }
};

struct ClaimRecent : StoreCommand {
    std::size_t u;
    int key;
    explicit ClaimRecent(const StoreModel& s) : u(gen_user()), key(gen_key(s, u)) {}
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(known_key(s, u, key)); }
    void apply(StoreModel& s) const override {
        if (!live(s)) return;
        auto& b = s.users[u].boxes.at(key);
        b.recent_from = b.uidnext;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (!live(s)) {
            expect_error({StoreError::Kind::NotFound}, "claim_recent in a deleted mailbox",
                         [&] { sut.store->claim_recent(sut.users[u], sut.ids.at(key)); });
        } else {
            auto& b = s.users[u].boxes.at(key);
            auto got = sut.store->claim_recent(sut.users[u], sut.ids.at(key));
            if (got != std::make_pair(b.recent_from, b.uidnext))
                RC_FAIL("claim_recent gave [" + std::to_string(got.first) + ", " +
                        std::to_string(got.second) + "), model [" + std::to_string(b.recent_from) +
                        ", " + std::to_string(b.uidnext) + ")");
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override { os << kLogins[u] << ": claim recent #" << key; }
};

// mailbox_changes(since) where `since` is the HIGHESTMODSEQ seen at an earlier tick.
struct MailboxChanges : StoreCommand {
    std::size_t u;
    int key;
    int since = -1;  // tick; -1 is MODSEQ 0
    explicit MailboxChanges(const StoreModel& s) : u(gen_user()), key(gen_key(s, u)) {
        auto it = s.users[u].boxes.find(key);
        if (it != s.users[u].boxes.end()) since = *rc::gen::inRange(-1, it->second.tick + 1);
    }
    bool live(const StoreModel& s) const { return s.users[u].boxes.count(key) > 0; }
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, u, key));
        if (live(s)) RC_PRE(since <= s.users[u].boxes.at(key).tick);
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        if (!live(s)) {
            expect_error({StoreError::Kind::NotFound}, "changes of a deleted mailbox",
                         [&] { sut.store->mailbox_changes(sut.users[u], sut.ids.at(key), 0); });
            return check_all(s, sut);
        }
        check_all(s, sut);
        auto mseq = since < 0 ? 0 : sut.hms.at(key).at(static_cast<std::size_t>(since));
        auto d = sut.store->mailbox_changes(sut.users[u], sut.ids.at(key), mseq);
        auto& b = s.users[u].boxes.at(key);
        std::vector<const MMsg*> changed;
        for (auto& m : b.msgs)
            if (m.tick > since) changed.push_back(&m);
        if (d.changed.size() != changed.size())
            RC_FAIL("mailbox_changes: " + std::to_string(d.changed.size()) +
                    " changed messages, model " + std::to_string(changed.size()));
        for (std::size_t i = 0; i < changed.size(); ++i)
            check_message(sut, key, *changed[i], d.changed[i], "mailbox_changes");
        std::vector<std::uint32_t> vanished;
        for (auto& [uid, t] : b.vanished)
            if (t > since) vanished.push_back(uid);
        vanished = sorted_unique(vanished);
        if (d.vanished != vanished)
            RC_FAIL("mailbox_changes: vanished " + show_uids(d.vanished) + ", model " +
                    show_uids(vanished));
        RC_ASSERT(d.vanished_complete);  // far fewer expunges than tombstones kept
        RC_ASSERT(d.mailbox.highestmodseq == sut.hms.at(key).back());
        RC_ASSERT(d.mailbox.messages == b.msgs.size());
        RC_ASSERT(d.mailbox.uidnext == b.uidnext);
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": changes of #" << key << " since tick " << since;
    }
};

struct ReadMessage : StoreCommand {
    std::size_t u;
    int key;
    std::uint32_t uid;
    explicit ReadMessage(const StoreModel& s)
        : u(gen_user()), key(gen_key(s, u)), uid(gen_uids(s, u, key).front()) {}
    void checkPreconditions(const StoreModel& s) const override { RC_PRE(known_key(s, u, key)); }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto it = s.users[u].boxes.find(key);
        const MMsg* m = it == s.users[u].boxes.end() ? nullptr : it->second.find(uid);
        if (m)
            RC_ASSERT(sut.store->read_message(sut.users[u], sut.ids.at(key), uid) == m->bytes);
        else
            expect_error({StoreError::Kind::NotFound}, "read a missing message",
                         [&] { sut.store->read_message(sut.users[u], sut.ids.at(key), uid); });
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": read UID " << uid << " of #" << key;
    }
};

// The other user names this user's mailbox: every per-mailbox call refuses with NotFound and
// changes nothing.
struct ForeignAccess : StoreCommand {
    std::size_t owner;
    int key;
    int op = *rc::gen::inRange(0, 9);
    explicit ForeignAccess(const StoreModel& s) : owner(gen_user()), key(gen_key(s, owner)) {}
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(known_key(s, owner, key));
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto other = sut.users[1 - owner];
        auto mb = sut.ids.at(key);
        auto own = sut.ids.at(static_cast<int>(1 - owner));  // the other user's INBOX
        std::vector<std::uint32_t> one{1};
        std::vector<std::string> seen{"\\Seen"};
        std::vector<store::NewMessage> batch{{"x\r\n", 1, {}}};
        expect_error({StoreError::Kind::NotFound}, "foreign access " + std::to_string(op), [&] {
            switch (op) {
                case 0:
                    sut.store->messages(other, mb);
                    break;
                case 1:
                    sut.store->read_message(other, mb, 1);
                    break;
                case 2:
                    sut.store->expunge(other, mb, one);
                    break;
                case 3:
                    sut.store->append(other, mb, batch);
                    break;
                case 4:
                    sut.store->update_flags(other, mb, one, FlagOp::Add, seen);
                    break;
                case 5:
                    sut.store->copy_messages(other, mb, one, own);
                    break;
                case 6:
                    sut.store->mailbox_changes(other, mb, 0);
                    break;
                case 7:
                    sut.store->claim_recent(other, mb);
                    break;
                default:
                    sut.store->delete_mailbox(other, mb);
                    break;
            }
        });
        check_all(s, sut);
    }
    void show(std::ostream& os) const override {
        os << kLogins[1 - owner] << " uses " << kLogins[owner] << "'s #" << key << " (op " << op
           << ")";
    }
};

// Users: a taken login is refused, a secret can be replaced, unknown logins are not found.
struct UserOps : StoreCommand {
    std::size_t u = gen_user();
    int op = *rc::gen::inRange(0, 5);
    std::string secret = "$s" + std::to_string(*rc::gen::inRange(0, 1000));
    void apply(StoreModel& s) const override {
        if (op == 2) s.users[u].secret = secret;
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        auto& st = *sut.store;
        switch (op) {
            case 0:
                expect_error({StoreError::Kind::Exists}, "add a taken login",
                             [&] { st.add_user(kLogins[u], "$other"); });
                break;
            case 1: {
                auto found = st.find_user(kLogins[u]);
                RC_ASSERT(found.has_value());
                RC_ASSERT(found->id == sut.users[u]);
                RC_ASSERT(found->secret == s.users[u].secret);
                break;
            }
            case 2:
                st.set_secret(kLogins[u], secret);
                RC_ASSERT(st.find_user(kLogins[u])->secret == secret);
                break;
            case 3:
                expect_error({StoreError::Kind::NotFound}, "set the secret of nobody",
                             [&] { st.set_secret("nobody", secret); });
                break;
            default:
                RC_ASSERT(!st.find_user("nobody").has_value());
                RC_ASSERT(st.user_count() == kLogins.size());
                break;
        }
        check_all(nextState(s), sut);
    }
    void show(std::ostream& os) const override { os << "user op " << op << " on " << kLogins[u]; }
};

// The change log after the state seen at an earlier epoch: exactly the later changes, in
// ascending state order, ending at the current state; `max` pages them.
struct ChangeLog : StoreCommand {
    std::size_t u;
    int since;
    explicit ChangeLog(const StoreModel& s)
        : u(gen_user()), since(*rc::gen::inRange(0, s.users[u].epoch + 1)) {}
    void checkPreconditions(const StoreModel& s) const override {
        RC_PRE(since <= s.users[u].epoch);
    }
    void run(const StoreModel& s, StoreSut& sut) const override {
        check_all(s, sut);
        auto& hist = sut.states[u];
        auto from = hist.at(static_cast<std::size_t>(since));
        auto c = sut.store->changes_since(sut.users[u], from, 100000);
        RC_ASSERT(!c.has_more);
        RC_ASSERT(c.state == hist.back());
        RC_ASSERT(c.changes.empty() == (since == s.users[u].epoch));
        auto last = from;
        for (auto& ch : c.changes) {
            if (ch.state <= last) RC_FAIL("change-log states not ascending");
            last = ch.state;
        }
        auto page = sut.store->changes_since(sut.users[u], from, 1);
        RC_ASSERT(page.changes.size() == std::min<std::size_t>(1, c.changes.size()));
        RC_ASSERT(page.has_more == (c.changes.size() > 1));
    }
    void show(std::ostream& os) const override {
        os << kLogins[u] << ": change log since epoch " << since;
    }
};

// Closes the store and opens it again on the same directory: everything committed is there,
// bytes included.
struct Reopen : StoreCommand {
    void run(const StoreModel& s, StoreSut& sut) const override {
        sut.store.reset();
        sut.store = sut.backend.open(sut.dir);
        check_all(s, sut, true);
    }
    void show(std::ostream& os) const override { os << "close and reopen the store"; }
};

void run_suite(const Backend& backend) {
    auto ok = rc::check("store model on " + backend.name, [&backend] {
        StoreSut sut(backend);
        StoreModel initial;
        check_all(initial, sut);
        auto commands = rc::state::gen::execOneOfWithArgs<
            CreateMailbox, CreateMailbox, DeleteMailbox, RenameMailbox, Subscribe, Deliver, Deliver,
            Deliver, Append, Append, Transfer, Transfer, UpdateFlags, UpdateFlags, UpdateFlags,
            Expunge, Expunge, ClaimRecent, MailboxChanges, MailboxChanges, ReadMessage,
            ForeignAccess, UserOps, ChangeLog, Reopen>();
        auto sequence = *rc::state::gen::commands(initial, commands);
        RC_TAG(props::gen::length_tag(sequence.size()));
        rc::state::runAll(sequence, initial, sut);
    });
    EXPECT_TRUE(ok);
}

// The backends. A new one (RADOS) adds a Backend and a TEST line.
const Backend kSqlite{"sqlite", [](const std::filesystem::path& dir) {
                          return store::open_store("sqlite:" + dir.string());
                      }};

}  // namespace

TEST(StoreModel, Sqlite) {
    run_suite(kSqlite);
}
