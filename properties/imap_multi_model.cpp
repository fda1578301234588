// properties/imap_multi_model.cpp: 2-4 IMAP sessions of one user on one mailbox, checked the way
// imaptest checks (Dovecot's IMAP stress tester): one shared record of the mailbox (messages by
// UID with their flags, which ones are expunged) and one view per session (sequence number ->
// UID, the flags as that session last saw them), updated only by what the server told that
// session (EXISTS, EXPUNGE, FETCH), in the order it told it.
//
// A command of the state machine is a batch: every session gets one operation; the commands are
// sent in a generated order and the responses are read as they come (poll over all sessions),
// so the server really interleaves them. Operations in one batch are chosen so that their effect
// on the record does not depend on the order the server runs them: each session only adds or
// removes its own keyword, and at most one session does something else (APPEND, a system flag,
// EXPUNGE - the last one only while the others NOOP or IDLE). Checkpoints let every session NOOP
// in turn; then every view must equal the record.
//
// Checked on every response: a session is never told about a sequence number it does not have
// (FETCH n or EXPUNGE n beyond what it was told exists), EXPUNGE only removes expunged messages,
// EXISTS never shrinks, no EXPUNGE while responding to FETCH or STORE (RFC 3501 §7.4.1), UIDs
// stay attached to their sequence numbers. At checkpoints: each view holds exactly the record's
// messages, in UID order, with the record's flags, as announced before the FETCH that verifies it.
#include "imap_models.h"
#include "support/imap_client.h"
#include "support/imap_target.h"

#include <poll.h>
#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace millipost::props {
namespace {

using Flags = std::set<std::string>;
using imap::Reply;
using imap::Response;

std::string show_flags(const Flags& f) {
    std::string out;
    for (auto& x : f)
        out += (out.empty() ? "" : " ") + x;
    return out;
}

std::string keyword(int session) {
    return "kw" + std::to_string(session + 1);
}

// ---------------------------------------------------------------------------------------------
// Model: the record (present messages in UID order) and what each session surely knows.

struct RMsg {
    int serial = 0;
    Flags flags;
};

struct Model {
    int sessions = 2;
    std::vector<RMsg> msgs;
    std::vector<std::set<int>> known;  // per session: serials it surely has (since a checkpoint)
    int next_serial = 1;

    const RMsg* find(int serial) const {
        for (auto& m : msgs)
            if (m.serial == serial) return &m;
        return nullptr;
    }
    RMsg* find(int serial) { return const_cast<RMsg*>(std::as_const(*this).find(serial)); }
};

enum class OpKind { Noop, Idle, Keyword, Fetch, Append, SysFlag, Expunge };

struct Op {
    OpKind kind = OpKind::Noop;
    bool add = true;           // Keyword, SysFlag
    std::string flag;          // SysFlag
    std::vector<int> serials;  // Keyword, Fetch, SysFlag
    Flags append_flags;        // Append
    int serial = 0;            // Append
};

// ---------------------------------------------------------------------------------------------
// System under test: the sessions, their views, and the UIDs learned.

struct Entry {
    std::uint64_t uid = 0;       // 0: not known yet (announced by EXISTS only)
    std::optional<Flags> flags;  // as last told
};

struct Session {
    imap::Client c;
    std::vector<Entry> view;
};

struct Sut {
    std::string mailbox = imap::unique_prefix() + "shared";
    std::vector<Session> s;
    std::map<int, std::uint64_t> uid;  // serial -> UID
    std::uint64_t max_uid = 0;

    explicit Sut(int sessions) {
        auto& t = imap::target();
        auto& [login, password] = t.users.front();
        for (int i = 0; i < sessions; ++i) {
            s.push_back({imap::Client(t.at), {}});
            s.back().c.open(login, password, false);
        }
        auto r = s[0].c.command("CREATE " + imap::quote(mailbox));
        if (!r.ok()) RC_FAIL("CREATE: " + r.show());
        for (int i = 0; i < sessions; ++i) {
            auto sel = s[i].c.command("SELECT " + imap::quote(mailbox));
            if (!sel.ok()) RC_FAIL("SELECT: " + sel.show());
        }
    }
    ~Sut() {
        try {
            for (auto& x : s)
                x.c.command("LOGOUT");
            imap::Client c(imap::target().at);
            auto& [login, password] = imap::target().users.front();
            c.open(login, password, false);
            c.command("DELETE " + imap::quote(mailbox));
            c.command("LOGOUT");
        } catch (const std::exception&) {
            // Best effort: a broken session already failed the case.
        }
    }

