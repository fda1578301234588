// properties/smtp_model_test.cpp: the SMTP (RFC 5321) session and transaction state machine
// against a model: greeting, MAIL with SIZE (RFC 1870) and parameters, RCPT to known, unknown and
// foreign recipients, DATA with dot-stuffed bodies and the size limit, RSET, NOOP, VRFY, unknown
// verbs, PIPELINING (RFC 2920), and after every DATA the store: each accepted recipient got
// exactly this message once and nobody else got anything.
//
// Each RapidCheck case starts a fresh service (temporary data directory, ephemeral ports,
// max_message_size 10000) with users alice, bob and carol, and runs 1 to 101 commands (more as
// the run goes on) on one connection; QUIT and reconnect is a command. Every run prints its
// seed. On a failure RapidCheck prints the shrunk command sequence and a `reproduce` string;
// replay exactly that case with
//   RC_PARAMS="reproduce=<string>" ./smtp_model_test
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
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace {

using namespace millipost;
using props::SmtpReply;
using props::WireClient;

constexpr std::size_t kMaxSize = 10000;
const std::vector<std::string> kUsers = {"alice", "bob", "carol"};
// Negative replies in one connection before the model asks for a reconnect: well below any
// sane per-session error limit (millipost closes after 20 syntax errors).
constexpr int kMaxNegatives = 12;
// Commands per case: 1 to kScale * size + 1, where RapidCheck's size grows from 0 to 99.
constexpr double kScale = 1.0;

// ---------------------------------------------------------------------------------------------
// Model

struct SmtpModel {
    bool greeted = false;         // HELO or EHLO accepted on this connection
    bool esmtp = false;           // ... and it was EHLO
    bool in_mail = false;         // MAIL accepted, transaction open
    std::set<std::string> rcpts;  // logins accepted by RCPT in this transaction
    int negatives = 0;            // 4xx/5xx replies on this connection
    std::map<std::string, int> delivered = {{"alice", 0}, {"bob", 0}, {"carol", 0}};
    int next_serial = 1;

    void reset_transaction() {
        in_mail = false;
        rcpts.clear();
    }
};

// ---------------------------------------------------------------------------------------------
// System under test

struct SmtpSut {
    props::RunRecorder& rec;
    props::TestService server{[](config::Config& c) { c.max_message_size = kMaxSize; }};
    std::map<std::string, store::UserId> users;
    std::optional<WireClient> smtp;

    explicit SmtpSut(props::RunRecorder& r) : rec(r) {
        for (auto& u : kUsers)
            users[u] = server.add_user(u, "password of " + u);
        connect();
    }

    // Every connection is recorded and checked against smtp.contract.
    void connect() {
        smtp.emplace(server.smtp_port(), rec.tap("smtp"));
        auto r = smtp->read_smtp_reply();
        if (r.code != 220) RC_FAIL("greeting: " + std::to_string(r.code) + " " + r.text());
    }

    // `stand_in`: `line` is deliberately outside the contract's grammar; the contract checker
    // sees this well-formed line of the same command instead (ContractTap::stand_in).
    SmtpReply command(const std::string& line, const std::string& stand_in = {}) {
        if (!stand_in.empty())
            if (auto* checker = rec.last_checker()) checker->stand_in(stand_in);
        smtp->send_line(line);
        return smtp->read_smtp_reply();
    }
};

std::string show_reply(const SmtpReply& r) {
    return std::to_string(r.code) + " " + r.text();
}

// RFC 3463: class "." subject "." detail, with 1 digit, 1-3 digits and 1-3 digits.
bool is_enhanced_code(std::string_view code, int cls) {
    auto digits = [&code](std::size_t min, std::size_t max) {
        std::size_t n = 0;
        while (n < code.size() && code[n] >= '0' && code[n] <= '9')
            ++n;
        if (n < min || n > max) return false;
        code.remove_prefix(n);
        return true;
    };
    auto dot = [&code] {
        if (code.empty() || code.front() != '.') return false;
        code.remove_prefix(1);
        return true;
    };
    if (code.empty() || code.front() != static_cast<char>('0' + cls)) return false;
    return digits(1, 1) && dot() && digits(1, 3) && dot() && digits(1, 3) && code.empty();
}

// RFC 2034: after EHLO, every 2xx/4xx/5xx reply line except the greeting and the EHLO/HELO reply
// starts with an enhanced status code whose class is the reply's first digit.
void check_enhanced(const SmtpReply& r, bool esmtp, const std::string& cmd) {
    int cls = r.code / 100;
    if (!esmtp || cls == 3) return;
    for (auto& line : r.lines)
        if (!is_enhanced_code(std::string_view(line).substr(0, line.find(' ')), cls))
            RC_FAIL(cmd + ": reply without enhanced status code: " + show_reply(r));
}

// Checks the reply code against the acceptable ones (and the enhanced code after EHLO).
void expect(const SmtpReply& r, std::initializer_list<int> codes, const std::string& cmd,
            bool esmtp) {
    if (std::find(codes.begin(), codes.end(), r.code) == codes.end()) {
        std::string want;
        for (int c : codes)
            want += (want.empty() ? "" : " or ") + std::to_string(c);
        RC_FAIL(cmd + ": expected " + want + ", got " + show_reply(r));
    }
    check_enhanced(r, esmtp, cmd);
}

// The store agrees with the model: every user holds as many messages as the model says, and
// each login in `fresh` has `text` as its newest message, behind the Received: field.
void check_store(const SmtpModel& s, SmtpSut& sut, const std::set<std::string>& fresh,
                 const std::string& text) {
    auto& store = sut.server.store();
    for (auto& [login, id] : sut.users) {
        auto inbox = sut.server.inbox(id);
        auto msgs = store.messages(id, inbox);
        if (static_cast<int>(msgs.size()) != s.delivered.at(login))
            RC_FAIL(login + " holds " + std::to_string(msgs.size()) + " messages, model says " +
                    std::to_string(s.delivered.at(login)));
        if (!fresh.count(login)) continue;
        auto newest = std::max_element(msgs.begin(), msgs.end(),
                                       [](auto& a, auto& b) { return a.uid < b.uid; });
        auto bytes = store.read_message(id, inbox, newest->uid);
        if (props::strip_received(bytes) != text)
            RC_FAIL(login + " got other bytes than were sent: \"" + props::gen::visible(bytes) +
                    "\"");
    }
}

// A recipient as the client writes it, and what it resolves to.
struct Recipient {
    enum class Kind { Known, Unknown, Foreign, Malformed } kind = Kind::Known;
    std::string address;  // inside RCPT TO:<...> (Malformed: the whole argument)
    std::string login;    // Known: the user it reaches
};

Recipient gen_recipient() {
    using K = Recipient::Kind;
    auto kind = *rc::gen::weightedElement<K>(
        {{6, K::Known}, {2, K::Unknown}, {2, K::Foreign}, {1, K::Malformed}});
    Recipient r;
    r.kind = kind;
    switch (kind) {
        case K::Known:
            r.login = *rc::gen::elementOf(kUsers);
            // Domains are case-insensitive (RFC 5321 §2.4).
            r.address = r.login + "@" +
                        *rc::gen::element<std::string>("localhost", "LOCALHOST", "LocalHost");
            break;
        case K::Unknown:
            r.address = *rc::gen::element<std::string>("nobody", "mallory", "dave", "alice.x") +
                        "@localhost";
            break;
        case K::Foreign:
            r.address = *rc::gen::elementOf(kUsers) + "@" +
                        *rc::gen::element<std::string>("example.org", "example.net");
            break;
        case K::Malformed:
            r.address = *rc::gen::element<std::string>("TO:alice@localhost", "TO:<alice@>",
                                                       "TO:<a..b@localhost>", "TO <bob@localhost>");
            break;
    }
    return r;
}

std::string rcpt_line(const Recipient& r) {
    return r.kind == Recipient::Kind::Malformed ? "RCPT " + r.address
                                                : "RCPT TO:<" + r.address + ">";
}

// What the contract checker sees instead of a malformed RCPT (empty: the line itself).
std::string rcpt_stand_in(const Recipient& r) {
    return r.kind == Recipient::Kind::Malformed ? "RCPT TO:<alice@localhost>" : "";
}

// The reply a RCPT gets inside a transaction, by the kind of its recipient.
int rcpt_code(const Recipient& r) {
    switch (r.kind) {
        case Recipient::Kind::Known:
            return 250;
        case Recipient::Kind::Unknown:
            return 550;  // RFC 5321 §3.3: mailbox unavailable, 5.1.1 bad destination mailbox
        case Recipient::Kind::Foreign:
            return 550;  // relaying denied: RFC 5321 §4.3.2 lists no 554 for RCPT
        case Recipient::Kind::Malformed:
            return 501;
    }
    return 0;
}

using SmtpCommand = rc::state::Command<SmtpModel, SmtpSut>;

// Commands other than QUIT+reconnect stop once a connection has had its share of errors.
struct Bounded : SmtpCommand {
    void checkPreconditions(const SmtpModel& s) const override {
        RC_PRE(s.negatives < kMaxNegatives);
    }
};

// ---------------------------------------------------------------------------------------------
// Commands

struct Helo : Bounded {
    bool ehlo = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
    void apply(SmtpModel& s) const override {
        s.greeted = true;
        s.esmtp = ehlo;
        s.reset_transaction();  // RFC 5321 §4.1.4: EHLO/HELO reset the state like RSET
    }
    void run(const SmtpModel&, SmtpSut& sut) const override {
        auto r = sut.command(ehlo ? "EHLO client.example" : "HELO client.example");
        expect(r, {250}, ehlo ? "EHLO" : "HELO", false);
        if (!ehlo) return;
        // The EHLO keywords (RFC 5321 §4.1.1.1): our SIZE limit and PIPELINING must be there.
        std::set<std::string> keywords;
        for (std::size_t i = 1; i < r.lines.size(); ++i) {
            auto kw = r.lines[i];
            std::transform(kw.begin(), kw.end(), kw.begin(),
                           [](unsigned char c) { return std::toupper(c); });
            keywords.insert(kw);
        }
        RC_ASSERT(keywords.count("PIPELINING") == 1u);
        RC_ASSERT(keywords.count("SIZE " + std::to_string(kMaxSize)) == 1u);
    }
    void show(std::ostream& os) const override { os << (ehlo ? "EHLO" : "HELO"); }
};

struct Mail : Bounded {
    enum class Kind { Plain, Size, Body8, TooBig, BadSizeValue, UnknownParam, Malformed };
    Kind kind;
    std::string line;

    explicit Mail(const SmtpModel& s) {
        // ESMTP parameters only after EHLO (RFC 5321 §4.1.1.2).
        kind = s.esmtp ? *rc::gen::weightedElement<Kind>({{4, Kind::Plain},
                                                          {2, Kind::Size},
                                                          {1, Kind::Body8},
                                                          {1, Kind::TooBig},
                                                          {1, Kind::BadSizeValue},
                                                          {1, Kind::UnknownParam},
                                                          {1, Kind::Malformed}})
                       : *rc::gen::weightedElement<Kind>({{5, Kind::Plain}, {1, Kind::Malformed}});
        auto from = *rc::gen::element<std::string>("sender@example.org", "", "x.y@[127.0.0.1]");
        line = "MAIL FROM:<" + from + ">";
        switch (kind) {
            case Kind::Plain:
                break;
            case Kind::Size:
                line += " SIZE=" + std::to_string(*rc::gen::inRange<std::size_t>(0, kMaxSize + 1));
                break;
            case Kind::Body8:
                line += " BODY=8BITMIME";
                break;
            case Kind::TooBig:
                line += " SIZE=" + std::to_string(*rc::gen::element<std::size_t>(
                                       kMaxSize + 1, kMaxSize * 2, 99999999999ull));
                break;
            case Kind::BadSizeValue:
                line += " SIZE=" + *rc::gen::element<std::string>("", "ten", "-1", "1k");
                break;
            case Kind::UnknownParam:
                line += " " + *rc::gen::element<std::string>("XFOO=1", "RET=HDRS", "AUTH=<>");
                break;
            case Kind::Malformed:
                line = *rc::gen::element<std::string>(
                    "MAIL FROM:sender@example.org", "MAIL FROM:<sender@example.org",
                    "MAIL TO:<sender@example.org>", "MAIL FROM:<a..b@example.org>",
                    "MAIL FROM:<sender@-example.org>");
                break;
        }
    }

    void checkPreconditions(const SmtpModel& s) const override {
        Bounded::checkPreconditions(s);
        // Parameters were generated for an EHLO session; a shrink that removed the EHLO must
        // not keep them (the contract rightly blames a client that uses unadvertised ones).
        RC_PRE(s.esmtp || kind == Kind::Plain || kind == Kind::Malformed);
    }

    bool state_ok(const SmtpModel& s) const { return s.greeted && !s.in_mail; }
    bool accepted(const SmtpModel& s) const {
        return state_ok(s) && (kind == Kind::Plain || kind == Kind::Size || kind == Kind::Body8);
    }

    void apply(SmtpModel& s) const override {
        if (accepted(s)) {
            s.in_mail = true;
            s.rcpts.clear();
        } else {
            ++s.negatives;
        }
    }

    void run(const SmtpModel& s, SmtpSut& sut) const override {
        // Deliberately outside the contract: bad syntax, and parameters of extensions the server
        // does not advertise (RET=, AUTH=, XFOO=), which the contract blames on the client.
        bool ill_formed =
            kind == Kind::Malformed || kind == Kind::BadSizeValue || kind == Kind::UnknownParam;
        auto r = sut.command(line, ill_formed ? "MAIL FROM:<sender@example.org>" : "");
        // A parameter or syntax error with the session in the wrong state may be reported as
        // either: RFC 5321 does not order the checks.
        int param_code = kind == Kind::TooBig         ? 552  // RFC 1870 §6.1
                         : kind == Kind::BadSizeValue ? 501
                         : kind == Kind::UnknownParam ? 555  // RFC 5321 §4.1.1.11
                         : kind == Kind::Malformed    ? 501
                                                      : 0;
        if (accepted(s))
            expect(r, {250}, line, s.esmtp);
        else if (state_ok(s))
            expect(r, {param_code}, line, s.esmtp);
        else if (param_code)
            expect(r, {503, param_code}, line, s.esmtp);
        else
            expect(r, {503}, line, s.esmtp);  // RFC 5321 §4.1.4: out of sequence
    }

    void show(std::ostream& os) const override { os << line; }
};

struct Rcpt : Bounded {
    Recipient rcpt = gen_recipient();
    void apply(SmtpModel& s) const override {
        if (s.in_mail && rcpt.kind == Recipient::Kind::Known)
            s.rcpts.insert(rcpt.login);
        else
            ++s.negatives;
    }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        auto line = rcpt_line(rcpt);
        auto r = sut.command(line, rcpt_stand_in(rcpt));
        if (s.in_mail)
            expect(r, {rcpt_code(rcpt)}, line, s.esmtp);
        else if (rcpt.kind == Recipient::Kind::Malformed)
            expect(r, {503, 501}, line, s.esmtp);
        else
            expect(r, {503}, line, s.esmtp);
    }
    void show(std::ostream& os) const override { os << rcpt_line(rcpt); }
};

