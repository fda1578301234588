// properties/pop3_model_test.cpp: a POP3 maildrop (RFC 1939) against a model: delivery over
// SMTP, the snapshot a session sees, deletion marks applied only at QUIT, stable unique ids,
// the maildrop lock, and persistence across a restart of the whole service.
//
// Each RapidCheck case starts a fresh service (temporary data directory, ephemeral ports), logs
// one POP3 session in and runs 1 to 101 commands (more as the run goes on). Every run prints its
// seed. On a failure RapidCheck prints the shrunk command sequence and a `reproduce` string;
// replay exactly that case with
//   RC_PARAMS="reproduce=<string>" ./pop3_model_test
// Other knobs: RC_PARAMS="seed=N max_success=N max_size=N" (RapidCheck doc/configuration.md).
#include "support/generators.h"
#include "support/model_check.h"
#include "support/test_service.h"
#include "support/wire_client.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace {

using namespace millipost;
using props::WireClient;

const std::string kLogin = "pat";
const std::string kPassword = "pat's password";
// Commands per case: 1 to kScale * size + 1, where RapidCheck's size grows from 0 to 99.
constexpr double kScale = 1.0;

// ---------------------------------------------------------------------------------------------
// Model

struct Msg {
    int serial = 0;    // the model's name for the message
    std::string text;  // as the sender wrote it (without the server's Received: field)
};

struct Pop3Model {
    std::vector<Msg> inbox;     // the user's INBOX on the server, in delivery order
    std::vector<int> snapshot;  // what the open session sees: message number i+1 is snapshot[i]
    std::set<int> deleted;      // serials marked by DELE in the open session
    int next_serial = 1;

    // The serial message number `n` names in the open session, unless it is out of range or
    // marked deleted.
    std::optional<int> target(std::size_t n) const {
        if (n < 1 || n > snapshot.size()) return std::nullopt;
        int serial = snapshot[n - 1];
        if (deleted.count(serial)) return std::nullopt;
        return serial;
    }
    const Msg& msg(int serial) const {
        return *std::find_if(inbox.begin(), inbox.end(),
                             [serial](const Msg& m) { return m.serial == serial; });
    }
    // A new session: it sees the INBOX as it is now, with nothing marked.
    void relogin() {
        snapshot.clear();
        for (auto& m : inbox)
            snapshot.push_back(m.serial);
        deleted.clear();
    }
};

// ---------------------------------------------------------------------------------------------
// System under test: one service, one user, one open POP3 session, and what was observed.

struct Pop3Sut {
    props::RunRecorder& rec;  // records every connection, checks it when its contract exists
    props::TestService server;
    store::UserId user = server.add_user(kLogin, kPassword);
    std::optional<WireClient> pop;
    std::map<int, std::string> stored;  // serial -> bytes the store holds (Received: + text)
    std::map<int, std::string> uidl;    // serial -> unique-id first seen for it

    explicit Pop3Sut(props::RunRecorder& r) : rec(r) { login(false); }

