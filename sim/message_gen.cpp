// sim/message_gen.cpp: the message generator (see message_gen.h for the distributions).
#include "message_gen.h"

#include "population.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numbers>
#include <string_view>

namespace millipost::sim {
namespace {

// Fields of derive(seed, index, field): each draw has its own stream, so changing one (say the
// subject's words) never shifts another (the sizes).
enum Field : std::uint64_t {
    kPlanField = 100,
    kWordsField,
    kSubjectField,
    kDateField,
    kAttachField,
    kBoundaryField,
    kExtraField,
};

// A small stream of 64-bit draws.
struct Rng {
    std::uint64_t state;
    explicit Rng(std::uint64_t s) : state(s) {}
    std::uint64_t next() { return mix(state++); }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
    double open_uniform() { return 1.0 - uniform(); }                           // (0, 1]
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    double normal() {  // Box-Muller
        return std::sqrt(-2.0 * std::log(open_uniform())) *
               std::cos(2.0 * std::numbers::pi * uniform());
    }
};

// Size model (documented in message_gen.h).
constexpr double kTextMedian = 1500.0;
constexpr double kTextSigma = 1.0;
constexpr std::size_t kTextMin = 80;
constexpr std::size_t kTextMax = 200000;
constexpr double kAttachScale = 24000.0;  // Pareto x_m
constexpr double kAttachAlpha = 1.16;
constexpr std::size_t kAttachMax = 15u << 20;  // all of a message's attachments together
constexpr std::size_t kHeaderEstimate = 520;   // top-level header block, typical
constexpr std::size_t kPartEstimate = 150;     // one MIME part's header and delimiter

enum Script { kAscii, kLatin, kCyrillic, kGreek, kCjk, kArabic, kKorean, kScripts };
enum class BodyEncoding { SevenBit, EightBit, QuotedPrintable };

struct Attachment {
    bool png = false;
    std::size_t raw = 0;
};

struct Plan {
    bool alternative = false;
    std::size_t text_len = 0;  // encoded octets of the text/plain body
    Script script = kAscii;
    BodyEncoding encoding = BodyEncoding::SevenBit;
    int attachments = 0;
    std::array<Attachment, 3> attach{};
};

Script pick_script(Rng& r) {
    // Half the mail is plain English; the rest spreads over scripts that exercise charsets.
    static constexpr std::array<int, kScripts> kWeights = {50, 20, 8, 5, 10, 4, 3};
    auto x = static_cast<int>(r.below(100));
    for (int s = 0; s < kScripts; ++s) {
        if (x < kWeights[static_cast<std::size_t>(s)]) return static_cast<Script>(s);
        x -= kWeights[static_cast<std::size_t>(s)];
    }
    return kAscii;
}

Plan make_plan(std::uint64_t seed, std::uint64_t index) {
    Rng r(derive(seed, index, kPlanField));
    Plan p;
    double t = std::exp(std::log(kTextMedian) + kTextSigma * r.normal());
    p.text_len = std::clamp(static_cast<std::size_t>(t), kTextMin, kTextMax);
    auto kind = r.below(100);
    p.alternative = kind >= 55 && kind < 90;
    if (kind >= 90) {
        p.alternative = r.below(2) == 0;
        auto n = r.below(100);
        p.attachments = n < 50 ? 1 : n < 85 ? 2 : 3;
        std::size_t total = 0;  // kAttachMax bounds them together, as a mail size limit would
        for (int i = 0; i < p.attachments; ++i) {
            auto& a = p.attach[static_cast<std::size_t>(i)];
            a.png = r.below(2) == 0;
            double x = kAttachScale / std::pow(r.open_uniform(), 1.0 / kAttachAlpha);
            a.raw = std::min(static_cast<std::size_t>(x), kAttachMax - total);
            total += a.raw;
        }
    }
    p.script = pick_script(r);
    if (p.script != kAscii)
        p.encoding = r.below(10) < 6 ? BodyEncoding::QuotedPrintable : BodyEncoding::EightBit;
    return p;
}

std::size_t base64_lines_size(std::size_t raw);

// The plan of a profile's distribution (MessageShape in message_gen.h).
Plan make_plan(std::uint64_t seed, std::uint64_t index, const MessageShape& s) {
    Rng r(derive(seed, index, kPlanField));
    Plan p;
    double size = r.uniform() < s.tail_fraction
                      ? s.size_median / std::pow(r.open_uniform(), 1.0 / s.tail_alpha)
                      : std::exp(std::log(s.size_median) + kTextSigma * r.normal());
    auto total = static_cast<std::size_t>(std::min(size, static_cast<double>(s.size_max)));
    p.alternative = r.uniform() < s.multipart_fraction;
    bool attach = r.uniform() < s.attachment_fraction;
    if (r.uniform() < s.non_ascii_fraction) {
        p.script = static_cast<Script>(1 + r.below(kScripts - 1));
        p.encoding = r.below(10) < 6 ? BodyEncoding::QuotedPrintable : BodyEncoding::EightBit;
    }
    // What the headers and MIME parts around the text take, so that the whole is near `total`.
    std::size_t frame = kHeaderEstimate + (p.alternative ? 2 * kPartEstimate : 0);
    std::size_t body = total > frame ? total - frame : 0;
    std::size_t per_text = p.alternative ? 3 : 1;  // text + HTML (twice the text)
    if (!attach) {
        p.text_len = std::max(kTextMin, body / per_text);
        return p;
    }
    // Attachments carry what a typical text does not (base64: 4/3 of the raw octets).
    double t = std::exp(std::log(kTextMedian) + kTextSigma * r.normal());
    p.text_len = std::clamp(static_cast<std::size_t>(t), kTextMin, kTextMax);
    std::size_t rest = body > p.text_len * per_text + kPartEstimate
                           ? body - p.text_len * per_text - kPartEstimate
                           : 0;
    auto n = r.below(100);
    p.attachments = n < 50 ? 1 : n < 85 ? 2 : 3;
    std::size_t per = rest * 3 / 4 / static_cast<std::size_t>(p.attachments);
    std::size_t raw = per > kPartEstimate + 64 ? per - kPartEstimate : 64;
    for (int i = 0; i < p.attachments; ++i) {
        auto& a = p.attach[static_cast<std::size_t>(i)];
        a.png = r.below(2) == 0;
        a.raw = std::min(raw, kAttachMax / 3);
    }
    return p;
}

std::size_t base64_lines_size(std::size_t raw) {
    std::size_t b64 = (raw + 2) / 3 * 4;
    return b64 + 2 * ((b64 + 75) / 76);
}

// HTML is about twice the text: markup around the same words.
std::size_t html_len(const Plan& p) {
    return p.text_len * 2;
}

std::size_t planned_size(const Plan& p) {
    std::size_t n = kHeaderEstimate + p.text_len;
    if (p.alternative) n += html_len(p) + 2 * kPartEstimate;
    for (int i = 0; i < p.attachments; ++i)
        n += base64_lines_size(p.attach[static_cast<std::size_t>(i)].raw) + kPartEstimate;
    if (p.attachments) n += kPartEstimate;
    return n;
}

// Words per script, UTF-8. Arabic and Korean run right-to-left / need no spaces in reality;
// spaces between words keep line wrapping simple and are valid text anyway.
constexpr std::array<std::array<std::string_view, 16>, kScripts> kWords = {{
    {"the", "meeting", "report", "project", "please", "review", "attached", "thanks", "schedule",
     "budget", "quarter", "update", "deadline", "customer", "proposal", "tomorrow"},
    {"réunion", "größe", "mañana", "café", "naïve", "über", "déjà", "façade", "straße", "año",
     "élève", "fête", "Grüße", "crème", "coração", "smørrebrød"},
    {"привет", "встреча", "отчёт", "проект", "пожалуйста", "спасибо", "бюджет", "завтра", "команда",
     "клиент", "вопрос", "сервер", "письмо", "документ", "срок", "обновление"},
    {"γεια", "συνάντηση", "αναφορά", "έργο", "παρακαλώ", "ευχαριστώ", "αύριο", "ομάδα", "πελάτης",
     "ερώτηση", "έγγραφο", "προθεσμία", "σχέδιο", "διακομιστής", "μήνυμα", "απάντηση"},
    {"会議", "報告書", "プロジェクト", "確認", "よろしく", "お願いします", "明日", "予算", "チーム",
     "顧客", "質問", "サーバー", "资料", "谢谢", "项目", "邮件"},
    {"مرحبا", "اجتماع", "تقرير", "مشروع", "فضلك", "شكرا", "غدا", "ميزانية", "فريق", "عميل", "سؤال",
     "خادم", "رسالة", "وثيقة", "موعد", "تحديث"},
    {"회의", "보고서", "감사합니다", "내일", "프로젝트", "예산", "팀", "고객", "질문", "서버",
     "메일", "문서", "마감", "업데이트", "안녕하세요", "확인"},
}};

// Display names for addresses given bare, in several scripts.
constexpr std::array<std::string_view, 24> kNames = {
    "Ada Lovelace",   "Bjørn Østergaard", "Chloé Dubois",   "José Fernández", "Zofia Łukasiewicz",
    "Nguyễn Văn An",  "Søren Weiß",       "Çağla Yılmaz",   "Иван Петров",    "Мария Иванова",
    "Γιώργος Παππάς", "田中 太郎",        "山田 花子",      "王伟",           "김민준",
    "محمد علي",       "Grace Hopper",     "Alan Turing",    "Priya Sharma",   "O'Brien, Pat",
    "Dr. Ann Smith",  "François Müller",  "Đorđe Petrović", "Yusuf Okafor"};

// ASCII classes without <cctype>, whose answers depend on the process's locale (the Python
// extension runs under whatever locale Python set): output must not.
bool ascii_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 128; });
}

constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64(std::string& out, const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
        char q[4] = {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
        out.append(q, 4);
    }
    if (i < n) {
        std::uint32_t v = std::uint32_t{p[i]} << 16;
        if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
        out.push_back(kB64[v >> 18]);
        out.push_back(kB64[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? kB64[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
}

// Base64 in lines of 76 characters (RFC 2045 §6.8), each ended by CRLF.
void base64_lines(std::string& out, std::string_view raw) {
    auto p = reinterpret_cast<const unsigned char*>(raw.data());
    out.reserve(out.size() + base64_lines_size(raw.size()));
    for (std::size_t i = 0; i < raw.size(); i += 57) {  // 57 octets make 76 characters
        base64(out, p + i, std::min<std::size_t>(57, raw.size() - i));
        out += "\r\n";
    }
}

// Splits UTF-8 text into chunks of at most `max` octets without cutting a character.
template <typename F>
void utf8_chunks(std::string_view s, std::size_t max, F&& f) {
    while (!s.empty()) {
        std::size_t n = std::min(max, s.size());
        while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
            --n;
        f(s.substr(0, n));
        s.remove_prefix(n);
    }
}

// RFC 2047 encoded-words for a header value, folded one per line. B or Q by `q`.
std::string encoded_words(std::string_view text, bool q) {
    std::string out;
    bool first = true;
    auto start = [&] {
        if (!first) out += "\r\n ";
        first = false;
    };
    if (!q) {
        // 45 octets make 60 base64 characters: 72 with "=?UTF-8?B?" and "?=".
        utf8_chunks(text, 45, [&](std::string_view c) {
            start();
            out += "=?UTF-8?B?";
            base64(out, reinterpret_cast<const unsigned char*>(c.data()), c.size());
            out += "?=";
        });
        return out;
    }
    // Q: an encoded octet takes 3 characters; 20 octets stay under 75 with the wrapper.
    utf8_chunks(text, 20, [&](std::string_view c) {
        start();
        out += "=?UTF-8?Q?";
        for (unsigned char ch : c) {
            if (ch == ' ')
                out.push_back('_');
            else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9'))
                out.push_back(static_cast<char>(ch));
            else {
                out.push_back('=');
                out.push_back(kHex[ch >> 4]);
                out.push_back(kHex[ch & 15]);
            }
        }
        out += "?=";
    });
    return out;
}

// A display name as a header phrase: atoms when plain, quoted when it has specials, encoded
// words when not ASCII.
std::string phrase(std::string_view name, bool q) {
    if (!is_ascii(name)) return encoded_words(name, q);
    bool atoms = std::all_of(name.begin(), name.end(), [](char c) {
        return ascii_alnum(static_cast<unsigned char>(c)) || c == ' ' || c == '\'' || c == '-';
    });
    if (atoms) return std::string(name);
    std::string out = "\"";
    for (char c : name) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::uint64_t fnv(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s)
        h = (h ^ c) * 1099511628211ULL;
    return h;
}

// "Name <address>" for a bare address (the name fixed per address and seed), else as given.
std::string mailbox_header(std::uint64_t seed, const std::string& address) {
    if (address.find('<') != std::string::npos) return address;
    auto h = mix(fnv(address) ^ seed);
    auto name = kNames[h % kNames.size()];
    return phrase(name, (h >> 8) % 2 == 0) + " <" + address + ">";
}

// RFC 5322 date-time in a zone of the sender's; dates ascend with the index (about 29 s apart)
// from 2026-01-01, so a mailbox filled in index order is also in date order.
std::string rfc5322_date(std::uint64_t seed, std::uint64_t index) {
    Rng r(derive(seed, index, kDateField));
    static constexpr std::array<int, 8> kZones = {0, 60, 120, -300, -480, 330, 540, 600};
    int zone = kZones[r.below(kZones.size())];
    std::int64_t t = 1767225600 + static_cast<std::int64_t>(index % 100000000) * 29 +
                     static_cast<std::int64_t>(r.below(29)) + zone * 60;
    std::int64_t days = t / 86400, secs = t % 86400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    std::int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
    static constexpr const char* kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    int az = zone < 0 ? -zone : zone;
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", kDays[days % 7],
                  static_cast<int>(d), kMonths[m - 1], static_cast<int>(y),
                  static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                  static_cast<int>(secs % 60), zone < 0 ? '-' : '+', az / 60, az % 60);
    return buf;
}

// Body text: lines of words wrapped near 66 octets, paragraphs of 2-6 lines, a greeting and a
// signature ("-- " with its trailing space, which QP must protect).
class TextSource {
  public:
    TextSource(std::uint64_t seed, std::uint64_t index, Script script)
        : r_(derive(seed, index, kWordsField)), script_(script) {}

    // The next line (without CRLF); "" between paragraphs.
    std::string line() {
        if (lines_left_ == 0) {
            lines_left_ = 2 + static_cast<int>(r_.below(5));
            if (started_) return {};
        }
        started_ = true;
        --lines_left_;
        std::string out;
        auto& words = kWords[static_cast<std::size_t>(
            r_.below(4) == 0 ? static_cast<int>(kAscii) : static_cast<int>(script_))];
        while (out.size() < 66) {
            if (!out.empty()) out.push_back(' ');
            out += words[r_.below(words.size())];
            if (r_.below(12) == 0) out.push_back(r_.below(2) ? ',' : '.');
        }
        return out;
    }

  private:
    Rng r_;
    Script script_;
    int lines_left_ = 0;
    bool started_ = false;
};

// Appends one body line encoded for the transfer encoding, with its CRLF.
void encode_line(std::string& out, std::string_view line, BodyEncoding enc) {
    if (enc != BodyEncoding::QuotedPrintable) {
        out += line;
        out += "\r\n";
        return;
    }
    std::size_t col = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        auto c = static_cast<unsigned char>(line[i]);
        bool last = i + 1 == line.size();
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        std::size_t w = literal ? 1 : 3;
        if (col + w > 75) {  // soft line break: "=" ends the line at 76 at most
            out += "=\r\n";
            col = 0;
        }
        if (literal) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('=');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
        col += w;
    }
    out += "\r\n";
}

std::string_view cte_name(BodyEncoding e) {
    switch (e) {
        case BodyEncoding::SevenBit:
            return "7bit";
        case BodyEncoding::EightBit:
            return "8bit";
        case BodyEncoding::QuotedPrintable:
            return "quoted-printable";
    }
    return "7bit";
}

void text_body(std::string& out, const MessageSpec& spec, const Plan& p, std::string_view greet) {
    TextSource src(spec.seed, spec.index, p.script);
    std::size_t start = out.size();
    encode_line(out, std::string(greet) + ",", p.encoding);
    encode_line(out, "", p.encoding);
    while (out.size() - start < p.text_len)
        encode_line(out, src.line(), p.encoding);
    encode_line(out, "", p.encoding);
    encode_line(out, "-- ", p.encoding);
    encode_line(out, "Sent by the millipost load simulator", p.encoding);
}

void html_escape(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            default:
                out.push_back(c);
        }
    }
}