// The message a DATA command sends: ordinary text, exactly the size limit, or over it.
struct Body {
    enum class Kind { Text, AtLimit, OverLimit } kind = Kind::Text;
    std::string text;
};

Body gen_body(int serial) {
    auto id = "s" + std::to_string(serial) + "." +
              std::to_string(*rc::gen::inRange<unsigned>(0, 1000000000u));
    Body b;
    b.kind = *rc::gen::weightedElement<Body::Kind>(
        {{8, Body::Kind::Text}, {1, Body::Kind::AtLimit}, {1, Body::Kind::OverLimit}});
    switch (b.kind) {
        case Body::Kind::Text:
            b.text = props::gen::make_message(id, *props::gen::body_lines(15));
            break;
        case Body::Kind::AtLimit:
            b.text = props::gen::make_message_of_size(id, kMaxSize);
            break;
        case Body::Kind::OverLimit:
            b.text = props::gen::make_message_of_size(
                id, kMaxSize + *rc::gen::inRange<std::size_t>(1, 3000));
            break;
    }
    return b;
}

// After 354: sends the message and expects the final reply; then the store must agree with
// `after`, the model once the command is done, and each login in `rcpts` must have got the
// message unless it was over the limit.
void finish_data(const SmtpModel& after, SmtpSut& sut, const std::set<std::string>& rcpts,
                 const Body& body, const std::string& cmd) {
    sut.smtp->send(props::smtp_data_block(body.text));
    auto r = sut.smtp->read_smtp_reply();
    auto what = cmd + " (" + std::to_string(body.text.size()) + " bytes)";
    bool over = body.kind == Body::Kind::OverLimit;
    // RFC 1870 §6.1: 552 for a message over the fixed limit.
    expect(r, {over ? 552 : 250}, what, after.esmtp);
    check_store(after, sut, over ? std::set<std::string>{} : rcpts, body.text);
}