    // Connects and logs in. With `wait_for_lock`, "-ERR [IN-USE]" is retried for a while: the
    // server may not have noticed yet that the previous connection went away.
    void login(bool wait_for_lock) {
        pop.emplace(server.pop3_port(), rec.tap("pop3"));
        auto greeting = pop->read_pop3_status();
        RC_ASSERT(greeting.ok);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (true) {
            pop->send_line("USER " + kLogin);
            auto u = pop->read_pop3_status();
            RC_ASSERT(u.ok);
            pop->send_line("PASS " + kPassword);
            auto p = pop->read_pop3_status();
            if (p.ok) return;
            bool in_use = p.text.rfind("[IN-USE]", 0) == 0;
            if (!wait_for_lock || !in_use || std::chrono::steady_clock::now() > deadline)
                RC_FAIL("login refused: -ERR " + p.text);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    props::Pop3Status command(const std::string& line) {
        pop->send_line(line);
        return pop->read_pop3_status();
    }
};

std::string show_status(const props::Pop3Status& st) {
    return (st.ok ? "+OK " : "-ERR ") + st.text;
}

// "+OK n m": the status text must start with these words (RFC 1939 §5 defines them for STAT and
// single-message LIST/UIDL; more text after them is discouraged, not forbidden).
void expect_words(const props::Pop3Status& st, const std::vector<std::string>& words,
                  const std::string& what) {
    if (!st.ok) RC_FAIL(what + ": expected +OK, got " + show_status(st));
    auto got = props::split_words(st.text);
    if (got.size() < words.size() || !std::equal(words.begin(), words.end(), got.begin()))
        RC_FAIL(what + ": got \"" + show_status(st) + "\"");
}

void expect_err(const props::Pop3Status& st, const std::string& what) {
    if (st.ok) RC_FAIL(what + ": expected -ERR, got " + show_status(st));
}

// An RFC 1939 unique-id: 1 to 70 characters in 0x21..0x7E.
bool valid_uid(const std::string& uid) {
    return !uid.empty() && uid.size() <= 70 &&
           std::all_of(uid.begin(), uid.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// Records that message `serial` has `uid`: the same as in every earlier session, and no other
// message (present or gone) ever had it.
void observe_uid(Pop3Sut& sut, int serial, const std::string& uid) {
    if (!valid_uid(uid)) RC_FAIL("malformed unique-id \"" + uid + "\"");
    auto it = sut.uidl.find(serial);
    if (it != sut.uidl.end()) {
        if (it->second != uid)
            RC_FAIL("unique-id of message " + std::to_string(serial) + " changed from " +
                    it->second + " to " + uid);
        return;
    }
    for (auto& [other, u] : sut.uidl)
        if (u == uid)
            RC_FAIL("unique-id " + uid + " given to messages " + std::to_string(other) + " and " +
                    std::to_string(serial));
    sut.uidl[serial] = uid;
}

std::string listing(const Pop3Model& s, Pop3Sut& sut) {
    std::string out;
    for (std::size_t n = 1; n <= s.snapshot.size(); ++n)
        if (auto serial = s.target(n))
            out += std::to_string(n) + " " + std::to_string(sut.stored.at(*serial).size()) + "\r\n";
    return out;
}

void check_stat(const Pop3Model& s, Pop3Sut& sut) {
    std::size_t count = 0, size = 0;
    for (std::size_t n = 1; n <= s.snapshot.size(); ++n)
        if (auto serial = s.target(n)) ++count, size += sut.stored.at(*serial).size();
    expect_words(sut.command("STAT"), {std::to_string(count), std::to_string(size)}, "STAT");
}

void check_uidl(const Pop3Model& s, Pop3Sut& sut) {
    auto st = sut.command("UIDL");
    if (!st.ok) RC_FAIL("UIDL: " + show_status(st));
    auto body = sut.pop->read_pop3_multiline();
    std::vector<std::pair<std::size_t, int>> expected;  // message number, serial
    for (std::size_t n = 1; n <= s.snapshot.size(); ++n)
        if (auto serial = s.target(n)) expected.emplace_back(n, *serial);
    std::size_t i = 0, pos = 0;
    while (pos < body.size()) {
        auto crlf = body.find("\r\n", pos);
        auto words = props::split_words(body.substr(pos, crlf - pos));
        pos = crlf + 2;
        if (i >= expected.size() || words.size() != 2 ||
            words[0] != std::to_string(expected[i].first))
            RC_FAIL("UIDL listing line " + std::to_string(i + 1) + " unexpected in:\n" + body);
        observe_uid(sut, expected[i].second, words[1]);
        ++i;
    }
    if (i != expected.size()) RC_FAIL("UIDL listing is missing messages:\n" + body);
}

// After a new login: what the session shows and what the store holds agree with the model.
void check_new_session(const Pop3Model& s, Pop3Sut& sut) {
    auto& store = sut.server.store();
    auto msgs = store.messages(sut.user, sut.server.inbox(sut.user));
    if (msgs.size() != s.inbox.size())
        RC_FAIL("store holds " + std::to_string(msgs.size()) + " messages, model " +
                std::to_string(s.inbox.size()));
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        auto bytes = store.read_message(sut.user, sut.server.inbox(sut.user), msgs[i].uid);
        RC_ASSERT(bytes == sut.stored.at(s.inbox[i].serial));
    }
    check_stat(s, sut);
    check_uidl(s, sut);
}

// A message number to use in a command: mostly one that exists, sometimes 0 or past the end.
std::size_t gen_number(const Pop3Model& s) {
    auto size = s.snapshot.size();
    if (size == 0) return *rc::gen::inRange<std::size_t>(0, 3);
    return *rc::gen::weightedOneOf<std::size_t>({
        {6, rc::gen::inRange<std::size_t>(1, size + 1)},
        {1, rc::gen::element<std::size_t>(0, size + 1, size + 2)},
    });
}

using Pop3Command = rc::state::Command<Pop3Model, Pop3Sut>;

// ---------------------------------------------------------------------------------------------
// Commands

// A message arrives over SMTP. It enters the INBOX but not the open session's snapshot.
struct Deliver : Pop3Command {
    int serial;
    std::string text;

    explicit Deliver(const Pop3Model& s)
        : serial(s.next_serial),
          text(props::gen::make_message(
              "m" + std::to_string(s.next_serial) + "." +
                  std::to_string(*rc::gen::inRange<unsigned>(0, 1000000000u)),
              *props::gen::body_lines(12))) {}

    // Serials only grow, so Message-Ids stay unique when shrinking removes commands.
    void checkPreconditions(const Pop3Model& s) const override { RC_PRE(serial >= s.next_serial); }
    void apply(Pop3Model& s) const override {
        s.inbox.push_back({serial, text});
        s.next_serial = serial + 1;
    }

    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        WireClient smtp(sut.server.smtp_port(), sut.rec.tap("smtp"));
        auto expect = [&smtp](const std::string& line, int code) {
            if (!line.empty()) smtp.send_line(line);
            auto r = smtp.read_smtp_reply();
            if (r.code != code)
                RC_FAIL("SMTP \"" + line + "\": expected " + std::to_string(code) + ", got " +
                        std::to_string(r.code) + " " + r.text());
        };
        expect("", 220);
        expect("EHLO props.example", 250);
        expect("MAIL FROM:<sender@example.org>", 250);
        expect("RCPT TO:<" + kLogin + "@localhost>", 250);
        expect("DATA", 354);
        smtp.send(props::smtp_data_block(text));
        expect("", 250);
        expect("QUIT", 221);

        // The store now holds one more message, this one, behind a Received: field.
        auto& store = sut.server.store();
        auto inbox = sut.server.inbox(sut.user);
        auto msgs = store.messages(sut.user, inbox);
        RC_ASSERT(msgs.size() == s.inbox.size() + 1);
        auto newest = std::max_element(msgs.begin(), msgs.end(),
                                       [](auto& a, auto& b) { return a.uid < b.uid; });
        auto bytes = store.read_message(sut.user, inbox, newest->uid);
        RC_ASSERT(props::strip_received(bytes) == text);
        RC_ASSERT(newest->size == bytes.size());
        sut.stored[serial] = bytes;
    }

    void show(std::ostream& os) const override {
        os << "Deliver #" << serial << " \"" << props::gen::visible(text) << "\"";
    }
};

struct Stat : Pop3Command {
    void run(const Pop3Model& s, Pop3Sut& sut) const override { check_stat(s, sut); }
    void show(std::ostream& os) const override { os << "STAT"; }
};

struct List : Pop3Command {
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("LIST");
        if (!st.ok) RC_FAIL("LIST: " + show_status(st));
        RC_ASSERT(sut.pop->read_pop3_multiline() == listing(s, sut));
    }
    void show(std::ostream& os) const override { os << "LIST"; }
};

struct ListOne : Pop3Command {
    std::size_t n;
    explicit ListOne(const Pop3Model& s) : n(gen_number(s)) {}
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("LIST " + std::to_string(n));
        if (auto serial = s.target(n))
            expect_words(st, {std::to_string(n), std::to_string(sut.stored.at(*serial).size())},
                         "LIST " + std::to_string(n));
        else
            expect_err(st, "LIST " + std::to_string(n));
    }
    void show(std::ostream& os) const override { os << "LIST " << n; }
};

