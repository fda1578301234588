// outbound/dsn.cpp: the bounce message (see dsn.h). The human-readable part follows Postfix's
// wording, which operators and users know.
#include "outbound/dsn.h"

#include "util/limits.h"

#include <fmt/format.h>

#include <ctime>

namespace millipost::outbound {
namespace {

std::string rfc5322_date(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

// The original's header section (up to the empty line), cut at a line boundary when longer
// than the quoting limit.
std::string_view header_section(std::string_view msg) {
    auto end = msg.find("\r\n\r\n");
    auto h = end == std::string_view::npos ? msg : msg.substr(0, end + 2);
    if (h.size() > limits::kDsnMaxQuotedHeaders) {
        h = h.substr(0, limits::kDsnMaxQuotedHeaders);
        auto nl = h.rfind("\r\n");
        h = nl == std::string_view::npos ? std::string_view() : h.substr(0, nl + 2);
    }
    return h;
}

// A header field value never holds CR or LF, and stays well within 998 octets a line.
std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s)
        out += (c == '\r' || c == '\n') ? ' ' : c;
    if (out.size() > 900) out.resize(900);
    return out;
}

// The SMTP reply when there was one ("smtp; 550 5.1.1 ..."), else our own words.
bool is_smtp_reply(const RcptResult& r) {
    return r.reply.size() > 4 && std::isdigit(static_cast<unsigned char>(r.reply[0])) &&
           std::isdigit(static_cast<unsigned char>(r.reply[1])) &&
           std::isdigit(static_cast<unsigned char>(r.reply[2])) && r.reply[3] == ' ';
}

}  // namespace

std::string make_dsn(const DsnInput& in) {
    auto boundary = fmt::format("{}.{}/{}", in.queue_id, in.now, in.reporting_mta);
    std::string m;
    m += "Return-Path: <>\r\n";
    m += fmt::format("Date: {}\r\n", rfc5322_date(in.now));
    m += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", in.reporting_mta);
    m += fmt::format("To: <{}>\r\n", one_line(in.sender));
    m += "Subject: Undelivered Mail Returned to Sender\r\n";
    m += fmt::format("Message-ID: <{}.{}.dsn@{}>\r\n", in.queue_id, in.now, in.reporting_mta);
    // RFC 3834 §5: an automatic response; nothing should answer it automatically.
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += fmt::format(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n",
        boundary);
    m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

    m += fmt::format("--{}\r\n", boundary);
    m += "Content-Description: Notification\r\n";
    m += "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    m += fmt::format("This is the mail system at host {}.\r\n\r\n", in.reporting_mta);
    m += "I'm sorry to have to inform you that your message could not\r\n";
    m += "be delivered to one or more recipients. It's attached below.\r\n\r\n";
    m += "For further assistance, please send mail to postmaster.\r\n\r\n";
    for (auto& r : in.failed)
        m += fmt::format("<{}>: {}\r\n", one_line(r.address), one_line(r.detail));
    m += "\r\n";

    m += fmt::format("--{}\r\n", boundary);
    m += "Content-Description: Delivery report\r\n";
    m += "Content-Type: message/delivery-status\r\n\r\n";
    m += fmt::format("Reporting-MTA: dns; {}\r\n", in.reporting_mta);
    m += fmt::format("X-Millipost-Queue-ID: {}\r\n", in.queue_id);
    m += fmt::format("Arrival-Date: {}\r\n", rfc5322_date(in.arrival));
    for (auto& r : in.failed) {
        m += "\r\n";
        m += fmt::format("Final-Recipient: rfc822; {}\r\n", one_line(r.address));
        m += "Action: failed\r\n";
        m += fmt::format("Status: {}\r\n", r.status);
        if (is_smtp_reply(r))
            m += fmt::format("Diagnostic-Code: smtp; {}\r\n", one_line(r.reply));
        else
            m += fmt::format("Diagnostic-Code: X-Millipost; {}\r\n", one_line(r.detail));
        m += fmt::format("Last-Attempt-Date: {}\r\n", rfc5322_date(in.now));
    }
    m += "\r\n";

    m += fmt::format("--{}\r\n", boundary);
    m += "Content-Description: Undelivered Message Headers\r\n";
    m += "Content-Type: text/rfc822-headers\r\n\r\n";
    m += header_section(in.original);
    m += fmt::format("\r\n--{}--\r\n", boundary);
    return m;
}

}  // namespace millipost::outbound
