// properties/imap_model.cpp: one IMAP session against a model of the user's mailboxes (RFC 3501
// and 9051 with UIDPLUS RFC 4315, CONDSTORE RFC 7162, MOVE RFC 6851): CREATE, DELETE, RENAME,
// SELECT, EXAMINE, APPEND, STORE (+/-/=, .SILENT, UID STORE), COPY and MOVE with COPYUID,
// EXPUNGE and UID EXPUNGE, FETCH (flags, UID, size, the exact bytes), SEARCH, STATUS, CLOSE.
//
// The model knows messages by serial (its own name); the UIDs the server assigns are learned from
// APPENDUID and COPYUID and then checked everywhere: unique, increasing, stable. MODSEQ is
// checked to grow strictly on every STORE that changes a message's flags. The case works under a
// fresh mailbox prefix, so it can run against any server (millipost-check) that has UIDPLUS,
// CONDSTORE, MOVE and ENABLE.
#include "imap_models.h"
#include "support/imap_client.h"
#include "support/imap_target.h"

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

namespace millipost::props {

double imap_model_scale = 1.0;

void choose_form(const char* short_form, const char* long_form) {
    if (!std::getenv("RC_PARAMS"))
        ::setenv("RC_PARAMS", std::getenv("MILLIPOST_PROPS_LONG") ? long_form : short_form, 1);
}

namespace {

using imap::Reply;
using imap::Response;

// Mailbox names the model uses (under the case's prefix); few, so that commands collide.
const std::vector<std::string> kNames = {"a", "b", "c"};
// Flags the model sets: system flags and keywords (RFC 3501 §2.3.2).
const std::vector<std::string> kFlags = {"\\Seen",    "\\Flagged",  "\\Answered", "\\Draft",
                                         "\\Deleted", "$Forwarded", "kw1",        "kw2"};

using Flags = std::set<std::string>;

std::string show_flags(const Flags& f) {
    std::string out;
    for (auto& x : f)
        out += (out.empty() ? "" : " ") + x;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Model

struct Msg {
    int serial = 0;
    Flags flags;
    std::string text;
};

struct Mbox {
    int id = 0;             // the model's name for the mailbox; RENAME keeps it
    std::vector<Msg> msgs;  // in UID order (= the order they arrived)
};

struct Model {
    std::map<std::string, Mbox> boxes;
    std::optional<std::string> selected;
    bool read_only = false;
    int next_serial = 1;
    int next_box = 1;

    const Mbox* sel() const { return selected ? &boxes.at(*selected) : nullptr; }
    Mbox* sel() { return selected ? &boxes.at(*selected) : nullptr; }
    std::size_t count() const { return selected ? sel()->msgs.size() : 0; }
};

// ---------------------------------------------------------------------------------------------
// System under test: one logged-in session and what was learned from the server.

struct Sut {
    std::string prefix = imap::unique_prefix();
    imap::Client c;
    std::map<int, std::uint64_t> uid;          // serial -> UID
    std::map<int, std::uint64_t> uidvalidity;  // box id -> UIDVALIDITY
    std::map<int, std::uint64_t> max_uid;      // box id -> highest UID assigned so far
    std::map<int, std::uint64_t> modseq;       // box id -> highest MODSEQ seen
    std::uint64_t exists = 0;                  // messages in the selected mailbox, as announced
    std::set<std::string> maybe_created;       // full names to delete at the end

    // Logs in and creates and selects mailbox "a": the model's initial state (initial_model()).
    Sut() : c(imap::target().at) {
        auto& [login, password] = imap::target().users.front();
        c.open(login, password, true);
        for (auto cap : {"UIDPLUS", "MOVE"})
            if (!c.capabilities().count(cap))
                throw imap::ImapError(std::string("server lacks ") + cap);
        auto r = run("CREATE " + imap::quote(full("a")));
        if (!r.ok()) RC_FAIL("CREATE: " + r.show());
        maybe_created.insert(full("a"));
        r = run("SELECT " + imap::quote(full("a")));
        if (!r.ok()) RC_FAIL("SELECT: " + r.show());
    }
    ~Sut() {
        try {
            c.command("CLOSE");
            for (auto& name : maybe_created)
                c.command("DELETE " + imap::quote(name));
            c.command("LOGOUT");
        } catch (const std::exception&) {
            // Best effort: a broken session already failed the case.
        }
    }

    std::string full(const std::string& name) const { return prefix + name; }

    // Runs a command; EXISTS and EXPUNGE adjust the announced count (checked by callers).
    Reply run(const std::string& command) { return absorb(c.command(command)); }
    Reply absorb(Reply r) {
        for (auto& u : r.untagged) {
            if (u.name == "EXISTS") {
                if (!u.number) RC_FAIL("EXISTS without a number: " + u.raw);
                exists = *u.number;
            } else if (u.name == "EXPUNGE") {
                if (!u.number || *u.number < 1 || *u.number > exists)
                    RC_FAIL("EXPUNGE of a message the session does not have: " + u.raw);
                --exists;
            } else if (u.name == "BYE") {
                RC_FAIL("server said BYE: " + r.show());
            }
        }
        return r;
    }
};

void expect_ok(const Reply& r, const std::string& what) {
    if (!r.ok()) RC_FAIL(what + ": expected OK, got:\n" + r.show());
}
// A change refused because the mailbox was opened with EXAMINE: RFC 3501 §6.3.2 forbids the
// change but not an OK (Dovecot answers "OK Store ignored with read-only mailbox"), so NO or OK
// both pass; that nothing changed is checked afterwards.
void expect_refused(const Reply& r, const std::string& what) {
    if (r.done.name != "NO" && r.done.name != "OK")
        RC_FAIL(what + ": expected NO (or an OK that changes nothing), got:\n" + r.show());
    for (auto& u : r.untagged)
        if (u.name == "EXPUNGE") RC_FAIL(what + ": EXPUNGE in a read-only mailbox: " + u.raw);
}

void expect_no(const Reply& r, const std::string& what) {
    if (r.done.name != "NO" && r.done.name != "BAD")
        RC_FAIL(what + ": expected NO, got:\n" + r.show());
}

std::optional<std::string> code_arg(const Response& r, const std::string& code) {
    auto w = r.code_words();
    if (w.size() >= 2 && w[0] == code) return w[1];
    return std::nullopt;
}

// The count the session was told must be the model's; a server may announce new messages at
// the next command, so one NOOP is allowed before the count must match.
void sync_count(const Model& m, Sut& sut, const std::string& what) {
    if (!m.selected) return;
    if (sut.exists != m.count()) expect_ok(sut.run("NOOP"), "NOOP");
    if (sut.exists != m.count())
        RC_FAIL(what + ": session was told of " + std::to_string(sut.exists) +
                " messages, model has " + std::to_string(m.count()));
}

// A new UID in mailbox `box`: above every UID assigned there before (RFC 3501 §2.3.1.1).
void learn_uid(Sut& sut, int box, int serial, std::uint64_t uid) {
    auto& mx = sut.max_uid[box];
    if (uid <= mx)
        RC_FAIL("new UID " + std::to_string(uid) + " not above earlier UID " + std::to_string(mx));
    mx = uid;
    sut.uid[serial] = uid;
}

void check_uidvalidity(Sut& sut, int box, std::uint64_t v, const std::string& what) {
    if (v == 0) RC_FAIL(what + ": UIDVALIDITY 0");
    auto it = sut.uidvalidity.find(box);
    if (it == sut.uidvalidity.end())
        sut.uidvalidity[box] = v;
    else if (it->second != v)
        RC_FAIL(what + ": UIDVALIDITY changed from " + std::to_string(it->second) + " to " +
                std::to_string(v));
}

std::uint64_t number_of(const std::string& s, const std::string& what) {
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), ::isdigit))
        RC_FAIL(what + ": not a number: " + s);
    return std::stoull(s);
}