void apply_data(SmtpModel& s, const Body& body) {
    if (!s.in_mail || s.rcpts.empty()) {
        ++s.negatives;
        return;
    }
    if (body.kind == Body::Kind::OverLimit)
        ++s.negatives;
    else
        for (auto& login : s.rcpts)
            ++s.delivered[login];
    s.reset_transaction();  // RFC 5321 §4.1.1.4: the buffers are cleared either way
}

struct Data : Bounded {
    int serial;
    Body body;
    explicit Data(const SmtpModel& s) : serial(s.next_serial), body(gen_body(s.next_serial)) {}
    void checkPreconditions(const SmtpModel& s) const override {
        Bounded::checkPreconditions(s);
        RC_PRE(serial >= s.next_serial);
    }
    void apply(SmtpModel& s) const override {
        apply_data(s, body);
        s.next_serial = serial + 1;
    }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        auto r = sut.command("DATA");
        if (!s.in_mail) return expect(r, {503}, "DATA", s.esmtp);
        // RFC 5321 §3.3: without accepted recipients 503 or 554.
        if (s.rcpts.empty()) return expect(r, {503, 554}, "DATA", s.esmtp);
        expect(r, {354}, "DATA", s.esmtp);
        finish_data(nextState(s), sut, s.rcpts, body, "DATA");
    }
    void show(std::ostream& os) const override {
        os << "DATA \"" << props::gen::visible(body.text) << "\"";
    }
};