    std::set<std::uint64_t> present_uids(const Model& m) const {
        std::set<std::uint64_t> out;
        for (auto& x : m.msgs)
            if (auto it = uid.find(x.serial); it != uid.end()) out.insert(it->second);
        return out;
    }

    // The sequence number of `serial` in session k's view.
    std::size_t seq_of(int k, int serial) const {
        auto u = uid.at(serial);
        auto& v = s[k].view;
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v[i].uid == u) return i + 1;
        RC_FAIL("session " + std::to_string(k + 1) + " has no message with UID " +
                std::to_string(u));
    }

    // Applies one untagged response to session k's view. `record` is the model after the batch
    // being run: a message the server says is expunged must be gone there.
    void apply(int k, const Response& u, const Model& record, const std::string& during) {
        auto& v = s[k].view;
        auto who = "session " + std::to_string(k + 1) + ": ";
        if (u.name == "EXISTS") {
            if (*u.number < v.size())
                RC_FAIL(who + "EXISTS " + std::to_string(*u.number) + " below the " +
                        std::to_string(v.size()) + " messages it was told of, without EXPUNGE");
            v.resize(*u.number);
        } else if (u.name == "EXPUNGE") {
            if (during == "FETCH" || during == "STORE")
                RC_FAIL(who + "EXPUNGE while responding to " + during +
                        " (RFC 3501 §7.4.1): " + u.raw);
            if (*u.number < 1 || *u.number > v.size())
                RC_FAIL(who + "EXPUNGE " + std::to_string(*u.number) + " but it was told of " +
                        std::to_string(v.size()) + " messages");
            auto gone = v[*u.number - 1].uid;
            if (gone && present_uids(record).count(gone))
                RC_FAIL(who + "EXPUNGE " + std::to_string(*u.number) + " removes UID " +
                        std::to_string(gone) + ", which is not expunged");
            v.erase(v.begin() + static_cast<long>(*u.number - 1));
        } else if (u.name == "FETCH") {
            if (*u.number < 1 || *u.number > v.size())
                RC_FAIL(who + "FETCH for sequence number " + std::to_string(*u.number) +
                        " but it was told of " + std::to_string(v.size()) + " messages: " + u.raw);
            auto items = imap::fetch_items(u);
            auto& e = v[*u.number - 1];
            if (items.count("UID")) {
                auto got = items["UID"].number();
                if (e.uid && e.uid != got)
                    RC_FAIL(who + "message " + std::to_string(*u.number) + " was UID " +
                            std::to_string(e.uid) + ", now " + std::to_string(got));
                e.uid = got;
            }
            if (items.count("FLAGS")) e.flags = imap::flag_set(items["FLAGS"]);
        } else if (u.name == "BYE") {
            RC_FAIL(who + "server said BYE: " + u.raw);
        }
    }
};

std::string show_op(const Op& op, int k) {
    auto list = [&op] {
        std::string out;
        for (auto x : op.serials)
            out += (out.empty() ? "#" : ",#") + std::to_string(x);
        return out;
    };
    switch (op.kind) {
        case OpKind::Noop:
            return "NOOP";
        case OpKind::Idle:
            return "IDLE";
        case OpKind::Keyword:
            return "STORE " + list() + (op.add ? " +" : " -") + "FLAGS " + keyword(k);
        case OpKind::Fetch:
            return "FETCH " + list();
        case OpKind::Append:
            return "APPEND #" + std::to_string(op.serial) + " (" + show_flags(op.append_flags) +
                   ")";
        case OpKind::SysFlag:
            return "STORE " + list() + (op.add ? " +" : " -") + "FLAGS " + op.flag;
        case OpKind::Expunge:
            return "EXPUNGE";
    }
    return "";
}

using Command = rc::state::Command<Model, Sut>;

