// FormatCommand: the canonical client-side wire form of a parsed Command
// (RFC 3501 section 9 grammar), the inverse of ParseCommand. Used by tests,
// test clients and fuzz/fuzz_imap_command.cc (parse -> format -> parse).
#include <algorithm>

#include "imap/proto/command.h"
#include "imap/proto/response.h"
#include "imap/proto/strings.h"

namespace hato::imap {
namespace {

bool IsAstringChar(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  return c != '(' && c != ')' && c != '{' && c != '%' && c != '*' && c != '"' && c != '\\';
}

// string: quoted when possible, else a literal (8-bit always as a literal, so
// the result never depends on UTF8=ACCEPT).
void AppendStr(std::string& out, std::string_view s) { AppendString(out, s, /*utf8=*/false); }

// astring: an atom when it is one (and not NIL-like ambiguity: astring has no NIL).
void AppendAstring(std::string& out, std::string_view s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsAstringChar(c); })) {
    out += s;
  } else {
    AppendStr(out, s);
  }
}

// list-mailbox: list-chars ("%" and "*" included) or a string.
void AppendListMailbox(std::string& out, std::string_view s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(),
                                [](char c) { return IsAstringChar(c) || c == '%' || c == '*'; })) {
    out += s;
  } else {
    AppendStr(out, s);
  }
}

void AppendSet(std::string& out, const SeqSet& s) { out += s.ToString(); }

// " {n}\r\n<message>" or " CATENATE (TEXT {n}\r\n... URL ...)" (RFC 4469 section 5).
void AppendData(std::string& out, const std::string& message, const std::vector<CatPart>& parts) {
  if (parts.empty()) {
    out += " {" + std::to_string(message.size()) + "}\r\n";
    out += message;
    return;
  }
  out += " CATENATE (";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += ' ';
    if (parts[i].url) {
      out += "URL ";
      AppendAstring(out, parts[i].data);
    } else {
      out += "TEXT {" + std::to_string(parts[i].data.size()) + "}\r\n";
      out += parts[i].data;
    }
  }
  out += ')';
}

void AppendStatusItems(std::string& out, const std::vector<StatusItem>& items) {
  out += '(';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ' ';
    out += StatusItemName(items[i]);
  }
  out += ')';
}

const char* SearchOpName(SearchOp op) {
  switch (op) {
    case SearchOp::kAll:
      return "ALL";
    case SearchOp::kAnswered:
      return "ANSWERED";
    case SearchOp::kDeleted:
      return "DELETED";
    case SearchOp::kDraft:
      return "DRAFT";
    case SearchOp::kFlagged:
      return "FLAGGED";
    case SearchOp::kNew:
      return "NEW";
    case SearchOp::kOld:
      return "OLD";
    case SearchOp::kRecent:
      return "RECENT";
    case SearchOp::kSeen:
      return "SEEN";
    case SearchOp::kUnanswered:
      return "UNANSWERED";
    case SearchOp::kUndeleted:
      return "UNDELETED";
    case SearchOp::kUndraft:
      return "UNDRAFT";
    case SearchOp::kUnflagged:
      return "UNFLAGGED";
    case SearchOp::kUnseen:
      return "UNSEEN";
    case SearchOp::kKeyword:
      return "KEYWORD";
    case SearchOp::kUnkeyword:
      return "UNKEYWORD";
    case SearchOp::kBcc:
      return "BCC";
    case SearchOp::kBody:
      return "BODY";
    case SearchOp::kCc:
      return "CC";
    case SearchOp::kFrom:
      return "FROM";
    case SearchOp::kSubject:
      return "SUBJECT";
    case SearchOp::kText:
      return "TEXT";
    case SearchOp::kTo:
      return "TO";
    case SearchOp::kHeader:
      return "HEADER";
    case SearchOp::kBefore:
      return "BEFORE";
    case SearchOp::kOn:
      return "ON";
    case SearchOp::kSince:
      return "SINCE";
    case SearchOp::kSentBefore:
      return "SENTBEFORE";
    case SearchOp::kSentOn:
      return "SENTON";
    case SearchOp::kSentSince:
      return "SENTSINCE";
    case SearchOp::kSavedBefore:
      return "SAVEDBEFORE";
    case SearchOp::kSavedOn:
      return "SAVEDON";
    case SearchOp::kSavedSince:
      return "SAVEDSINCE";
    case SearchOp::kSaveDateSupported:
      return "SAVEDATESUPPORTED";
    case SearchOp::kLarger:
      return "LARGER";
    case SearchOp::kSmaller:
      return "SMALLER";
    case SearchOp::kModSeq:
      return "MODSEQ";
    case SearchOp::kEmailId:
      return "EMAILID";
    case SearchOp::kThreadId:
      return "THREADID";
    case SearchOp::kUid:
      return "UID";
    case SearchOp::kNot:
      return "NOT";
    case SearchOp::kOr:
      return "OR";
    case SearchOp::kAnd:
    case SearchOp::kSequenceSet:
      return "";
  }
  return "";
}