struct Rset : Bounded {
    void apply(SmtpModel& s) const override { s.reset_transaction(); }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        expect(sut.command("RSET"), {250}, "RSET", s.esmtp);
    }
    void show(std::ostream& os) const override { os << "RSET"; }
};

struct Noop : Bounded {
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        expect(sut.command("NOOP"), {250}, "NOOP", s.esmtp);
    }
    void show(std::ostream& os) const override { os << "NOOP"; }
};

struct Vrfy : Bounded {
    std::string who = *rc::gen::element<std::string>("alice", "nobody", "bob@localhost");
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        // 252: cannot verify, will accept and attempt delivery (RFC 5321 §3.5.3).
        // RFC 5321's VRFY argument is a String (an atom or quoted string): "bob@localhost" is
        // not one, yet servers take it; the contract sees "VRFY bob".
        auto stand_in = who.find('@') != std::string::npos ? "VRFY bob" : "";
        expect(sut.command("VRFY " + who, stand_in), {252}, "VRFY " + who, s.esmtp);
    }
    void show(std::ostream& os) const override { os << "VRFY " << who; }
};

struct Unknown : Bounded {
    std::string verb = "X" + *rc::gen::container<std::string>(
                                 *rc::gen::inRange<std::size_t>(2, 8),
                                 rc::gen::elementOf(std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZ")));
    void apply(SmtpModel& s) const override { ++s.negatives; }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        expect(sut.command(verb, "NOOP"), {500}, verb, s.esmtp);
    }
    void show(std::ostream& os) const override { os << verb; }
};

// QUIT, the server closes, and a new connection starts from scratch.
struct Reconnect : SmtpCommand {
    void apply(SmtpModel& s) const override {
        s.greeted = s.esmtp = false;
        s.reset_transaction();
        s.negatives = 0;
    }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        expect(sut.command("QUIT"), {221}, "QUIT", s.esmtp);
        RC_ASSERT(sut.smtp->wait_closed());
        sut.connect();
    }
    void show(std::ostream& os) const override { os << "QUIT, connect again"; }
};

