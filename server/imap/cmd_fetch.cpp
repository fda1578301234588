// imap/cmd_fetch.cpp: FETCH and UID FETCH (RFC 9051 §6.4.5): flags, UID, dates, sizes,
// ENVELOPE, BODY/BODYSTRUCTURE, BODY[section]<partial> (setting \Seen unless PEEK), BINARY
// (RFC 3516), RFC822.* and MODSEQ.
#include "imap/context.h"
#include "proto/imap/fetch.h"

#include "mime/envelope.h"
#include "mime/imap_render.h"
#include "mime/message.h"
#include "mime/section.h"

#include <fmt/format.h>

#include <algorithm>

namespace millipost::imap {

namespace {

bool needs_body(const FetchAtt& a) {
    switch (a.item) {
        case FetchItem::Flags:
        case FetchItem::Uid:
        case FetchItem::InternalDate:
        case FetchItem::Rfc822Size:
        case FetchItem::ModSeq:
            return false;
        default:
            return true;
    }
}

bool sets_seen(const FetchAtt& a) {
    return (a.item == FetchItem::Rfc822 || a.item == FetchItem::Rfc822Text ||
            a.item == FetchItem::BodySection || a.item == FetchItem::Binary) &&
           !a.peek;
}

mime::Section to_mime(const Section& sec) {
    mime::Section m;
    m.part = sec.part;
    m.fields = sec.fields;
    switch (sec.text) {
        case Section::Text::All:
            m.text = mime::Section::Text::None;
            break;
        case Section::Text::Header:
            m.text = mime::Section::Text::Header;
            break;
        case Section::Text::HeaderFields:
            m.text = mime::Section::Text::HeaderFields;
            break;
        case Section::Text::HeaderFieldsNot:
            m.text = mime::Section::Text::HeaderFieldsNot;
            break;
        case Section::Text::Text:
            m.text = mime::Section::Text::Text;
            break;
        case Section::Text::Mime:
            m.text = mime::Section::Text::Mime;
            break;
    }
    return m;
}

std::string_view apply_partial(std::string_view data, const std::optional<Partial>& p) {
    if (!p) return data;
    if (p->offset >= data.size()) return {};
    return data.substr(p->offset, p->length);
}

}  // namespace

net::awaitable<void> cmd_fetch(Session& s, Command& c) {
    auto args = parse_fetch(c);
    if (!args) {
        s.arg_error(c, args.error());
        co_return;
    }
    if (args->vanished && !s.qresync) {
        s.bad(c, "VANISHED needs ENABLE QRESYNC first");
        co_return;
    }
    if (!c.uid && args->set.max_number() > s.view.size()) {
        s.bad(c, "invalid message sequence number");
        co_return;
    }
    const auto& atts = args->atts;
    if (args->changed_since || std::any_of(atts.begin(), atts.end(), [](const FetchAtt& a) {
            return a.item == FetchItem::ModSeq;
        }))
        s.enable_condstore();  // RFC 7162 §3.1
    auto seqs = resolve_set(s, args->set, c.uid);
    if (args->changed_since) {
        // RFC 7162 §3.1.4.1: only messages changed after the MODSEQ.
        auto since = *args->changed_since;
        std::erase_if(seqs, [&](std::uint32_t seq) { return s.view.at(seq).modseq <= since; });
        if (args->vanished) {
            // RFC 7162 §3.2.6: the UIDs in the set expunged after that MODSEQ, first.
            auto& st = s.svc.store();
            auto user = s.user.id;
            auto mb = s.view.mailbox.id;
            auto load = [&st, user, mb, since] { return st.mailbox_changes(user, mb, since); };
            store::MailboxDelta d;
            try {
                d = co_await s.blocking(std::move(load));
            } catch (const store::StoreError&) {
            }
            std::vector<std::uint32_t> gone;
            auto top = std::max(s.view.max_uid(), d.mailbox.uidnext ? d.mailbox.uidnext - 1 : 0);
            if (d.vanished_complete) {
                for (auto u : d.vanished)
                    if (args->set.contains(u, top)) gone.push_back(u);
            } else {
                // Older than the tombstones kept: every UID in the set that does not exist.
                for (std::uint32_t u = 1; u <= top; ++u) {
                    auto seq = s.view.seq_of(u);
                    if ((!seq || s.view.at(seq).expunged) && args->set.contains(u, top))
                        gone.push_back(u);
                }
            }
            if (!gone.empty()) s.untagged("VANISHED (EARLIER) " + compress_sequence(gone));
        }
    }
    bool body = std::any_of(atts.begin(), atts.end(), needs_body);
    bool seen = !s.view.read_only && std::any_of(atts.begin(), atts.end(), sets_seen);
    bool want_flags = std::any_of(atts.begin(), atts.end(),
                                  [](const FetchAtt& a) { return a.item == FetchItem::Flags; });
    auto& store = s.svc.store();
    auto user = s.user.id;
    auto mb = s.view.mailbox.id;

    // \Seen first, so that the FETCH responses show it (RFC 9051 §6.4.5).
    std::vector<std::uint32_t> newly_seen;
    if (seen) {
        std::vector<std::uint32_t> uids;
        for (auto seq : seqs) {
            auto& f = s.view.at(seq).flags;
            if (std::find(f.begin(), f.end(), "\\Seen") == f.end()) {
                uids.push_back(s.view.at(seq).uid);
                newly_seen.push_back(seq);
            }
        }
        if (!uids.empty()) {
            auto mark = [&store, user, mb, uids] {
                std::vector<std::string> flag{"\\Seen"};
                return store.update_flags(user, mb, uids, store::FlagOp::Add, flag);
            };
            auto result = co_await s.blocking(std::move(mark));
            for (auto& m : result.messages)
                s.view.set_flags(m.uid, m.flags, m.modseq);
        }
    }

    mime::RenderOptions opts;
    opts.utf8 = s.utf8;
    bool unknown_cte = false;
    for (auto seq : seqs) {
        const auto& e = s.view.at(seq);
        std::string raw;
        if (body) {
            auto uid = e.uid;
            auto read = [&store, user, mb, uid] { return store.read_message(user, mb, uid); };
            try {
                raw = co_await s.blocking(std::move(read));
            } catch (const store::StoreError&) {
                continue;  // expunged by another session; reported later
            }
        }
        std::optional<mime::Message> msg;
        if (body) msg = mime::parse(raw);
        s.announce_keywords(e.flags);  // before the response: it is written into s.out as built
        FetchResponse r(s.out, seq);
        bool flags_done = false;
        for (auto& a : atts) {
            switch (a.item) {
                case FetchItem::Flags:
                    r.flags(s.flags_of(e));
                    flags_done = true;
                    break;
                case FetchItem::Uid:
                    r.uid(e.uid);
                    break;
                case FetchItem::InternalDate:
                    r.internal_date(e.internaldate, 0);
                    break;
                case FetchItem::Rfc822Size:
                    r.rfc822_size(e.size);
                    break;
                case FetchItem::ModSeq:
                    r.modseq(e.modseq);
                    break;
                case FetchItem::Envelope:
                    r.raw("ENVELOPE", mime::render_envelope(mime::make_envelope(msg->root), opts));
                    break;
                case FetchItem::Body:
                    r.raw("BODY", mime::render_body(msg->root, false, opts));
                    break;
                case FetchItem::BodyStructure:
                    r.raw("BODYSTRUCTURE", mime::render_body(msg->root, true, opts));
                    break;
                case FetchItem::Rfc822:
                    r.section(a, raw);
                    break;
                case FetchItem::Rfc822Header:
                case FetchItem::Rfc822Text: {
                    mime::Section sec;
                    sec.text = a.item == FetchItem::Rfc822Header ? mime::Section::Text::Header
                                                                 : mime::Section::Text::Text;
                    auto d = mime::fetch_section(*msg, sec);
                    r.section(a, d.bytes(raw));
                    break;
                }
                case FetchItem::BodySection: {
                    auto d = mime::fetch_section(*msg, to_mime(a.section));
                    r.section(a, apply_partial(d.exists ? d.bytes(raw) : "", a.partial));
                    break;
                }
                case FetchItem::Binary:
                case FetchItem::BinarySize: {
                    auto d = mime::fetch_binary(*msg, a.section.part);
                    if (d.status == mime::BinaryData::Status::UnknownEncoding) unknown_cte = true;
                    if (a.item == FetchItem::BinarySize)
                        r.binary_size(a, d.data.size());
                    else
                        r.section(a, apply_partial(d.data, a.partial));
                    break;
                }
            }
        }
        bool got_seen = std::find(newly_seen.begin(), newly_seen.end(), seq) != newly_seen.end();
        if (!flags_done && !want_flags && got_seen) r.flags(s.flags_of(e));
        // A flag change with CONDSTORE carries its MODSEQ (RFC 7162 §3.1.4).
        if (got_seen && s.condstore &&
            std::none_of(atts.begin(), atts.end(),
                         [](const FetchAtt& a) { return a.item == FetchItem::ModSeq; }))
            r.modseq(e.modseq);
        r.finish();
    }
    if (unknown_cte)
        s.no(c, "unknown Content-Transfer-Encoding", "UNKNOWN-CTE");
    else
        s.ok(c, "FETCH completed");
}

}  // namespace millipost::imap
