// proto/imap/parser.h: incremental IMAP4rev2/IMAP4rev1 command parser (RFC 9051 §9, RFC 3501 §9)
// with LITERAL+/LITERAL- (RFC 7888) and BINARY literal8 (RFC 3516). Pure: no I/O.
//
// The parser turns the client's byte stream into `Command`s: a tag, an upper-cased name and a
// tree of generic arguments. It knows the lexical grammar (atoms, quoted strings, literals,
// parenthesised lists, FETCH sections) but not what each command means; the interpreters in
// args.h, fetch.h, search.h and list.h give the arguments their meaning.
//
// FETCH sections. In FETCH and UID FETCH (and only there), an atom may carry one bracketed
// section: `BODY.PEEK[HEADER.FIELDS (From To)]<0.100>` is one Atom node with
//   text = "BODY.PEEK", section = true, items = {Atom "HEADER.FIELDS", List{From, To}},
//   suffix = "<0.100>".
// The bracket contents are tokenised like any arguments (so header names may be quoted or even
// literals). Everywhere else '[' and ']' are ordinary ASTRING-CHARs, so a mailbox named
// `[Gmail]/Sent` stays one atom.
//
// Leniencies, each harmless to the stream's framing: runs of spaces count as one separator
// (also after '(' and before ')' and at the end of a line), and a bare LF ends a line as CRLF
// does (Dovecot does the same). A CR not followed by LF is an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::imap {

// Default limits (see Limits). Each has a test in parser_test.cpp that crosses it.
// Command text per command, literal data excluded, CRLFs included. RFC 7162 §4 asks servers to
// accept at least 8192 octets; Dovecot's imap_max_line_length is 64 KiB.
inline constexpr std::size_t kDefaultMaxLine = 64 * 1024;
// One literal (an APPENDed message is one literal).
inline constexpr std::uint64_t kDefaultMaxLiteral = 64ull * 1024 * 1024;
// All literals of one command together (MULTIAPPEND carries several messages).
inline constexpr std::uint64_t kDefaultMaxCommandLiterals = 128ull * 1024 * 1024;
// Nesting of parentheses and FETCH sections.
inline constexpr std::size_t kDefaultMaxDepth = 32;
// Argument nodes of one command (atoms, strings, NILs, lists, each nested one counted).
inline constexpr std::size_t kDefaultMaxArgs = 4096;
// Largest accepted non-synchronizing literal {n+}: 4096 is LITERAL- (RFC 7888 §4, the IMAP4rev2
// default of RFC 9051 §4.3); a LITERAL+ server sets it to max_literal.
inline constexpr std::uint64_t kDefaultMaxNonSyncLiteral = 4096;
// A refused non-synchronizing literal is read and discarded so that the stream stays framed;
// past this size the parser gives up instead and the session must send BYE and close.
inline constexpr std::uint64_t kDefaultMaxSkipLiteral = 256ull * 1024 * 1024;

struct Limits {
    std::size_t max_line = kDefaultMaxLine;
    std::uint64_t max_literal = kDefaultMaxLiteral;
    std::uint64_t max_command_literals = kDefaultMaxCommandLiterals;
    std::size_t max_depth = kDefaultMaxDepth;
    std::size_t max_args = kDefaultMaxArgs;
    std::uint64_t max_nonsync_literal = kDefaultMaxNonSyncLiteral;
    std::uint64_t max_skip_literal = kDefaultMaxSkipLiteral;
};

// One argument node.
struct Arg {
    enum class Kind : std::uint8_t {
        Atom,    // text: the characters as sent (a number, a flag, a sequence set, a keyword...)
        String,  // text: the value of a quoted string or a literal (see form)
        List,    // items: the parenthesised members
        Nil,     // an atom spelled NIL in any case; text keeps the spelling, so that a mailbox
                 // called "nil" sent as an atom is still readable as an astring
    };
    enum class Form : std::uint8_t { Quoted, Literal, Literal8 };  // how a String was sent

    Kind kind = Kind::Atom;
    Form form = Form::Quoted;
    bool section = false;    // Atom with a FETCH section: items hold the bracket contents
    std::string text;        // Atom, Nil, String
    std::vector<Arg> items;  // List members; section contents
    std::string suffix;      // section only: what follows ']' (e.g. "<0.100>"), possibly empty

    bool is_atom() const { return kind == Kind::Atom; }
    bool is_string() const { return kind == Kind::String; }
    bool is_list() const { return kind == Kind::List; }
    bool is_nil() const { return kind == Kind::Nil; }
    bool operator==(const Arg&) const = default;
};

struct Command {
    std::string tag;
    std::string name;  // upper-cased; "UID FETCH" gives name "FETCH" and uid = true
    bool uid = false;
    std::vector<Arg> args;
    bool operator==(const Command&) const = default;
};

// What went wrong, for the session's reply.
struct ParseError {
    std::string tag;        // the tag if a whole one was read; empty: answer with an untagged BAD
    std::string command;    // upper-cased command name if it was read ("FETCH" for UID FETCH)
    std::string text;       // human-readable reason, for the text of BAD (or NO [TOOBIG])
    bool resynced = false;  // true: the next byte starts a new command. false: the parser is
                            // discarding the rest of the broken command by itself, including the
                            // data of non-synchronizing literals announced in it
    bool fatal = false;     // the stream cannot be framed any more: send BYE and close
    std::uint64_t literal_size = 0;  // LiteralTooBig: the size announced (UINT64_MAX if it
                                     // did not fit 64 bits)
    bool literal_sync = false;       // LiteralTooBig: it was a synchronizing literal {n}
    bool operator==(const ParseError&) const = default;
};