// RFC 2920: a group of RSET, MAIL and RCPT commands (and NOOP, only last) written at once; the
// replies come in order and each is the one the command would get alone in the state the
// commands before it left.
struct PipelinedGroup : Bounded {
    struct Step {
        enum class Kind { Rset, Mail, Rcpt, Noop } kind;
        Recipient rcpt;  // Rcpt
    };
    std::vector<Step> steps;

    PipelinedGroup() {
        using K = Step::Kind;
        auto n = *rc::gen::inRange<std::size_t>(2, 6);
        for (std::size_t i = 0; i < n; ++i) {
            auto kind = *rc::gen::weightedElement<K>({{1, K::Rset}, {2, K::Mail}, {3, K::Rcpt}});
            steps.push_back({kind, kind == K::Rcpt ? gen_recipient() : Recipient{}});
        }
        if (*rc::gen::arbitrary<bool>()) steps.push_back({K::Noop, {}});
    }
    static std::string line(const Step& st) {
        switch (st.kind) {
            case Step::Kind::Rset:
                return "RSET";
            case Step::Kind::Mail:
                return "MAIL FROM:<group@example.org>";
            case Step::Kind::Rcpt:
                return rcpt_line(st.rcpt);
            case Step::Kind::Noop:
                return "NOOP";
        }
        return {};
    }
    // The reply codes allowed for step `st` in `s`, and `s` advanced past it.
    static std::vector<int> step(SmtpModel& s, const Step& st) {
        switch (st.kind) {
            case Step::Kind::Rset:
                s.reset_transaction();
                return {250};
            case Step::Kind::Noop:
                return {250};
            case Step::Kind::Mail:
                if (!s.greeted || s.in_mail) return ++s.negatives, std::vector<int>{503};
                s.in_mail = true;
                s.rcpts.clear();
                return {250};
            case Step::Kind::Rcpt:
                if (!s.in_mail)
                    return ++s.negatives, st.rcpt.kind == Recipient::Kind::Malformed
                                              ? std::vector<int>{503, 501}
                                              : std::vector<int>{503};
                if (st.rcpt.kind == Recipient::Kind::Known) {
                    s.rcpts.insert(st.rcpt.login);
                    return {250};
                }
                ++s.negatives;
                return {rcpt_code(st.rcpt)};
        }
        return {};
    }
    void checkPreconditions(const SmtpModel& s) const override {
        Bounded::checkPreconditions(s);
        RC_PRE(s.esmtp);  // PIPELINING is an EHLO keyword
    }
    void apply(SmtpModel& s) const override {
        for (auto& st : steps)
            step(s, st);
    }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        std::string group, stand_in;
        for (auto& st : steps) {
            group += line(st) + "\r\n";
            auto alt = st.kind == Step::Kind::Rcpt ? rcpt_stand_in(st.rcpt) : "";
            stand_in += (alt.empty() ? line(st) : alt) + "\r\n";
        }
        if (stand_in != group)
            if (auto* checker = sut.rec.last_checker())
                checker->stand_in(stand_in.substr(0, stand_in.size() - 2));
        sut.smtp->send(group);
        auto state = s;
        for (auto& st : steps) {
            auto codes = step(state, st);
            auto r = sut.smtp->read_smtp_reply();
            if (std::find(codes.begin(), codes.end(), r.code) == codes.end())
                RC_FAIL("pipelined " + line(st) + ": got " + show_reply(r));
            check_enhanced(r, s.esmtp, "pipelined " + line(st));
        }
    }
    void show(std::ostream& os) const override {
        os << "pipelined group:";
        for (auto& st : steps)
            os << " " << line(st) << ";";
    }
};