void AppendSearchKey(std::string& out, const SearchKey& k) {
  switch (k.op) {
    case SearchOp::kAnd:
      out += '(';
      for (size_t i = 0; i < k.children.size(); ++i) {
        if (i > 0) out += ' ';
        AppendSearchKey(out, k.children[i]);
      }
      out += ')';
      return;
    case SearchOp::kSequenceSet:
      AppendSet(out, k.set);
      return;
    default:
      break;
  }
  out += SearchOpName(k.op);
  switch (k.op) {
    case SearchOp::kKeyword:
    case SearchOp::kUnkeyword:
    case SearchOp::kEmailId:
    case SearchOp::kThreadId:
      out += ' ';
      out += k.text;
      break;
    case SearchOp::kBcc:
    case SearchOp::kBody:
    case SearchOp::kCc:
    case SearchOp::kFrom:
    case SearchOp::kSubject:
    case SearchOp::kText:
    case SearchOp::kTo:
      out += ' ';
      AppendAstring(out, k.text);
      break;
    case SearchOp::kHeader:
      out += ' ';
      AppendAstring(out, k.field);
      out += ' ';
      AppendAstring(out, k.text);
      break;
    case SearchOp::kBefore:
    case SearchOp::kOn:
    case SearchOp::kSince:
    case SearchOp::kSentBefore:
    case SearchOp::kSentOn:
    case SearchOp::kSentSince:
    case SearchOp::kSavedBefore:
    case SearchOp::kSavedOn:
    case SearchOp::kSavedSince:
      out += ' ';
      out += FormatDate(k.date);
      break;
    case SearchOp::kLarger:
    case SearchOp::kSmaller:
      out += ' ';
      out += std::to_string(k.number);
      break;
    case SearchOp::kModSeq:
      if (!k.field.empty()) {
        // entry-flag-name is always a quoted string (RFC 7162 section 7).
        out += " \"";
        for (char ch : k.field) {
          if (ch == '"' || ch == '\\') out += '\\';
          out += ch;
        }
        out += "\" ";
        out += k.entry_type;
      }
      out += ' ';
      out += std::to_string(k.number);
      break;
    case SearchOp::kUid:
      out += ' ';
      AppendSet(out, k.set);
      break;
    case SearchOp::kNot:
    case SearchOp::kOr:
      for (const SearchKey& c : k.children) {
        out += ' ';
        AppendSearchKey(out, c);
      }
      break;
    default:
      break;
  }
}