// FETCH 1:* (UID FLAGS MODSEQ): every message's UID and flags are the model's. Messages whose
// flags `changed` must have a MODSEQ above `modseq_before`. Returns the highest MODSEQ seen.
void check_all_flags(const Model& m, Sut& sut, const std::set<int>& changed,
                     std::uint64_t modseq_before, const std::string& what) {
    auto* box = m.sel();
    if (!box || box->msgs.empty()) return;
    auto r = sut.run("FETCH 1:* (UID FLAGS MODSEQ)");
    expect_ok(r, what + ": FETCH 1:*");
    std::map<std::uint64_t, imap::FetchItems> by_seq;
    for (auto& u : r.untagged)
        if (u.name == "FETCH") {
            auto items = imap::fetch_items(u);
            auto& slot = by_seq[*u.number];
            for (auto& [k, v] : items)
                slot[k] = v;
        }
    auto& hi = sut.modseq[box->id];
    for (std::size_t i = 0; i < box->msgs.size(); ++i) {
        auto& msg = box->msgs[i];
        auto it = by_seq.find(i + 1);
        if (it == by_seq.end() || !it->second.count("UID") || !it->second.count("FLAGS") ||
            !it->second.count("MODSEQ"))
            RC_FAIL(what + ": FETCH lacks message " + std::to_string(i + 1) + ":\n" + r.show());
        auto& items = it->second;
        if (items["UID"].number() != sut.uid.at(msg.serial))
            RC_FAIL(what + ": message " + std::to_string(i + 1) + " has UID " +
                    items["UID"].show() + ", expected " + std::to_string(sut.uid.at(msg.serial)));
        auto flags = imap::flag_set(items["FLAGS"]);
        if (flags != msg.flags)
            RC_FAIL(what + ": message " + std::to_string(i + 1) + " has flags (" +
                    show_flags(flags) + "), model (" + show_flags(msg.flags) + ")");
        auto& ms = items["MODSEQ"];
        if (ms.kind != imap::Value::List || ms.items.size() != 1)
            RC_FAIL(what + ": malformed MODSEQ " + ms.show());
        auto modseq = ms.items[0].number();
        if (changed.count(msg.serial) && modseq <= modseq_before)
            RC_FAIL(what + ": flags of message " + std::to_string(i + 1) + " changed but MODSEQ " +
                    std::to_string(modseq) + " is not above " + std::to_string(modseq_before));
        hi = std::max(hi, modseq);
    }
    if (by_seq.size() != box->msgs.size() || by_seq.rbegin()->first != box->msgs.size())
        RC_FAIL(what + ": FETCH 1:* answered for other messages:\n" + r.show());
}