// RFC 2920: MAIL, two RCPTs and DATA in one write; the replies come in order, and the body
// follows only after 354.
struct Pipeline : Bounded {
    int serial;
    std::string from = "pipe@example.org";
    Recipient r1 = gen_recipient(), r2 = gen_recipient();
    Body body;

    explicit Pipeline(const SmtpModel& s) : serial(s.next_serial), body(gen_body(s.next_serial)) {}

    void checkPreconditions(const SmtpModel& s) const override {
        Bounded::checkPreconditions(s);
        RC_PRE(s.esmtp && !s.in_mail && serial >= s.next_serial);
    }
    void apply(SmtpModel& s) const override {
        s.in_mail = true;
        s.rcpts.clear();
        for (auto* r : {&r1, &r2})
            if (r->kind == Recipient::Kind::Known)
                s.rcpts.insert(r->login);
            else
                ++s.negatives;
        apply_data(s, body);
        s.next_serial = serial + 1;
    }
    void run(const SmtpModel& s, SmtpSut& sut) const override {
        auto group = [this](const std::string& a, const std::string& b) {
            return "MAIL FROM:<" + from + ">\r\n" + a + "\r\n" + b + "\r\nDATA";
        };
        auto stand_in = [](const Recipient& r) {
            auto alt = rcpt_stand_in(r);
            return alt.empty() ? rcpt_line(r) : alt;
        };
        if (r1.kind == Recipient::Kind::Malformed || r2.kind == Recipient::Kind::Malformed)
            if (auto* checker = sut.rec.last_checker())
                checker->stand_in(group(stand_in(r1), stand_in(r2)));
        sut.smtp->send(group(rcpt_line(r1), rcpt_line(r2)) + "\r\n");
        expect(sut.smtp->read_smtp_reply(), {250}, "pipelined MAIL", s.esmtp);
        std::set<std::string> rcpts;
        for (auto* r : {&r1, &r2}) {
            expect(sut.smtp->read_smtp_reply(), {rcpt_code(*r)}, "pipelined " + rcpt_line(*r),
                   s.esmtp);
            if (r->kind == Recipient::Kind::Known) rcpts.insert(r->login);
        }
        auto data = sut.smtp->read_smtp_reply();
        if (rcpts.empty()) return expect(data, {503, 554}, "pipelined DATA", s.esmtp);
        expect(data, {354}, "pipelined DATA", s.esmtp);
        finish_data(nextState(s), sut, rcpts, body, "pipelined DATA");
    }
    void show(std::ostream& os) const override {
        os << "pipelined MAIL, " << rcpt_line(r1) << ", " << rcpt_line(r2) << ", DATA \""
           << props::gen::visible(body.text) << "\"";
    }
};