const char* FetchAttName(const FetchItem& it) {
  switch (it.att) {
    case FetchAtt::kEnvelope:
      return "ENVELOPE";
    case FetchAtt::kFlags:
      return "FLAGS";
    case FetchAtt::kInternalDate:
      return "INTERNALDATE";
    case FetchAtt::kRfc822:
      return "RFC822";
    case FetchAtt::kRfc822Header:
      return "RFC822.HEADER";
    case FetchAtt::kRfc822Size:
      return "RFC822.SIZE";
    case FetchAtt::kRfc822Text:
      return "RFC822.TEXT";
    case FetchAtt::kBody:
      return "BODY";
    case FetchAtt::kBodyStructure:
      return "BODYSTRUCTURE";
    case FetchAtt::kUid:
      return "UID";
    case FetchAtt::kModSeq:
      return "MODSEQ";
    case FetchAtt::kBodySection:
      return it.peek ? "BODY.PEEK" : "BODY";
    case FetchAtt::kBinary:
      return it.peek ? "BINARY.PEEK" : "BINARY";
    case FetchAtt::kBinarySize:
      return "BINARY.SIZE";
    case FetchAtt::kPreview:
      return "PREVIEW";
    case FetchAtt::kEmailId:
      return "EMAILID";
    case FetchAtt::kThreadId:
      return "THREADID";
    case FetchAtt::kSaveDate:
      return "SAVEDATE";
  }
  return "?";
}

void AppendFlags(std::string& out, const std::vector<std::string>& flags) {
  AppendFlagList(out, flags);
}

// "(" fetch-att *(SP fetch-att) ")" (RFC 3501 section 9).
void AppendFetchItems(std::string& out, const std::vector<FetchItem>& items) {
  out += '(';
  for (size_t i = 0; i < items.size(); ++i) {
    const FetchItem& it = items[i];
    if (i > 0) out += ' ';
    out += FetchAttName(it);
    if (it.att == FetchAtt::kPreview && it.peek) out += " (LAZY)";
    if (it.att == FetchAtt::kBodySection || it.att == FetchAtt::kBinary ||
        it.att == FetchAtt::kBinarySize) {
      out += '[' + it.section.canonical + ']';
    }
    if (it.partial) {
      out +=
          '<' + std::to_string(it.partial->offset) + '.' + std::to_string(it.partial->count) + '>';
    }
  }
  out += ')';
}

// NOTIFY's arguments (RFC 5465 section 8).
void AppendNotify(std::string& out, const NotifyArgs& a) {
  if (a.none) {
    out += " NONE";
    return;
  }
  out += a.status ? " SET STATUS" : " SET";
  static constexpr const char* kFilters[] = {
      "SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"};
  for (const NotifyGroup& g : a.groups) {
    out += " (";
    out += kFilters[static_cast<int>(g.filter)];
    if (g.filter == NotifyFilter::kSubtree || g.filter == NotifyFilter::kMailboxes) {
      out += " (";
      for (size_t i = 0; i < g.mailboxes.size(); ++i) {
        if (i > 0) out += ' ';
        AppendAstring(out, g.mailboxes[i]);
      }
      out += ')';
    }
    if (g.events.empty() && g.unknown.empty()) {
      out += " NONE)";
      continue;
    }
    char sep = '(';
    out += ' ';
    for (NotifyEvent e : g.events) {
      out += sep;
      sep = ' ';
      out += NotifyEventName(e);
      if (e == NotifyEvent::kMessageNew && !g.fetch.empty()) {
        out += ' ';
        AppendFetchItems(out, g.fetch);
      }
    }
    for (const std::string& e : g.unknown) {
      out += sep;
      sep = ' ';
      out += e;
    }
    out += "))";
  }
}