// A range of sequence numbers in the selected mailbox (1-based, inclusive).
struct Range {
    std::size_t lo = 1, hi = 1;
    std::string seqs() const {
        return lo == hi ? std::to_string(lo) : std::to_string(lo) + ":" + std::to_string(hi);
    }
    bool fits(const Model& m) const { return m.selected && lo >= 1 && lo <= hi && hi <= m.count(); }
};

Range gen_range(const Model& m) {
    auto n = std::max<std::size_t>(m.count(), 1);
    auto a = *rc::gen::inRange<std::size_t>(1, n + 1);
    auto b = *rc::gen::weightedOneOf<std::size_t>(
        {{2, rc::gen::just(a)}, {1, rc::gen::inRange<std::size_t>(a, n + 1)}});
    return {a, b};
}

std::string uids_of(const Model& m, const Sut& sut, const Range& r) {
    std::vector<std::uint64_t> uids;
    for (auto i = r.lo; i <= r.hi; ++i)
        uids.push_back(sut.uid.at(m.sel()->msgs[i - 1].serial));
    return imap::make_set(uids);
}

// Zero to three flags: few enough that STOREs overlap with the flags messages already have.
Flags gen_flags() {
    Flags out;
    auto n = *rc::gen::inRange(0, 4);
    for (int i = 0; i < n; ++i)
        out.insert(*rc::gen::elementOf(kFlags));
    return out;
}

// A mailbox name, mostly the selected one (where the message commands look).
std::string gen_name(const Model& m) {
    if (m.selected && *rc::gen::inRange(0, 3) > 0) return *m.selected;
    return *rc::gen::elementOf(kNames);
}

std::string flag_list(const Flags& f) {
    return show_flags(f);
}

using Command = rc::state::Command<Model, Sut>;

// ---------------------------------------------------------------------------------------------
// Mailboxes

struct Create : Command {
    std::string name = *rc::gen::elementOf(kNames);
    void apply(Model& m) const override {
        if (!m.boxes.count(name)) m.boxes[name] = Mbox{m.next_box++, {}};
    }
    void run(const Model& m, Sut& sut) const override {
        auto r = sut.run("CREATE " + imap::quote(sut.full(name)));
        if (m.boxes.count(name)) return expect_no(r, "CREATE of an existing mailbox");
        expect_ok(r, "CREATE");
        sut.maybe_created.insert(sut.full(name));
    }
    void show(std::ostream& os) const override { os << "CREATE " << name; }
};

struct Delete : Command {
    std::string name = *rc::gen::elementOf(kNames);
    // Deleting the selected mailbox is left out: what the session sees then differs by server.
    void checkPreconditions(const Model& m) const override { RC_PRE(m.selected != name); }
    void apply(Model& m) const override { m.boxes.erase(name); }
    void run(const Model& m, Sut& sut) const override {
        auto r = sut.run("DELETE " + imap::quote(sut.full(name)));
        if (!m.boxes.count(name)) return expect_no(r, "DELETE of a missing mailbox");
        expect_ok(r, "DELETE");
    }
    void show(std::ostream& os) const override { os << "DELETE " << name; }
};

struct Rename : Command {
    std::string from = *rc::gen::elementOf(kNames), to = *rc::gen::elementOf(kNames);
    void checkPreconditions(const Model& m) const override {
        RC_PRE(from != to);
        RC_PRE(m.selected != from && m.selected != to);
    }
    bool works(const Model& m) const { return m.boxes.count(from) && !m.boxes.count(to); }
    void apply(Model& m) const override {
        if (!works(m)) return;
        m.boxes[to] = std::move(m.boxes[from]);
        m.boxes.erase(from);
    }
    void run(const Model& m, Sut& sut) const override {
        auto r = sut.run("RENAME " + imap::quote(sut.full(from)) + " " + imap::quote(sut.full(to)));
        if (!works(m)) return expect_no(r, "RENAME");
        expect_ok(r, "RENAME");
        sut.maybe_created.insert(sut.full(to));
    }
    void show(std::ostream& os) const override { os << "RENAME " << from << " " << to; }
};

struct Select : Command {
    std::string name = *rc::gen::elementOf(kNames);
    bool examine =
        *rc::gen::weightedOneOf<bool>({{3, rc::gen::just(false)}, {1, rc::gen::just(true)}});
    void apply(Model& m) const override {
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        if (m.boxes.count(name)) {
            m.selected = name;
            m.read_only = examine;
        } else {
            m.selected.reset();
        }
    }
    void run(const Model& m, Sut& sut) const override {
        std::string what = examine ? "EXAMINE" : "SELECT";
        sut.exists = 0;
        auto r = sut.run(what + " " + imap::quote(sut.full(name)));
        if (!m.boxes.count(name)) return expect_no(r, what + " of a missing mailbox");
        expect_ok(r, what);
        auto& box = m.boxes.at(name);
        bool saw_exists = false, saw_validity = false;
        for (auto& u : r.untagged) {
            if (u.name == "EXISTS") saw_exists = true;
            if (u.name != "OK") continue;
            if (auto v = code_arg(u, "UIDVALIDITY")) {
                saw_validity = true;
                check_uidvalidity(sut, box.id, number_of(*v, "UIDVALIDITY"), what);
            }
            if (auto v = code_arg(u, "UIDNEXT")) {
                auto next = number_of(*v, "UIDNEXT");
                if (next <= sut.max_uid[box.id])
                    RC_FAIL(what + ": UIDNEXT " + *v + " not above UID " +
                            std::to_string(sut.max_uid[box.id]) + " already assigned");
            }
            if (auto v = code_arg(u, "HIGHESTMODSEQ")) {
                auto hms = number_of(*v, "HIGHESTMODSEQ");
                if (hms < sut.modseq[box.id])
                    RC_FAIL(what + ": HIGHESTMODSEQ " + *v + " below MODSEQ " +
                            std::to_string(sut.modseq[box.id]) + " seen before");
            }
        }
        if (!saw_exists || !saw_validity)
            RC_FAIL(what + " lacks EXISTS or UIDVALIDITY:\n" + r.show());
        if (sut.exists != box.msgs.size())
            RC_FAIL(what + ": EXISTS " + std::to_string(sut.exists) + ", model has " +
                    std::to_string(box.msgs.size()));
        auto rw = r.done.code_words();
        if (examine && (rw.empty() || rw[0] != "READ-ONLY"))
            RC_FAIL("EXAMINE did not answer [READ-ONLY]: " + r.done.raw);
        if (!examine && (rw.empty() || rw[0] != "READ-WRITE"))
            RC_FAIL("SELECT did not answer [READ-WRITE]: " + r.done.raw);
    }
    void show(std::ostream& os) const override { os << (examine ? "EXAMINE " : "SELECT ") << name; }
};