struct Uidl : Pop3Command {
    void run(const Pop3Model& s, Pop3Sut& sut) const override { check_uidl(s, sut); }
    void show(std::ostream& os) const override { os << "UIDL"; }
};

struct UidlOne : Pop3Command {
    std::size_t n;
    explicit UidlOne(const Pop3Model& s) : n(gen_number(s)) {}
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("UIDL " + std::to_string(n));
        auto serial = s.target(n);
        if (!serial) return expect_err(st, "UIDL " + std::to_string(n));
        expect_words(st, {std::to_string(n)}, "UIDL " + std::to_string(n));
        auto words = props::split_words(st.text);
        RC_ASSERT(words.size() == 2u);
        observe_uid(sut, *serial, words[1]);
    }
    void show(std::ostream& os) const override { os << "UIDL " << n; }
};

struct Retr : Pop3Command {
    std::size_t n;
    explicit Retr(const Pop3Model& s) : n(gen_number(s)) {}
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("RETR " + std::to_string(n));
        auto serial = s.target(n);
        if (!serial) return expect_err(st, "RETR " + std::to_string(n));
        if (!st.ok) RC_FAIL("RETR " + std::to_string(n) + ": " + show_status(st));
        auto body = sut.pop->read_pop3_multiline();
        RC_ASSERT(body == sut.stored.at(*serial));
        RC_ASSERT(props::strip_received(body) == s.msg(*serial).text);
    }
    void show(std::ostream& os) const override { os << "RETR " << n; }
};