void AppendArguments(std::string& out, const Command& c) {
  switch (c.verb) {
    case Verb::kAuthenticate: {
      const auto& a = c.As<AuthenticateArgs>();
      out += ' ' + a.mechanism;
      if (a.initial_response) out += ' ' + *a.initial_response;
      break;
    }
    case Verb::kLogin: {
      const auto& a = c.As<LoginArgs>();
      out += ' ';
      AppendAstring(out, a.user);
      out += ' ';
      AppendAstring(out, a.password);
      break;
    }
    case Verb::kSelect:
    case Verb::kExamine: {
      const auto& a = c.As<SelectArgs>();
      out += ' ';
      AppendAstring(out, a.mailbox);
      if (!a.condstore && !a.qresync) break;
      out += " (";
      if (a.condstore) out += "CONDSTORE";
      if (a.qresync) {
        const QresyncParams& q = *a.qresync;
        if (a.condstore) out += ' ';
        out += "QRESYNC (" + std::to_string(q.uidvalidity) + ' ' + std::to_string(q.modseq);
        if (q.known_uids) out += ' ' + q.known_uids->ToString();
        if (q.known_seqs) {
          out += " (" + q.known_seqs->ToString() + ' ' + q.known_seq_uids->ToString() + ')';
        }
        out += ')';
      }
      out += ')';
      break;
    }
    case Verb::kCreate: {
      const auto& a = c.As<CreateArgs>();
      out += ' ';
      AppendAstring(out, a.mailbox);
      if (!a.special_use.empty()) {
        out += " (USE ";
        AppendFlags(out, a.special_use);
        out += ')';
      }
      break;
    }
    case Verb::kDelete:
    case Verb::kSubscribe:
    case Verb::kUnsubscribe:
    case Verb::kGetQuotaRoot:
      out += ' ';
      AppendAstring(out, c.As<MailboxArgs>().mailbox);
      break;
    case Verb::kGetQuota:
      out += ' ';
      AppendAstring(out, c.As<QuotaRootArgs>().root);
      break;
    case Verb::kGetMetadata: {
      const auto& a = c.As<GetMetadataArgs>();
      if (a.max_size || a.depth != 0) {
        out += " (";
        if (a.max_size) out += "MAXSIZE " + std::to_string(*a.max_size);
        if (a.depth != 0) {
          out += std::string(a.max_size ? " " : "") + "DEPTH " +
                 (a.depth < 0 ? "infinity" : std::to_string(a.depth));
        }
        out += ')';
      }
      out += ' ';
      AppendAstring(out, a.mailbox);
      out += " (";
      for (size_t i = 0; i < a.entries.size(); ++i) {
        if (i > 0) out += ' ';
        AppendAstring(out, a.entries[i]);
      }
      out += ')';
      break;
    }
    case Verb::kResetKey: {
      const auto& a = c.As<ResetKeyArgs>();
      if (a.mailbox) {
        out += ' ';
        AppendAstring(out, *a.mailbox);
        for (const auto& m : a.mechanisms) out += ' ' + m;
      }
      break;
    }
    case Verb::kGenUrlAuth:
      for (const auto& [url, mechanism] : c.As<GenUrlAuthArgs>().urls) {
        out += ' ';
        AppendAstring(out, url);
        out += ' ' + mechanism;
      }
      break;
    case Verb::kNotify:
      AppendNotify(out, c.As<NotifyArgs>());
      break;
    case Verb::kCancelUpdate:
      for (const auto& tag : c.As<CancelUpdateArgs>().tags) {
        out += ' ';
        AppendString(out, tag);  // always quoted (RFC 5267 section 5)
      }
      break;
    case Verb::kUrlFetch:
      for (const auto& url : c.As<UrlFetchArgs>().urls) {
        out += ' ';
        AppendAstring(out, url);
      }
      break;
    case Verb::kSetMetadata: {
      const auto& a = c.As<SetMetadataArgs>();
      out += ' ';
      AppendAstring(out, a.mailbox);
      out += " (";
      for (size_t i = 0; i < a.entries.size(); ++i) {
        if (i > 0) out += ' ';
        AppendAstring(out, a.entries[i].first);
        out += ' ';
        const auto& v = a.entries[i].second;
        if (v && v->find('\0') != std::string::npos) {
          out += "~{" + std::to_string(v->size()) + "}\r\n" + *v;
        } else {
          AppendNString(out, v ? std::optional<std::string_view>(*v) : std::nullopt);
        }
      }
      out += ')';
      break;
    }
    case Verb::kSetQuota: {
      const auto& a = c.As<SetQuotaArgs>();
      out += ' ';
      AppendAstring(out, a.root);
      out += " (";
      for (size_t i = 0; i < a.limits.size(); ++i) {
        if (i > 0) out += ' ';
        out += a.limits[i].first + ' ' + std::to_string(a.limits[i].second);
      }
      out += ')';
      break;
    }
    case Verb::kRename: {
      const auto& a = c.As<RenameArgs>();
      out += ' ';
      AppendAstring(out, a.from);
      out += ' ';
      AppendAstring(out, a.to);
      break;
    }
    case Verb::kList:
    case Verb::kLsub: {
      const auto& a = c.As<ListArgs>();
      std::vector<const char*> sel;
      if (a.select_subscribed) sel.push_back("SUBSCRIBED");
      if (a.select_remote) sel.push_back("REMOTE");
      if (a.select_recursive_match) sel.push_back("RECURSIVEMATCH");
      if (a.select_special_use) sel.push_back("SPECIAL-USE");
      out += ' ';
      if (a.extended && c.verb == Verb::kList) {
        out += '(';
        for (size_t i = 0; i < sel.size(); ++i) out += std::string(i ? " " : "") + sel[i];
        out += ") ";
      }
      AppendAstring(out, a.reference);
      out += ' ';
      bool paren = a.extended && c.verb == Verb::kList;
      if (paren) out += '(';
      for (size_t i = 0; i < a.patterns.size(); ++i) {
        if (i > 0) out += ' ';
        AppendListMailbox(out, a.patterns[i]);
      }
      if (paren) out += ')';
      if (a.extended && c.verb == Verb::kList) {
        std::vector<std::string> ret;
        if (a.return_subscribed) ret.push_back("SUBSCRIBED");
        if (a.return_children) ret.push_back("CHILDREN");
        if (a.return_special_use) ret.push_back("SPECIAL-USE");
        if (a.return_status) {
          std::string s = "STATUS ";
          AppendStatusItems(s, *a.return_status);
          ret.push_back(s);
        }
        out += " RETURN (";
        for (size_t i = 0; i < ret.size(); ++i) out += (i ? " " : "") + ret[i];
        out += ')';
      }
      break;
    }
    case Verb::kStatus: {
      const auto& a = c.As<StatusArgs>();
      out += ' ';
      AppendAstring(out, a.mailbox);
      out += ' ';
      AppendStatusItems(out, a.items);
      break;
    }
    case Verb::kAppend: {
      const auto& a = c.As<AppendArgs>();
      out += ' ';
      AppendAstring(out, a.mailbox);
      if (!a.flags.empty()) {
        out += ' ';
        AppendFlags(out, a.flags);
      }
      if (a.date_time) out += " \"" + FormatDateTime(*a.date_time) + '"';
      AppendData(out, a.message, a.catenate);
      for (const AppendMessage& m : a.more) {
        if (!m.flags.empty()) {
          out += ' ';
          AppendFlags(out, m.flags);
        }
        if (m.date_time) out += " \"" + FormatDateTime(*m.date_time) + '"';
        AppendData(out, m.message, m.catenate);
      }
      break;
    }
    case Verb::kId: {
      const auto& a = c.As<IdArgs>();
      if (!a.params) {
        out += " NIL";
        break;
      }
      out += " (";
      for (size_t i = 0; i < a.params->size(); ++i) {
        if (i > 0) out += ' ';
        AppendStr(out, (*a.params)[i].first);
        out += ' ';
        if ((*a.params)[i].second) {
          AppendStr(out, *(*a.params)[i].second);
        } else {
          out += "NIL";
        }
      }
      out += ')';
      break;
    }
    case Verb::kEnable:
      for (const std::string& cap : c.As<EnableArgs>().capabilities) out += ' ' + cap;
      break;
    case Verb::kCompress:
      out += ' ' + c.As<CompressArgs>().mechanism;
      break;
    case Verb::kExpunge:
      if (c.uid) out += ' ' + c.As<ExpungeArgs>().set.ToString();
      break;
    case Verb::kSearch:
    case Verb::kSort:
    case Verb::kThread: {
      const auto& a = c.As<SearchArgs>();
      if (c.verb == Verb::kThread) {
        out += a.thread == ThreadAlgorithm::kReferences ? " REFERENCES" : " ORDEREDSUBJECT";
      }
      if (a.esearch) {
        std::vector<const char*> r;
        if (a.return_min) r.push_back("MIN");
        if (a.return_max) r.push_back("MAX");
        if (a.return_all) r.push_back("ALL");
        if (a.return_count) r.push_back("COUNT");
        if (a.return_save) r.push_back("SAVE");
        if (a.return_update) r.push_back("UPDATE");
        if (a.return_context) r.push_back("CONTEXT");
        out += " RETURN (";
        for (size_t i = 0; i < r.size(); ++i) out += std::string(i ? " " : "") + r[i];
        if (a.partial) {
          out += std::string(r.empty() ? "" : " ") + "PARTIAL " + std::to_string(a.partial->first) +
                 ':' + std::to_string(a.partial->second);
        }
        out += ')';
      }
      if (c.verb == Verb::kSort) {
        out += " (";
        for (size_t i = 0; i < a.sort.size(); ++i) {
          if (i > 0) out += ' ';
          if (a.sort[i].reverse) out += "REVERSE ";
          out += SortFieldName(a.sort[i].field);
        }
        out += ')';
      }
      if (a.charset) {
        out += c.verb == Verb::kSearch ? " CHARSET " : " ";
        AppendAstring(out, *a.charset);
      }
      for (const SearchKey& k : a.key.children) {
        out += ' ';
        AppendSearchKey(out, k);
      }
      break;
    }
    case Verb::kFetch: {
      const auto& a = c.As<FetchArgs>();
      out += ' ' + a.set.ToString() + ' ';
      AppendFetchItems(out, a.items);
      if (a.changed_since || a.partial) {
        out += " (";
        if (a.changed_since) {
          out += "CHANGEDSINCE " + std::to_string(*a.changed_since);
          if (a.vanished) out += " VANISHED";
        }
        if (a.partial) {
          out += std::string(a.changed_since ? " " : "") + "PARTIAL " +
                 std::to_string(a.partial->first) + ':' + std::to_string(a.partial->second);
        }
        out += ')';
      }
      break;
    }
    case Verb::kStore: {
      const auto& a = c.As<StoreArgs>();
      out += ' ' + a.set.ToString();
      if (a.unchanged_since) out += " (UNCHANGEDSINCE " + std::to_string(*a.unchanged_since) + ')';
      out += a.mode == StoreMode::kAdd      ? " +FLAGS"
             : a.mode == StoreMode::kRemove ? " -FLAGS"
                                            : " FLAGS";
      if (a.silent) out += ".SILENT";
      out += ' ';
      AppendFlags(out, a.flags);
      break;
    }
    case Verb::kCopy:
    case Verb::kMove: {
      const auto& a = c.As<CopyArgs>();
      out += ' ' + a.set.ToString() + ' ';
      AppendAstring(out, a.mailbox);
      break;
    }
    default:
      break;
  }
}

}  // namespace

std::string FormatCommand(const Command& c) {
  std::string out = c.tag;
  out += c.uid ? " UID " : " ";
  out += VerbName(c.verb);
  AppendArguments(out, c);
  return out;
}

}  // namespace hato::imap