std::vector<int> gen_targets(const Model& m, int k) {
    std::vector<int> pool;
    for (auto& x : m.msgs)
        if (m.known[k].count(x.serial)) pool.push_back(x.serial);
    if (pool.empty()) return {};
    auto n = *rc::gen::inRange<std::size_t>(1, std::min<std::size_t>(pool.size(), 3) + 1);
    std::vector<int> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(*rc::gen::elementOf(pool));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// One operation per session, sent in `order`, responses read as they come.
struct Batch : Command {
    std::vector<Op> ops;
    std::vector<int> order;

    explicit Batch(const Model& m) {
        ops.resize(m.sessions);
        int exclusive = *rc::gen::inRange(-1, m.sessions);  // -1: none
        OpKind ex = *rc::gen::weightedOneOf<OpKind>({{4, rc::gen::just(OpKind::Append)},
                                                     {3, rc::gen::just(OpKind::SysFlag)},
                                                     {2, rc::gen::just(OpKind::Expunge)}});
        bool quiet_others = exclusive >= 0 && ex == OpKind::Expunge;
        for (int k = 0; k < m.sessions; ++k) {
            auto& op = ops[k];
            if (k == exclusive) {
                op.kind = ex;
                if (ex == OpKind::Append) {
                    op.serial = m.next_serial;
                    op.append_flags = *rc::gen::container<Flags>(
                        rc::gen::element<std::string>("\\Seen", "\\Flagged"));
                } else if (ex == OpKind::SysFlag) {
                    op.flag = *rc::gen::element<std::string>("\\Deleted", "\\Flagged", "\\Seen");
                    op.add = *rc::gen::arbitrary<bool>();
                    op.serials = gen_targets(m, k);
                    if (op.serials.empty()) op.kind = OpKind::Noop;
                }
                continue;
            }
            if (quiet_others) {
                op.kind = *rc::gen::element(OpKind::Noop, OpKind::Idle);
                continue;
            }
            op.kind = *rc::gen::weightedOneOf<OpKind>({{2, rc::gen::just(OpKind::Noop)},
                                                       {2, rc::gen::just(OpKind::Idle)},
                                                       {4, rc::gen::just(OpKind::Keyword)},
                                                       {2, rc::gen::just(OpKind::Fetch)}});
            op.add = *rc::gen::arbitrary<bool>();
            op.serials = gen_targets(m, k);
            if (op.serials.empty() && (op.kind == OpKind::Keyword || op.kind == OpKind::Fetch))
                op.kind = OpKind::Noop;
        }
        for (int k = 0; k < m.sessions; ++k)
            order.push_back(k);
        for (std::size_t i = order.size(); i > 1; --i)
            std::swap(order[i - 1], order[*rc::gen::inRange<std::size_t>(0, i)]);
    }

    void checkPreconditions(const Model& m) const override {
        RC_PRE(static_cast<int>(ops.size()) == m.sessions);
        for (std::size_t k = 0; k < ops.size(); ++k) {
            auto& op = ops[k];
            if (op.kind == OpKind::Append) RC_PRE(op.serial >= m.next_serial);
            if (op.kind == OpKind::Keyword || op.kind == OpKind::Fetch ||
                op.kind == OpKind::SysFlag) {
                RC_PRE(!op.serials.empty());
                for (auto x : op.serials)
                    RC_PRE(m.find(x) != nullptr && m.known[k].count(x) > 0);
            }
        }
    }

    void apply(Model& m) const override {
        for (std::size_t k = 0; k < ops.size(); ++k) {
            auto& op = ops[k];
            switch (op.kind) {
                case OpKind::Keyword:
                case OpKind::SysFlag: {
                    auto flag = op.kind == OpKind::Keyword ? keyword(static_cast<int>(k)) : op.flag;
                    for (auto x : op.serials)
                        op.add ? (void)m.find(x)->flags.insert(flag)
                               : (void)m.find(x)->flags.erase(flag);
                    break;
                }
                case OpKind::Append:
                    m.msgs.push_back({op.serial, op.append_flags});
                    m.next_serial = op.serial + 1;
                    break;
                case OpKind::Expunge:
                    std::erase_if(m.msgs,
                                  [](const RMsg& x) { return x.flags.count("\\Deleted") > 0; });
                    break;
                default:
                    break;
            }
        }
    }

    void run(const Model& m, Sut& sut) const override {
        auto after = nextState(m);
        std::map<int, std::string> tag;  // session -> tag of its pending command
        std::map<int, std::string> verb;
        std::set<int> idling;
        for (int k : order) {
            auto& op = ops[k];
            auto& c = sut.s[k].c;
            auto seqs = [&] {
                std::vector<std::uint64_t> n;
                for (auto x : op.serials)
                    n.push_back(sut.seq_of(k, x));
                return imap::make_set(n);
            };
            switch (op.kind) {
                case OpKind::Noop:
                    tag[k] = c.send_command("NOOP"), verb[k] = "NOOP";
                    break;
                case OpKind::Idle: {
                    tag[k] = c.send_command("IDLE");
                    verb[k] = "IDLE";
                    while (true) {
                        auto r = c.read_response();
                        if (r.tag == "+") break;
                        if (r.tag == tag[k]) RC_FAIL("IDLE refused: " + r.raw);
                        sut.apply(k, r, after, "IDLE");
                    }
                    idling.insert(k);
                    break;
                }
                case OpKind::Keyword:
                    tag[k] = c.send_command("STORE " + seqs() + (op.add ? " +" : " -") + "FLAGS (" +
                                            keyword(k) + ")");
                    verb[k] = "STORE";
                    break;
                case OpKind::SysFlag:
                    tag[k] = c.send_command("STORE " + seqs() + (op.add ? " +" : " -") + "FLAGS (" +
                                            op.flag + ")");
                    verb[k] = "STORE";
                    break;
                case OpKind::Fetch:
                    tag[k] = c.send_command("FETCH " + seqs() + " (UID FLAGS)");
                    verb[k] = "FETCH";
                    break;
                case OpKind::Expunge:
                    tag[k] = c.send_command("EXPUNGE"), verb[k] = "EXPUNGE";
                    break;
                case OpKind::Append: {
                    std::string text = "Message-Id: <m" + std::to_string(op.serial) + "." +
                                       sut.mailbox + "@props.millipost.test>\r\nSubject: multi " +
                                       std::to_string(op.serial) + "\r\n\r\nbody\r\n";
                    tag[k] = c.send_append(sut.mailbox, show_flags(op.append_flags), text);
                    verb[k] = "APPEND";
                    break;
                }
            }
        }
        // Read whatever arrives from the sessions with a command outstanding; IDLE sessions
        // are read too (their updates), and get DONE once the others are through.
        std::map<int, Reply> done;
        std::map<int, std::vector<Response>> untagged;
        auto pending = [&] {
            for (auto& [k, t] : tag)
                if (!idling.count(k) && !done.count(k)) return true;
            return false;
        };
        auto read_one = [&](int k) {
            auto r = sut.s[k].c.read_response();
            if (r.tag == tag[k]) {
                done[k].done = r;
                return;
            }
            if (r.tag != "*") RC_FAIL("session " + std::to_string(k + 1) + ": unexpected " + r.raw);
            sut.apply(k, r, after, verb[k]);
            untagged[k].push_back(r);
        };
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (pending()) {
            if (std::chrono::steady_clock::now() > deadline)
                RC_FAIL("batch did not complete in 20 s");
            std::vector<pollfd> fds;
            std::vector<int> who;
            for (auto& [k, t] : tag)
                if (!done.count(k)) {
                    fds.push_back({sut.s[k].c.fd(), POLLIN, 0});
                    who.push_back(k);
                }
            bool any = false;
            for (std::size_t i = 0; i < who.size(); ++i)
                if (sut.s[who[i]].c.readable(std::chrono::milliseconds(0)))
                    read_one(who[i]), any = true;
            if (!any) ::poll(fds.data(), fds.size(), 100);
        }
        // IDLE: give the server a moment to push updates, then DONE.
        for (int k : idling) {
            while (sut.s[k].c.readable(std::chrono::milliseconds(20)))
                read_one(k);
            sut.s[k].c.send_raw("DONE\r\n");
            while (!done.count(k))
                read_one(k);
        }
        for (auto& [k, r] : done) {
            if (r.done.name != "OK")
                RC_FAIL("session " + std::to_string(k + 1) + " " + show_op(ops[k], k) +
                        " failed: " + r.done.raw);
        }
        // Learn the UID of an appended message; check what a FETCH said about its own keyword.
        for (std::size_t k = 0; k < ops.size(); ++k) {
            auto& op = ops[k];
            if (op.kind == OpKind::Append) {
                auto w = done[static_cast<int>(k)].done.code_words();
                if (w.size() != 3 || w[0] != "APPENDUID")
                    RC_FAIL("APPEND without APPENDUID: " + done[static_cast<int>(k)].done.raw);
                auto u = std::stoull(w[2]);
                if (u <= sut.max_uid)
                    RC_FAIL("APPENDUID " + w[2] + " not above UID " + std::to_string(sut.max_uid));
                sut.max_uid = u;
                sut.uid[op.serial] = u;
            }
            if (op.kind == OpKind::Fetch) {
                for (auto& r : untagged[static_cast<int>(k)]) {
                    if (r.name != "FETCH") continue;
                    auto items = imap::fetch_items(r);
                    if (!items.count("UID") || !items.count("FLAGS")) continue;
                    auto u = items["UID"].number();
                    for (auto& x : after.msgs)
                        if (sut.uid.count(x.serial) && sut.uid.at(x.serial) == u) {
                            bool has =
                                imap::flag_set(items["FLAGS"]).count(keyword(static_cast<int>(k))) >
                                0;
                            if (has != (x.flags.count(keyword(static_cast<int>(k))) > 0))
                                RC_FAIL("session " + std::to_string(k + 1) +
                                        ": FETCH shows its own " + keyword(static_cast<int>(k)) +
                                        " wrong: " + r.raw);
                        }
                }
            }
        }
    }

    void show(std::ostream& os) const override {
        os << "batch:";
        for (int k : order)
            os << " [s" << k + 1 << " " << show_op(ops[k], k) << "]";
    }
};

// Every session NOOPs in turn; then its view must hold the record: the flags it was told must
// already be the record's, and a FETCH of everything must agree with the view and the record.
struct Checkpoint : Command {
    void apply(Model& m) const override {
        for (auto& k : m.known) {
            k.clear();
            for (auto& x : m.msgs)
                k.insert(x.serial);
        }
    }
    void run(const Model& m, Sut& sut) const override {
        std::vector<std::uint64_t> want;
        for (auto& x : m.msgs)
            want.push_back(sut.uid.at(x.serial));
        for (int k = 0; k < m.sessions; ++k) {
            auto who = "checkpoint, session " + std::to_string(k + 1) + ": ";
            auto r = sut.s[k].c.command("NOOP");
            for (auto& u : r.untagged)
                sut.apply(k, u, m, "NOOP");
            if (!r.ok()) RC_FAIL(who + "NOOP failed: " + r.done.raw);
            auto& v = sut.s[k].view;
            if (v.size() != m.msgs.size())
                RC_FAIL(who + "told of " + std::to_string(v.size()) + " messages, record has " +
                        std::to_string(m.msgs.size()));
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (v[i].uid && v[i].uid != want[i])
                    RC_FAIL(who + "message " + std::to_string(i + 1) + " is UID " +
                            std::to_string(v[i].uid) + ", record UID " + std::to_string(want[i]));
                if (v[i].flags && *v[i].flags != m.msgs[i].flags)
                    RC_FAIL(who + "was last told flags (" + show_flags(*v[i].flags) + ") for UID " +
                            std::to_string(want[i]) + ", record (" + show_flags(m.msgs[i].flags) +
                            "): a change was not announced");
            }
            if (v.empty()) continue;
            r = sut.s[k].c.command("FETCH 1:* (UID FLAGS)");
            if (!r.ok()) RC_FAIL(who + "FETCH failed: " + r.show());
            for (auto& u : r.untagged)
                sut.apply(k, u, m, "FETCH");
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (v[i].uid != want[i] || !v[i].flags || *v[i].flags != m.msgs[i].flags)
                    RC_FAIL(who + "after FETCH 1:*, message " + std::to_string(i + 1) + " is UID " +
                            std::to_string(v[i].uid) + " (" +
                            (v[i].flags ? show_flags(*v[i].flags) : "?") + "), record UID " +
                            std::to_string(want[i]) + " (" + show_flags(m.msgs[i].flags) + ")");
            }
        }
    }
    void show(std::ostream& os) const override { os << "checkpoint"; }
};

}  // namespace

void imap_multi_property() {
    Model initial;
    initial.sessions = *rc::gen::inRange(2, 5);
    initial.known.resize(initial.sessions);
    Sut sut(initial.sessions);
    auto commands = rc::state::gen::execOneOfWithArgs<Batch, Batch, Batch, Checkpoint>();
    auto sequence = *rc::gen::scale(imap_model_scale, rc::state::gen::commands(initial, commands));
    RC_TAG(std::to_string(initial.sessions) + " sessions");
    rc::state::runAll(sequence, initial, sut);
    // The end is a checkpoint too.
    Model final_state = initial;
    for (auto& c : sequence)
        c->apply(final_state);
    Checkpoint{}.run(final_state, sut);
}

}  // namespace millipost::props