void html_body(std::string& out, const MessageSpec& spec, const Plan& p, std::string_view greet) {
    TextSource src(spec.seed, spec.index, p.script);  // the same words as the text part
    std::size_t start = out.size();
    encode_line(out, "<!DOCTYPE html>", p.encoding);
    encode_line(out, "<html><head><meta charset=\"utf-8\"><style>p{margin:0 0 1em}</style></head>",
                p.encoding);
    std::string l = "<body style=\"font-family:sans-serif\"><p>";
    html_escape(l, greet);
    l += ",</p>";
    encode_line(out, l, p.encoding);
    bool open = false;
    while (out.size() - start < html_len(p)) {
        auto line = src.line();
        l.clear();
        if (line.empty()) {
            if (open) l = "</p>";
            open = false;
        } else {
            if (!open) l = "<p>";
            open = true;
            html_escape(l, line);
        }
        encode_line(out, l, p.encoding);
    }
    encode_line(out, open ? "</p></body></html>" : "</body></html>", p.encoding);
}

// Attachment octets: the file type's real magic number, then pseudo-random filler (which
// base64 cannot compress and the store cannot deduplicate, as with real scans and photos).
std::string attachment_bytes(Rng& r, const Attachment& a) {
    using namespace std::literals;  // "..."sv keeps the NUL octets of the PNG header
    static constexpr std::string_view kPdf = "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"sv;
    static constexpr std::string_view kPng =
        "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x04\x00\x00\x00\x03\x00\x08\x06\x00\x00\x00"sv;
    auto magic = a.png ? kPng : kPdf;
    std::string raw(std::max(a.raw, magic.size()), '\0');
    std::memcpy(raw.data(), magic.data(), magic.size());
    std::size_t i = magic.size();
    for (; i + 8 <= raw.size(); i += 8) {
        auto v = r.next();
        std::memcpy(raw.data() + i, &v, 8);
    }
    for (auto v = r.next(); i < raw.size(); ++i, v >>= 8)
        raw[i] = static_cast<char>(v & 0xFF);
    return raw;
}