class Parser {
  public:
    enum class Status {
        NeedMore,          // every byte consumed, no event
        Command,           // command() holds a complete command
        NeedContinuation,  // a synchronizing literal {n} was accepted: send "+ Ready for
                           // literal data\r\n", then keep feeding
        Error,             // the command is malformed: error() says why (tag, text, resynced)
        LineTooLong,       // max_line crossed; the rest of the command is discarded
        LiteralTooBig,     // a literal over max_literal/max_command_literals, or a {n+} over
                           // max_nonsync_literal: error() has its size. A refused {n} ends the
                           // command (the client waits for a continuation that never comes); a
                           // refused {n+} is read and discarded, unless it is over
                           // max_skip_literal, which is fatal
        TooDeep,           // parentheses/sections nested over max_depth; rest discarded
    };

    explicit Parser(Limits limits = {});

    // Consumes bytes from `in` and stops after the first event; `consumed` says how many bytes
    // were used (it may be 0 when the event is reported on the first byte). Feeding the same
    // bytes in any split gives the same events at the same stream offsets. After a fatal error
    // the parser consumes nothing and repeats that error: the session must close.
    Status feed(std::string_view in, std::size_t& consumed);

    // The command after Status::Command, valid until the next feed. take_command() moves it out
    // (a literal such as an APPENDed message is copied once, from the fed span into its
    // String node, whose buffer is reserved at the announcement, and never again); at any other
    // time it returns an empty Command.
    const Command& command() const { return cmd_; }
    Command take_command();

    const ParseError& error() const { return err_; }

    const Limits& limits() const { return limits_; }
    // Takes effect from the next command (e.g. tighter limits before login).
    void set_limits(const Limits& l);

    // True between commands: the next byte fed starts a new command. A session that reads a
    // raw line (IDLE's DONE, an AUTHENTICATE response) does so only at this point.
    bool at_command_start() const;
    // Octets held for the command being read (text plus literal data so far).
    std::size_t buffered() const;

  private:
    enum class State : std::uint8_t {
        Start,         // before the first byte of a command
        Tag,           // in the tag
        Name,          // in the command name (or the name after UID)
        Sep,           // after a separator, '(' or '[': an argument may start
        AfterToken,    // right after an argument: SP, ')', ']' or the line end must follow
        Atom,          // in an atom
        Suffix,        // after a section's ']', in "<0.100>"
        Tilde,         // '~' at an argument start: literal8 if '{' follows
        Quoted,        // in a quoted string
        QuotedEscape,  // after '\' in a quoted string
        LiteralSize,   // after '{': the digits
        LiteralPlus,   // after "{n+": '}' must follow
        LiteralEnd,    // after '}': the line must end
        Literal,       // reading literal data
        Skip,          // discarding the rest of a broken command
        SkipLiteral,   // discarding the data of a literal inside a broken command
        Dead,          // fatal error reported; nothing more is parsed
    };
    struct Frame {
        std::vector<Arg>* items;
        bool section;
    };

    Status step(unsigned char c, bool& used);
    Status dispatch(unsigned char c, bool& used);
    Status skip_byte(unsigned char c);
    Status read_literal(std::string_view in, std::size_t& consumed);
    Status announce_literal();
    Status reject_literal(Status status, std::string text);
    Status end_of_line();
    Status finish_name_at_eol();
    void finish_atom();
    Arg* new_arg(Arg::Kind kind);
    void start_literal(bool lit8);
    Status open(bool section, bool& used);
    Status close_list(bool& used);
    Status close_section(bool& used);
    void push_tail(unsigned char c);
    // Errors: fail() leaves the current byte unconsumed and discards the rest of the command;
    // fail_eol() is for errors found at the line end, where the command is already over.
    Status fail(std::string text, bool& used, Status status = Status::Error);
    Status fail_eol(std::string text);
    void set_error(std::string text, bool resynced);
    void enter_start();
    void enter_skip();

    Limits limits_;
    Limits next_limits_{};
    bool limits_pending_ = false;
    State state_ = State::Start;
    Status dead_status_ = Status::Error;
    Command cmd_;
    ParseError err_;
    bool ready_ = false;     // cmd_ holds a finished command to drop on the next feed
    bool cr_ = false;        // a CR was read outside a quoted string: LF must follow
    bool sections_ = false;  // this command is FETCH: '[' opens a section
    bool in_section_ = false;
    std::vector<Frame> stack_;  // open containers; stack_[0] is the command's argument list
    Arg* cur_ = nullptr;        // the atom or string being read
    std::size_t line_bytes_ = 0;
    std::size_t nargs_ = 0;
    std::uint64_t literal_total_ = 0;
    // Literal announcement and data.
    std::uint64_t lit_size_ = 0;
    std::size_t lit_digits_ = 0;
    bool lit_overflow_ = false;
    bool lit_sync_ = true;
    bool lit8_ = false;
    bool lit_nul_ = false;
    std::uint64_t lit_left_ = 0;
    // Skipping: the last bytes of the current line, to find a literal announced at its end.
    std::string tail_;
    std::uint64_t skip_left_ = 0;
};

}  // namespace millipost::imap