struct Top : Pop3Command {
    std::size_t n, lines;
    explicit Top(const Pop3Model& s)
        : n(gen_number(s)), lines(*rc::gen::inRange<std::size_t>(0, 8)) {}
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto cmd = "TOP " + std::to_string(n) + " " + std::to_string(lines);
        auto st = sut.command(cmd);
        auto serial = s.target(n);
        if (!serial) return expect_err(st, cmd);
        if (!st.ok) RC_FAIL(cmd + ": " + show_status(st));
        auto body = sut.pop->read_pop3_multiline();
        RC_ASSERT(body == props::top_of(sut.stored.at(*serial), lines));
    }
    void show(std::ostream& os) const override { os << "TOP " << n << " " << lines; }
};

struct Dele : Pop3Command {
    std::size_t n;
    explicit Dele(const Pop3Model& s) : n(gen_number(s)) {}
    void apply(Pop3Model& s) const override {
        if (auto serial = s.target(n)) s.deleted.insert(*serial);
    }
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("DELE " + std::to_string(n));
        if (s.target(n)) {
            if (!st.ok) RC_FAIL("DELE " + std::to_string(n) + ": " + show_status(st));
        } else {
            expect_err(st, "DELE " + std::to_string(n));
        }
    }
    void show(std::ostream& os) const override { os << "DELE " << n; }
};

struct Rset : Pop3Command {
    void apply(Pop3Model& s) const override { s.deleted.clear(); }
    void run(const Pop3Model&, Pop3Sut& sut) const override {
        auto st = sut.command("RSET");
        if (!st.ok) RC_FAIL("RSET: " + show_status(st));
    }
    void show(std::ostream& os) const override { os << "RSET"; }
};

struct Noop : Pop3Command {
    void run(const Pop3Model&, Pop3Sut& sut) const override {
        auto st = sut.command("NOOP");
        if (!st.ok) RC_FAIL("NOOP: " + show_status(st));
    }
    void show(std::ostream& os) const override { os << "NOOP"; }
};