// A filename, non-ASCII in non-ASCII mail: then as an RFC 2231 extended parameter.
std::string filename_params(const std::string& base, bool png, bool ascii) {
    std::string name = base + (png ? ".png" : ".pdf");
    if (ascii) return "filename=\"" + name + "\"";
    std::string out = "filename*=UTF-8''";
    for (unsigned char c : name) {
        if (ascii_alnum(c) || c == '.' || c == '-' || c == '_') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

std::string angle(const std::string& id) {
    if (!id.empty() && id.front() == '<') return id;
    return "<" + id + ">";
}

}  // namespace

std::string message_uid(std::uint64_t seed, std::uint64_t index) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%llx.%llx", static_cast<unsigned long long>(seed),
                  static_cast<unsigned long long>(index));
    return buf;
}

std::string message_id(std::uint64_t seed, std::uint64_t index) {
    return "<" + message_uid(seed, index) + "@sim.millipost>";
}

std::size_t message_size(std::uint64_t seed, std::uint64_t index) {
    return planned_size(make_plan(seed, index));
}

std::size_t message_size(std::uint64_t seed, std::uint64_t index, const MessageShape& shape) {
    return planned_size(make_plan(seed, index, shape));
}

GeneratedMessage generate_message(const MessageSpec& spec) {
    auto plan = spec.shape ? make_plan(spec.seed, spec.index, *spec.shape)
                           : make_plan(spec.seed, spec.index);
    GeneratedMessage g;
    g.id = message_uid(spec.seed, spec.index);
    g.message_id = message_id(spec.seed, spec.index);
    auto& out = g.bytes;
    out.reserve(planned_size(plan) + 1024);

    Rng sr(derive(spec.seed, spec.index, kSubjectField));
    bool ascii = plan.script == kAscii;
    std::string subject;
    auto nwords = 2 + sr.below(7);
    const auto& words = kWords[static_cast<std::size_t>(plan.script)];
    for (std::size_t i = 0; i < nwords; ++i) {
        if (i) subject.push_back(' ');
        subject += words[sr.below(words.size())];
    }
    if (ascii && subject[0] >= 'a' && subject[0] <= 'z')
        subject[0] = static_cast<char>(subject[0] - 32);
    bool q = sr.below(3) == 0;

    out += "Date: " + rfc5322_date(spec.seed, spec.index) + "\r\n";
    out += "From: " + mailbox_header(spec.seed, spec.from) + "\r\n";
    out += "To: " + mailbox_header(spec.seed, spec.to) + "\r\n";
    // A reply's "Re: " stays ASCII before the encoded-words, as mail clients write it.
    out += spec.in_reply_to ? "Subject: Re: " : "Subject: ";
    out += (ascii ? subject : encoded_words(subject, q)) + "\r\n";
    out += "Message-ID: " + g.message_id + "\r\n";
    if (spec.in_reply_to) {
        auto parent = angle(*spec.in_reply_to);
        out += "In-Reply-To: " + parent + "\r\n";
        out += "References: " + parent + "\r\n";
    }
    static constexpr std::array<std::string_view, 4> kAgents = {
        "Mozilla Thunderbird 128.3", "Apple Mail (2.3774)", "Microsoft Outlook 16.0",
        "millipost-sim/1"};
    out += "User-Agent: ";
    out += kAgents[sr.below(kAgents.size())];
    out += "\r\nX-Millipost-Id: " + g.id + "\r\nMIME-Version: 1.0\r\n";

    std::string greet = "Hello";
    if (!ascii) greet = std::string(words[0]);
    auto boundary = [&](int level) {
        char buf[48];
        // "=_" cannot occur in base64 or quoted-printable text, nor in the generated words.
        std::snprintf(
            buf, sizeof buf, "=_mp%d_%016llx", level,
            static_cast<unsigned long long>(derive(spec.seed, spec.index, kBoundaryField)));
        return std::string(buf);
    };
    auto text_headers = [&](std::string_view subtype) {
        out += "Content-Type: text/";
        out += subtype;
        out += ascii ? "; charset=us-ascii" : "; charset=utf-8";
        out += "\r\nContent-Transfer-Encoding: ";
        out += cte_name(plan.encoding);
        out += "\r\n\r\n";
    };
    auto text_part = [&] {  // the text/plain or multipart/alternative entity, headers included
        if (!plan.alternative) {
            text_headers("plain");
            text_body(out, spec, plan, greet);
            return;
        }
        auto b = boundary(1);
        out += "Content-Type: multipart/alternative; boundary=\"" + b + "\"\r\n\r\n";
        out += "--" + b + "\r\n";
        text_headers("plain");
        text_body(out, spec, plan, greet);
        out += "--" + b + "\r\n";
        text_headers("html");
        html_body(out, spec, plan, greet);
        out += "--" + b + "--\r\n";
    };

    if (plan.attachments == 0) {
        text_part();
        return g;
    }
    auto b = boundary(0);
    out += "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n";
    out += "This is a multi-part message in MIME format.\r\n";
    out += "--" + b + "\r\n";
    text_part();
    Rng ar(derive(spec.seed, spec.index, kAttachField));
    for (int i = 0; i < plan.attachments; ++i) {
        const auto& a = plan.attach[static_cast<std::size_t>(i)];
        std::string base =
            ascii ? (a.png ? "photo-" : "report-") + std::to_string(i + 1)
                  : std::string(words[ar.below(words.size())]) + "-" + std::to_string(i + 1);
        out += "--" + b + "\r\n";
        out += a.png ? "Content-Type: image/png\r\n" : "Content-Type: application/pdf\r\n";
        out += "Content-Disposition: attachment; " + filename_params(base, a.png, ascii) + "\r\n";
        out += "Content-Transfer-Encoding: base64\r\n\r\n";
        base64_lines(out, attachment_bytes(ar, a));
    }
    out += "--" + b + "--\r\n";
    return g;
}

}  // namespace millipost::sim