template <class C>
std::pair<std::size_t, rc::Gen<std::shared_ptr<const SmtpCommand>>> weighted(std::size_t weight,
                                                                             const SmtpModel& s) {
    return {weight, rc::state::gen::execOneOfWithArgs<C>()(s)};
}

// The next command, weighted by the state so that most are in sequence (a session greets,
// opens a transaction, adds recipients, sends data) while every command still appears out of
// sequence now and then.
rc::Gen<std::shared_ptr<const SmtpCommand>> next_command(const SmtpModel& s) {
    std::size_t helo = 1, mail = 1, pipe = 0, rcpt = 1, data = 1;
    if (!s.greeted)
        helo = 8;
    else if (!s.in_mail)
        mail = 6, pipe = s.esmtp ? 4 : 0;
    else
        rcpt = 6, data = s.rcpts.empty() ? 1 : 5;
    return rc::gen::weightedOneOf<std::shared_ptr<const SmtpCommand>>({
        weighted<Helo>(helo, s),
        weighted<Mail>(mail, s),
        weighted<Pipeline>(pipe, s),
        weighted<PipelinedGroup>(s.esmtp ? 2 : 0, s),
        weighted<Rcpt>(rcpt, s),
        weighted<Data>(data, s),
        weighted<Rset>(1, s),
        weighted<Noop>(1, s),
        weighted<Vrfy>(1, s),
        weighted<Unknown>(1, s),
        weighted<Reconnect>(1, s),
    });
}

}  // namespace

// Every connection is also checked against smtp.contract after each command; a failing case's
// shrunk connections are saved under fixtures/regressions (support/model_check.h).
TEST(SmtpModel, TransactionsFollowTheModel) {
    std::string users;
    for (auto& u : kUsers)
        users += (users.empty() ? "" : "; ") + u + "=password of " + u;
    props::check_model("smtp", {{"users", users}, {"max-message-size", std::to_string(kMaxSize)}},
                       [](props::RunRecorder& rec) {
                           SmtpSut sut(rec);
                           auto sequence = *rc::gen::scale(
                               kScale, rc::state::gen::commands(SmtpModel{}, next_command));
                           RC_TAG(props::gen::length_tag(sequence.size()));
                           props::run_checked(sequence, SmtpModel{}, sut, rec);
                       });
}