// QUIT enters UPDATE: marked messages go. Once the server has closed the connection the
// maildrop is free, so the next login must succeed at the first attempt.
struct Quit : Pop3Command {
    void apply(Pop3Model& s) const override {
        std::erase_if(s.inbox, [&s](const Msg& m) { return s.deleted.count(m.serial) > 0; });
        s.relogin();
    }
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        auto st = sut.command("QUIT");
        if (!st.ok) RC_FAIL("QUIT: " + show_status(st));
        RC_ASSERT(sut.pop->wait_closed());
        sut.pop.reset();
        sut.login(false);
        check_new_session(nextState(s), sut);
    }
    void show(std::ostream& os) const override { os << "QUIT, log in again"; }
};

// The client vanishes without QUIT: RFC 1939 §6 says no message is removed.
struct Drop : Pop3Command {
    void apply(Pop3Model& s) const override { s.relogin(); }
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        sut.pop.reset();
        sut.login(true);
        check_new_session(nextState(s), sut);
    }
    void show(std::ostream& os) const override { os << "close without QUIT, log in again"; }
};

// A second login to a locked maildrop is refused with the IN-USE response code (RFC 2449 §8.1.2)
// and disturbs nothing.
struct SecondSession : Pop3Command {
    void run(const Pop3Model&, Pop3Sut& sut) const override {
        WireClient other(sut.server.pop3_port(), sut.rec.tap("pop3"));
        RC_ASSERT(other.read_pop3_status().ok);
        other.send_line("USER " + kLogin);
        RC_ASSERT(other.read_pop3_status().ok);
        other.send_line("PASS " + kPassword);
        auto st = other.read_pop3_status();
        if (st.ok || st.text.rfind("[IN-USE]", 0) != 0)
            RC_FAIL("second login: expected -ERR [IN-USE], got " + show_status(st));
        other.send_line("QUIT");
        RC_ASSERT(other.read_pop3_status().ok);
        RC_ASSERT(other.wait_closed());
    }
    void show(std::ostream& os) const override { os << "second session logs in"; }
};

// The whole service stops and a new one starts on the same data directory: every acknowledged
// message is still there with its unique-id; marks of the dropped session are not applied.
// Half the restarts happen under the open session (shutdown interrupts it: its marks are not
// applied), half after it closed and the server drained.
struct Restart : Pop3Command {
    bool live = *rc::gen::arbitrary<bool>();
    void apply(Pop3Model& s) const override { s.relogin(); }
    void run(const Pop3Model& s, Pop3Sut& sut) const override {
        if (!live) sut.pop.reset();
        sut.server.restart(!live);
        sut.pop.reset();
        sut.login(false);
        check_new_session(nextState(s), sut);
    }
    void show(std::ostream& os) const override {
        os << "restart the service" << (live ? " under the open session" : "");
    }
};

}  // namespace

// Every connection (POP3 sessions and the SMTP deliveries) is recorded; each is checked after
// every command against its contract: smtp.contract, and pop3.contract as soon as that file
// exists (props::load_contract). A failing case's shrunk connections are saved under
// fixtures/regressions (support/model_check.h).
TEST(Pop3Model, MaildropFollowsTheModel) {
    props::check_model("pop3", {{"users", kLogin + "=" + kPassword}}, [](props::RunRecorder& rec) {
        Pop3Sut sut(rec);
        // Deliveries weigh three times, message access twice: a maildrop needs content.
        auto commands =
            rc::state::gen::execOneOfWithArgs<Deliver, Deliver, Deliver, Stat, List, ListOne, Uidl,
                                              UidlOne, Retr, Retr, Top, Dele, Dele, Rset, Noop,
                                              Quit, Drop, SecondSession, Restart>();
        auto sequence = *rc::gen::scale(kScale, rc::state::gen::commands(Pop3Model{}, commands));
        RC_TAG(props::gen::length_tag(sequence.size()));
        props::run_checked(sequence, Pop3Model{}, sut, rec);
    });
}