struct Close : Command {
    void checkPreconditions(const Model& m) const override { RC_PRE(m.selected.has_value()); }
    void apply(Model& m) const override {
        // CLOSE expunges \Deleted messages silently unless the mailbox is read-only.
        if (!m.read_only)
            std::erase_if(m.sel()->msgs,
                          [](const Msg& x) { return x.flags.count("\\Deleted") > 0; });
        m.selected.reset();
    }
    void run(const Model&, Sut& sut) const override {
        auto r = sut.run("CLOSE");
        expect_ok(r, "CLOSE");
        for (auto& u : r.untagged)
            if (u.name == "EXPUNGE") RC_FAIL("CLOSE sent EXPUNGE: " + u.raw);
    }
    void show(std::ostream& os) const override { os << "CLOSE"; }
};

struct Status : Command {
    std::string name = *rc::gen::elementOf(kNames);
    void run(const Model& m, Sut& sut) const override {
        auto r = sut.run("STATUS " + imap::quote(sut.full(name)) +
                         " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)");
        if (!m.boxes.count(name)) return expect_no(r, "STATUS of a missing mailbox");
        expect_ok(r, "STATUS");
        auto& box = m.boxes.at(name);
        const imap::Value* attrs = nullptr;
        for (auto& u : r.untagged)
            if (u.name == "STATUS" && u.data.size() == 2 && u.data[1].kind == imap::Value::List)
                attrs = &u.data[1];
        if (!attrs || attrs->items.size() % 2) RC_FAIL("STATUS lacks its data:\n" + r.show());
        std::map<std::string, std::uint64_t> got;
        for (std::size_t i = 0; i < attrs->items.size(); i += 2)
            got[attrs->items[i].text] = attrs->items[i + 1].number();
        for (auto key : {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"})
            if (!got.count(key)) RC_FAIL(std::string("STATUS lacks ") + key + ":\n" + r.show());
        auto unseen = std::count_if(box.msgs.begin(), box.msgs.end(),
                                    [](const Msg& x) { return !x.flags.count("\\Seen"); });
        if (got["MESSAGES"] != box.msgs.size() ||
            got["UNSEEN"] != static_cast<std::uint64_t>(unseen))
            RC_FAIL("STATUS MESSAGES/UNSEEN " + std::to_string(got["MESSAGES"]) + "/" +
                    std::to_string(got["UNSEEN"]) + ", model " + std::to_string(box.msgs.size()) +
                    "/" + std::to_string(unseen));
        if (got["UIDNEXT"] <= sut.max_uid[box.id])
            RC_FAIL("STATUS UIDNEXT " + std::to_string(got["UIDNEXT"]) +
                    " not above assigned UID " + std::to_string(sut.max_uid[box.id]));
        check_uidvalidity(sut, box.id, got["UIDVALIDITY"], "STATUS");
        if (got["HIGHESTMODSEQ"] < sut.modseq[box.id])
            RC_FAIL("STATUS HIGHESTMODSEQ below a MODSEQ seen before");
    }
    void show(std::ostream& os) const override { os << "STATUS " << name; }
};

// ---------------------------------------------------------------------------------------------
// Messages

struct Append : Command {
    std::string name;
    Flags flags = gen_flags();
    int serial;
    std::string text;
    explicit Append(const Model& m) : name(gen_name(m)), serial(m.next_serial) {
        auto lines = *rc::gen::container<std::vector<std::string>>(
            *rc::gen::inRange<std::size_t>(0, 12),
            rc::gen::container<std::string>(*rc::gen::inRange<std::size_t>(0, 60),
                                            rc::gen::elementOf(std::string("abcdefgh XYZ.0123-"))));
        text = "Message-Id: <s" + std::to_string(serial) + "." +
               std::to_string(*rc::gen::inRange<unsigned>(0, 1000000000u)) +
               "@props.millipost.test>\r\nSubject: model " + std::to_string(serial) +
               "\r\nFrom: a@example.org\r\n\r\n";
        for (auto& l : lines)
            text += l + "\r\n";
    }
    // Serials only grow, so that shrinking keeps them unique.
    void checkPreconditions(const Model& m) const override { RC_PRE(serial >= m.next_serial); }
    void apply(Model& m) const override {
        m.next_serial = serial + 1;
        if (m.boxes.count(name)) m.boxes[name].msgs.push_back({serial, flags, text});
    }
    void run(const Model& m, Sut& sut) const override {
        auto r =
            sut.absorb(sut.c.read_reply(sut.c.send_append(sut.full(name), flag_list(flags), text)));
        if (!m.boxes.count(name)) return expect_no(r, "APPEND to a missing mailbox");
        expect_ok(r, "APPEND");
        auto w = r.done.code_words();
        if (w.size() != 3 || w[0] != "APPENDUID")
            RC_FAIL("APPEND without APPENDUID: " + r.done.raw);
        auto id = m.boxes.at(name).id;
        check_uidvalidity(sut, id, number_of(w[1], "APPENDUID"), "APPENDUID");
        learn_uid(sut, id, serial, number_of(w[2], "APPENDUID"));
        sync_count(nextState(m), sut, "APPEND to the selected mailbox");
    }
    void show(std::ostream& os) const override {
        os << "APPEND " << name << " (" << show_flags(flags) << ") #" << serial << " ("
           << text.size() << " bytes)";
    }
};

struct Store : Command {
    Range range;
    char mode = *rc::gen::element('+', '-', '=');
    Flags flags = gen_flags();
    bool silent = *rc::gen::arbitrary<bool>();
    bool by_uid = *rc::gen::arbitrary<bool>();
    explicit Store(const Model& m) : range(gen_range(m)) {
        // Half the time the flags come from the messages themselves, so that removing and
        // replacing flags really changes something.
        if (!range.fits(m) || *rc::gen::arbitrary<bool>()) return;
        Flags pool;
        for (auto i = range.lo; i <= range.hi; ++i)
            pool.insert(m.sel()->msgs[i - 1].flags.begin(), m.sel()->msgs[i - 1].flags.end());
        if (pool.empty()) return;
        flags.clear();
        for (auto& f : pool)
            if (*rc::gen::arbitrary<bool>()) flags.insert(f);
    }
    void checkPreconditions(const Model& m) const override { RC_PRE(range.fits(m)); }
    void apply(Model& m) const override {
        if (m.read_only) return;
        for (auto i = range.lo; i <= range.hi; ++i) {
            auto& f = m.sel()->msgs[i - 1].flags;
            if (mode == '=') f = flags;
            for (auto& x : flags)
                mode == '-' ? (void)f.erase(x) : (void)f.insert(x);
        }
    }
    std::string line(const Model& m, const Sut& sut) const {
        std::string item = mode == '=' ? "FLAGS" : std::string(1, mode) + "FLAGS";
        if (silent) item += ".SILENT";
        return (by_uid ? "UID STORE " + uids_of(m, sut, range) : "STORE " + range.seqs()) + " " +
               item + " (" + flag_list(flags) + ")";
    }
    void run(const Model& m, Sut& sut) const override {
        auto before = sut.modseq[m.sel()->id];
        auto r = sut.run(line(m, sut));
        // RFC 3501 §6.4.6: STORE in a mailbox opened with EXAMINE fails.
        if (m.read_only) {
            expect_refused(r, "STORE in a read-only mailbox");
            return check_all_flags(m, sut, {}, before, "after STORE in a read-only mailbox");
        }
        expect_ok(r, line(m, sut));
        auto after = nextState(m);
        std::set<int> changed;
        for (auto i = range.lo; i <= range.hi; ++i)
            if (m.sel()->msgs[i - 1].flags != after.sel()->msgs[i - 1].flags)
                changed.insert(m.sel()->msgs[i - 1].serial);
        // The untagged FETCH answers carry the new flags (unless .SILENT: then they may carry
        // only the MODSEQ, RFC 7162 §3.1.3).
        std::set<std::uint64_t> answered;
        for (auto& u : r.untagged) {
            if (u.name != "FETCH") continue;
            auto items = imap::fetch_items(u);
            if (*u.number < range.lo || *u.number > range.hi)
                RC_FAIL("STORE answered for message " + std::to_string(*u.number) + " outside " +
                        range.seqs() + ":\n" + r.show());
            if (items.count("FLAGS")) {
                answered.insert(*u.number);
                auto got = imap::flag_set(items["FLAGS"]);
                auto& want = after.sel()->msgs[*u.number - 1].flags;
                if (got != want)
                    RC_FAIL("STORE answered flags (" + show_flags(got) + ") for message " +
                            std::to_string(*u.number) + ", model (" + show_flags(want) + ")");
            }
        }
        if (!silent)
            for (auto i = range.lo; i <= range.hi; ++i)
                if (changed.count(m.sel()->msgs[i - 1].serial) && !answered.count(i))
                    RC_FAIL("STORE did not answer the new flags of message " + std::to_string(i) +
                            ":\n" + r.show());
        check_all_flags(after, sut, changed, before, "after " + line(m, sut));
    }
    void show(std::ostream& os) const override {
        os << (by_uid ? "UID STORE " : "STORE ") << range.seqs() << " " << mode << "FLAGS"
           << (silent ? ".SILENT" : "") << " (" << show_flags(flags) << ")";
    }
};

struct Fetch : Command {
    Range range;
    explicit Fetch(const Model& m) : range(gen_range(m)) {}
    void checkPreconditions(const Model& m) const override { RC_PRE(range.fits(m)); }
    void run(const Model& m, Sut& sut) const override {
        auto r = sut.run("FETCH " + range.seqs() + " (UID FLAGS RFC822.SIZE)");
        expect_ok(r, "FETCH");
        std::set<std::uint64_t> seen;
        for (auto& u : r.untagged) {
            if (u.name != "FETCH") continue;
            auto items = imap::fetch_items(u);
            auto n = *u.number;
            if (n < range.lo || n > range.hi)
                RC_FAIL("FETCH answered for message " + std::to_string(n) + ":\n" + r.show());
            seen.insert(n);
            auto& msg = m.sel()->msgs[n - 1];
            if (!items.count("UID") || items["UID"].number() != sut.uid.at(msg.serial))
                RC_FAIL("FETCH: message " + std::to_string(n) + " has the wrong UID:\n" + u.raw);
            if (!items.count("RFC822.SIZE") || items["RFC822.SIZE"].number() != msg.text.size())
                RC_FAIL("FETCH: message " + std::to_string(n) + " RFC822.SIZE is not " +
                        std::to_string(msg.text.size()) + ":\n" + u.raw);
            if (!items.count("FLAGS") || imap::flag_set(items["FLAGS"]) != msg.flags)
                RC_FAIL("FETCH: message " + std::to_string(n) + " flags are not (" +
                        show_flags(msg.flags) + "):\n" + u.raw);
        }
        if (seen.size() != range.hi - range.lo + 1) RC_FAIL("FETCH missed messages:\n" + r.show());
    }
    void show(std::ostream& os) const override {
        os << "FETCH " << range.seqs() << " (UID FLAGS RFC822.SIZE)";
    }
};

// BODY[] returns the bytes appended and sets \Seen unless the mailbox is read-only.
struct FetchBody : Command {
    std::size_t n;
    explicit FetchBody(const Model& m)
        : n(*rc::gen::inRange<std::size_t>(1, std::max<std::size_t>(m.count(), 1) + 1)) {}
    void checkPreconditions(const Model& m) const override { RC_PRE(m.selected && n <= m.count()); }
    void apply(Model& m) const override {
        if (!m.read_only) m.sel()->msgs[n - 1].flags.insert("\\Seen");
    }
    void run(const Model& m, Sut& sut) const override {
        auto before = sut.modseq[m.sel()->id];
        auto r = sut.run("FETCH " + std::to_string(n) + " BODY[]");
        expect_ok(r, "FETCH BODY[]");
        bool got = false;
        for (auto& u : r.untagged) {
            if (u.name != "FETCH" || *u.number != n) continue;
            auto items = imap::fetch_items(u);
            if (!items.count("BODY[]")) continue;
            got = true;
            if (items["BODY[]"].text != m.sel()->msgs[n - 1].text)
                RC_FAIL("BODY[] of message " + std::to_string(n) +
                        " differs from what was appended:\n" + u.raw);
        }
        if (!got) RC_FAIL("FETCH BODY[] returned no body:\n" + r.show());
        auto after = nextState(m);
        std::set<int> changed;
        if (after.sel()->msgs[n - 1].flags != m.sel()->msgs[n - 1].flags)
            changed.insert(m.sel()->msgs[n - 1].serial);
        check_all_flags(after, sut, changed, before, "after FETCH BODY[]");
    }
    void show(std::ostream& os) const override { os << "FETCH " << n << " BODY[]"; }
};

// COPY or MOVE of a range to a mailbox; COPYUID (RFC 4315 §3) names the new UIDs.
struct Transfer : Command {
    Range range;
    std::string dest = *rc::gen::elementOf(kNames);
    bool move = *rc::gen::arbitrary<bool>();
    bool by_uid = *rc::gen::arbitrary<bool>();
    int first_serial;
    explicit Transfer(const Model& m) : range(gen_range(m)), first_serial(m.next_serial) {}
    void checkPreconditions(const Model& m) const override {
        RC_PRE(range.fits(m));
        RC_PRE(first_serial >= m.next_serial);
        // A MOVE into the mailbox itself is left out (RFC 6851 does not say what it means).
        RC_PRE(!move || dest != *m.selected);
        // MOVE out of a read-only mailbox is left out: a server may refuse it or copy only.
        RC_PRE(!move || !m.read_only);
    }
    bool works(const Model& m) const { return m.boxes.count(dest) > 0; }
    void apply(Model& m) const override {
        m.next_serial = first_serial + static_cast<int>(range.hi - range.lo + 1);
        if (!works(m)) return;
        std::vector<Msg> copies;
        for (auto i = range.lo; i <= range.hi; ++i) {
            auto c = m.sel()->msgs[i - 1];
            c.serial = first_serial + static_cast<int>(i - range.lo);
            copies.push_back(c);
        }
        if (move) {
            auto& v = m.sel()->msgs;
            v.erase(v.begin() + static_cast<long>(range.lo - 1),
                    v.begin() + static_cast<long>(range.hi));
        }
        auto& d = m.boxes.at(dest).msgs;
        d.insert(d.end(), copies.begin(), copies.end());
    }
    void run(const Model& m, Sut& sut) const override {
        std::string verb = move ? "MOVE" : "COPY";
        auto line =
            (by_uid ? "UID " + verb + " " + uids_of(m, sut, range) : verb + " " + range.seqs()) +
            " " + imap::quote(sut.full(dest));
        std::vector<std::uint64_t> src_uids;
        for (auto i = range.lo; i <= range.hi; ++i)
            src_uids.push_back(sut.uid.at(m.sel()->msgs[i - 1].serial));
        auto count_before = sut.exists;
        auto r = sut.run(line);
        if (!works(m)) return expect_no(r, line);
        expect_ok(r, line);
        // COPYUID is in the tagged OK for COPY, in an untagged OK for MOVE (RFC 6851 §4.3).
        std::vector<std::string> w = r.done.code_words();
        for (auto& u : r.untagged)
            if (u.name == "OK" && !u.code_words().empty() && u.code_words()[0] == "COPYUID")
                w = u.code_words();
        if (w.size() != 4 || w[0] != "COPYUID") RC_FAIL(line + ": no COPYUID:\n" + r.show());
        auto id = m.boxes.at(dest).id;
        check_uidvalidity(sut, id, number_of(w[1], "COPYUID"), "COPYUID");
        auto src = imap::expand_set(w[2]), dst = imap::expand_set(w[3]);
        if (src != src_uids)
            RC_FAIL(line + ": COPYUID source set " + w[2] + ", expected " +
                    imap::make_set(src_uids));
        if (dst.size() != src.size()) RC_FAIL(line + ": COPYUID sets differ in size: " + r.show());
        for (std::size_t i = 0; i < dst.size(); ++i)
            learn_uid(sut, id, first_serial + static_cast<int>(i), dst[i]);
        if (move) {
            // The EXPUNGE responses must remove exactly the moved messages from the session.
            std::vector<std::uint64_t> view;
            for (auto& x : m.sel()->msgs)
                view.push_back(sut.uid.at(x.serial));
            std::uint64_t n = count_before;
            for (auto& u : r.untagged) {
                if (u.name != "EXPUNGE") continue;
                if (*u.number < 1 || *u.number > view.size()) RC_FAIL("bad EXPUNGE: " + u.raw);
                view.erase(view.begin() + static_cast<long>(*u.number - 1));
                --n;
            }
            std::vector<std::uint64_t> want;
            auto after = nextState(m);  // a named copy: the loop must not range over a temporary
            for (auto& x : after.sel()->msgs)
                want.push_back(sut.uid.at(x.serial));
            if (view != want)
                RC_FAIL(line + ": EXPUNGE responses do not remove the moved messages:\n" +
                        r.show());
        }
        sync_count(nextState(m), sut, line);
    }
    void show(std::ostream& os) const override {
        os << (by_uid ? "UID " : "") << (move ? "MOVE " : "COPY ") << range.seqs() << " " << dest
           << " (#" << first_serial << "...)";
    }
};

struct Expunge : Command {
    std::optional<Range> uids;
    explicit Expunge(const Model& m) {
        if (*rc::gen::arbitrary<bool>()) uids = gen_range(m);
    }
    void checkPreconditions(const Model& m) const override {
        RC_PRE(m.selected.has_value());
        RC_PRE(!uids || uids->fits(m));
    }
    bool hit(const Model& m, std::size_t i) const {  // 1-based
        return m.sel()->msgs[i - 1].flags.count("\\Deleted") &&
               (!uids || (i >= uids->lo && i <= uids->hi));
    }
    void apply(Model& m) const override {
        if (m.read_only) return;
        std::vector<Msg> keep;
        for (std::size_t i = 1; i <= m.count(); ++i)
            if (!hit(m, i)) keep.push_back(m.sel()->msgs[i - 1]);
        m.sel()->msgs = keep;
    }
    void run(const Model& m, Sut& sut) const override {
        auto line = uids ? "UID EXPUNGE " + uids_of(m, sut, *uids) : std::string("EXPUNGE");
        auto r = sut.run(line);
        if (m.read_only) {
            expect_refused(r, line + " in a read-only mailbox");
            return sync_count(m, sut, line);
        }
        expect_ok(r, line);
        std::vector<std::uint64_t> view, want;
        for (auto& x : m.sel()->msgs)
            view.push_back(sut.uid.at(x.serial));
        for (auto& u : r.untagged) {
            if (u.name != "EXPUNGE") continue;
            if (*u.number < 1 || *u.number > view.size()) RC_FAIL("bad EXPUNGE: " + u.raw);
            view.erase(view.begin() + static_cast<long>(*u.number - 1));
        }
        auto after = nextState(m);  // a named copy: the loop must not range over a temporary
        for (auto& x : after.sel()->msgs)
            want.push_back(sut.uid.at(x.serial));
        if (view != want)
            RC_FAIL(line + ": EXPUNGE responses do not remove exactly the \\Deleted messages:\n" +
                    r.show());
        sync_count(nextState(m), sut, line);
    }
    void show(std::ostream& os) const override {
        if (uids)
            os << "UID EXPUNGE (messages " << uids->seqs() << ")";
        else
            os << "EXPUNGE";
    }
};

// ---------------------------------------------------------------------------------------------
// SEARCH

struct Key {
    enum Kind { All, Flagged, Seen, Deleted, Keyword, UidRange, Larger, Not, Or } kind = All;
    std::string keyword;
    Range range;
    std::size_t size = 0;
    std::vector<Key> sub;
};

Key gen_key(const Model& m, int depth) {
    Key k;
    int top = depth > 0 ? 8 : 6;
    switch (*rc::gen::inRange(0, top + 1)) {
        case 0:
            k.kind = Key::All;
            break;
        case 1:
            k.kind = Key::Flagged;
            break;
        case 2:
            k.kind = Key::Seen;
            break;
        case 3:
            k.kind = Key::Deleted;
            break;
        case 4:
            k.kind = Key::Keyword;
            k.keyword = *rc::gen::element<std::string>("kw1", "kw2", "$Forwarded");
            break;
        case 5:
            k.kind = Key::UidRange;
            k.range = gen_range(m);
            break;
        case 6: {
            k.kind = Key::Larger;
            // Near the size of a real message, so that it splits the mailbox.
            std::size_t base = 150;
            if (m.count())
                base = m.sel()->msgs[*rc::gen::inRange<std::size_t>(0, m.count())].text.size();
            k.size = base + *rc::gen::inRange(-1, 2);
            break;
        }
        case 7:
            k.kind = Key::Not;
            k.sub.push_back(gen_key(m, depth - 1));
            break;
        default:
            k.kind = Key::Or;
            k.sub.push_back(gen_key(m, depth - 1));
            k.sub.push_back(gen_key(m, depth - 1));
            break;
    }
    return k;
}

bool key_fits(const Key& k, const Model& m) {
    if (k.kind == Key::UidRange && !k.range.fits(m)) return false;
    return std::all_of(k.sub.begin(), k.sub.end(), [&m](const Key& s) { return key_fits(s, m); });
}

bool matches(const Key& k, const Msg& x, std::size_t seq) {
    switch (k.kind) {
        case Key::All:
            return true;
        case Key::Flagged:
            return x.flags.count("\\Flagged") > 0;
        case Key::Seen:
            return x.flags.count("\\Seen") > 0;
        case Key::Deleted:
            return x.flags.count("\\Deleted") > 0;
        case Key::Keyword:
            return x.flags.count(k.keyword) > 0;
        case Key::UidRange:
            return seq >= k.range.lo && seq <= k.range.hi;
        case Key::Larger:
            return x.text.size() > k.size;
        case Key::Not:
            return !matches(k.sub[0], x, seq);
        case Key::Or:
            return matches(k.sub[0], x, seq) || matches(k.sub[1], x, seq);
    }
    return false;
}

std::string key_text(const Key& k, const Model* m, const Sut* sut) {
    switch (k.kind) {
        case Key::All:
            return "ALL";
        case Key::Flagged:
            return "FLAGGED";
        case Key::Seen:
            return "SEEN";
        case Key::Deleted:
            return "DELETED";
        case Key::Keyword:
            return "KEYWORD " + k.keyword;
        case Key::UidRange:
            return "UID " + (sut ? uids_of(*m, *sut, k.range) : "<" + k.range.seqs() + ">");
        case Key::Larger:
            return "LARGER " + std::to_string(k.size);
        case Key::Not:
            return "NOT " + key_text(k.sub[0], m, sut);
        case Key::Or:
            return "OR " + key_text(k.sub[0], m, sut) + " " + key_text(k.sub[1], m, sut);
    }
    return "";
}

struct Search : Command {
    Key key;
    explicit Search(const Model& m) : key(gen_key(m, 2)) {}
    void checkPreconditions(const Model& m) const override {
        RC_PRE(m.selected.has_value());
        RC_PRE(key_fits(key, m));
    }
    void run(const Model& m, Sut& sut) const override {
        auto line = "SEARCH " + key_text(key, &m, &sut);
        auto r = sut.run(line);
        expect_ok(r, line);
        std::set<std::uint64_t> got, want;
        for (auto& u : r.untagged)
            if (u.name == "SEARCH")
                for (auto& v : u.data)
                    if (v.kind == imap::Value::Atom) got.insert(v.number());
        for (std::size_t i = 1; i <= m.count(); ++i)
            if (matches(key, m.sel()->msgs[i - 1], i)) want.insert(i);
        if (got != want) {
            std::vector<std::uint64_t> g(got.begin(), got.end()), w(want.begin(), want.end());
            RC_FAIL(line + ": got {" + imap::make_set(g) + "}, model {" + imap::make_set(w) + "}");
        }
    }
    void show(std::ostream& os) const override {
        os << "SEARCH " << key_text(key, nullptr, nullptr);
    }
};

struct Noop : Command {
    void run(const Model& m, Sut& sut) const override {
        expect_ok(sut.run("NOOP"), "NOOP");
        sync_count(m, sut, "NOOP");
    }
    void show(std::ostream& os) const override { os << "NOOP"; }
};

Model initial_model() {
    Model m;
    m.boxes["a"] = Mbox{m.next_box++, {}};
    m.selected = "a";
    return m;
}

}  // namespace

void imap_session_property() {
    Sut sut;
    auto commands =
        rc::state::gen::execOneOfWithArgs<Create, Create, Delete, Rename, Select, Select, Select,
                                          Close, Status, Append, Append, Append, Append, Store,
                                          Store, Store, Fetch, FetchBody, Transfer, Transfer,
                                          Expunge, Search, Search, Search, Noop>();
    auto sequence =
        *rc::gen::scale(imap_model_scale, rc::state::gen::commands(initial_model(), commands));
    RC_TAG("commands " + std::to_string(sequence.size() / 10 * 10) + "+");
    rc::state::runAll(sequence, initial_model(), sut);
}

}  // namespace millipost::props
