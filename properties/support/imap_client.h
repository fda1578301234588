// support/imap_client.h: the property tests' own IMAP client: tagged commands, responses read
// with their literals, and a small reader for the untagged data the models check (EXISTS,
// EXPUNGE, FETCH, SEARCH, STATUS, response codes). Written from RFC 3501/9051, 4315 (UIDPLUS),
// 7162 (CONDSTORE) and 6851 (MOVE) alone; it shares no parser or writer with the server
// (design.md, "Independence of the oracle"), nor with wire_client (a socket of its own, because
// IMAP literals need exact byte counts and the multi-session model needs to poll many sessions).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::contracts {
class Checker;
}

namespace millipost::props::imap {

// The peer broke the wire format, closed early or did not answer in time.
class ImapError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The traffic broke imap.contract (properties/contracts/), whoever's fault it was.
class ContractBreach : public ImapError {
  public:
    using ImapError::ImapError;
};

// A parsed value of response data: an atom (also numbers and NIL), a string (quoted or literal),
// or a parenthesized list.
struct Value {
    enum Kind { Atom, String, List } kind = Atom;
    std::string text;          // Atom, String
    std::vector<Value> items;  // List

    bool is_atom(std::string_view a) const;  // case-insensitive
    std::uint64_t number() const;            // throws ImapError when not a number atom
    std::string show() const;
};

// One response (RFC 3501 §7): `tag` is "*", "+" or the command's tag. For untagged data with a
// leading number ("* 3 EXISTS") `number` holds it. `name` is upper-cased (OK, EXISTS, FETCH...).
// For OK/NO/BAD/BYE/PREAUTH, `code` is the response code without brackets ("APPENDUID 5 3") and
// `text` the human text; otherwise `data` holds the parsed values after the name.
struct Response {
    std::string tag;
    std::optional<std::uint64_t> number;
    std::string name;
    std::string code;
    std::string text;
    std::vector<Value> data;
    std::string raw;  // the whole response, literals included, for failure messages

    bool tagged() const { return tag != "*" && tag != "+"; }
    bool is_status() const {
        return name == "OK" || name == "NO" || name == "BAD" || name == "BYE";
    }
    std::vector<std::string> code_words() const;
};

// The server's answer to one command: the untagged responses in order and the tagged one.
struct Reply {
    std::vector<Response> untagged;
    Response done;
    bool ok() const { return done.name == "OK"; }
    std::string show() const;  // the raw text, for failure messages
};

// Parses one whole response (as read by Client::read_response, literals inline).
Response parse_response(std::string raw);

// The attributes of one FETCH response, keys upper-cased ("UID", "FLAGS", "BODY[]"...).
using FetchItems = std::map<std::string, Value>;
FetchItems fetch_items(const Response& r);
// The flags of a FLAGS list, \Recent left out (it is per session and the models do not track it).
std::set<std::string> flag_set(const Value& list);

// A sequence set "1,3:5" expanded (no "*"); throws on a malformed set.
std::vector<std::uint64_t> expand_set(std::string_view set);
// Numbers written compactly as a set ("1:3,7").
std::string make_set(std::vector<std::uint64_t> numbers);

// An IMAP string for `s`: a quoted string when it can be one, else a synchronizing literal is
// not usable inline, so callers pass only atoms and plain text here.
std::string quote(std::string_view s);

struct Endpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 143;
};

class Client {
  public:
    static constexpr std::chrono::milliseconds kTimeout{10000};

    // Connects; throws ImapError when that fails. Reads nothing.
    explicit Client(const Endpoint& at, std::chrono::milliseconds timeout = kTimeout);
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Greeting, LOGIN, then ENABLE CONDSTORE when `condstore`. Throws ImapError on refusal.
    void open(const std::string& login, const std::string& password, bool condstore);
    // Capabilities seen after login (upper-cased).
    const std::set<std::string>& capabilities() const { return caps_; }

    // Sends "TAG command\r\n" and returns the tag. A command with a literal is sent by
    // `send_append` instead.
    std::string send_command(const std::string& command);
    // Sends `APPEND mailbox (flags) {n}` waiting for the continuation, then the message.
    std::string send_append(const std::string& mailbox, const std::string& flags,
                            const std::string& message);
    // Reads responses until the tagged completion of `tag`.
    Reply read_reply(const std::string& tag);
    // send_command + read_reply.
    Reply command(const std::string& command) { return read_reply(send_command(command)); }

    // One complete response, literals included. Waits up to the timeout.
    Response read_response();
    // Whether a whole or partial response is available within `wait` (nothing is consumed).
    bool readable(std::chrono::milliseconds wait);
    void send_raw(std::string_view bytes);
    int fd() const { return fd_; }
    void close();

  private:
    void fill();
    std::string read_line();

    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::string buf_;
    int next_tag_ = 1;
    std::set<std::string> caps_;
    std::unique_ptr<contracts::Checker> checker_;
    std::string breach_;  // the checker's first breach, as text; empty while none
    void judge(bool from_client, std::string_view bytes);
};

}  // namespace millipost::props::imap
