#include "app/list_cli.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <map>

#include "app/open_store.h"
#include "app/serve.h"
#include "base/log.h"
#include "base/strings.h"
#include "dns/blocking_lookup.h"
#include "io/fs.h"
#include "lists/engine.h"
#include "lists/proto.h"
#include "msgauth/dmarc.h"
#include "msgauth/keyring.h"
#include "smtp/address.h"
#include "store/store.h"

namespace hato::app {
namespace {

int Fail(const std::string& msg) {
  std::cerr << "hato: " << msg << "\n";
  return 1;
}

std::string Json(std::string_view s) { return "\"" + JsonEscape(s) + "\""; }

Result<std::string> Canonical(const std::string& addr) {
  auto m = smtp::ParseMailbox(addr, true);
  if (!m) return Err(ErrorKind::kInvalid, "invalid address '" + addr + "': " + m.error().message);
  return smtp::AccountKey(*m);
}

std::string StateName(store::RecipientState s, bool attempted) {
  switch (s) {
    case store::RecipientState::kDelivered:
      return "delivered";
    case store::RecipientState::kFailed:
      return "failed";
    default:
      return attempted ? "deferred" : "queued";
  }
}

uint32_t ParseRoles(const std::string& text) {
  uint32_t roles = 0;
  for (auto w : SplitWords(text)) {
    for (size_t b = 0, e; b <= w.size(); b = e + 1) {
      e = w.find('|', b);
      if (e == std::string_view::npos) e = w.size();
      std::string_view r = w.substr(b, e - b);
      if (r == "member") roles |= store::kListReceives;
      if (r == "owner") roles |= store::kListOwner;
      if (r == "moderator") roles |= store::kListModerator;
    }
  }
  return roles == 0 ? store::kListReceives : roles;
}

std::string RoleNames(uint32_t roles) {
  std::string out;
  auto add = [&](const char* n) { out += out.empty() ? n : std::string("|") + n; };
  if (roles & store::kListReceives) add("member");
  if (roles & store::kListOwner) add("owner");
  if (roles & store::kListModerator) add("moderator");
  return out;
}

}  // namespace

struct ListCli::Opts {
  CLI::App *create, *remove, *show, *ls, *set, *m_add, *m_remove, *m_list, *m_import, *m_export,
      *m_set, *posts, *report, *moderate;
  std::string list, mode = "discussion", name, confirm_file, welcome_file, dmarc, file, delivery;
  std::vector<std::string> addrs;
  std::string addr;
  uint64_t max_size = 0;
  int64_t max_posts = -1, bounce_threshold = -1, post = 0, approve = 0, reject = 0;
  bool owner = false, moderator = false, no_receive = false, verbose = false, update = false,
       json = false, enable = false;
};

ListCli::ListCli(CLI::App& app, std::string& data) : o_(std::make_unique<Opts>()), data_(data) {
  Opts& o = *o_;
  auto* list = app.add_subcommand("list", "mailing lists and broadcast groups");
  list->require_subcommand(1);
  auto with_list = [&](CLI::App* c) {
    c->add_option("LIST", o.list, "the list address, LIST@DOMAIN")->required();
    c->add_option("--data", data, "data directory")->capture_default_str();
  };
  o.create = list->add_subcommand("create", "create a list");
  with_list(o.create);
  o.create->add_option("--mode", o.mode, "discussion (members post) or announce (owners post)")
      ->capture_default_str();
  o.remove = list->add_subcommand("remove", "remove a list (queued deliveries are cancelled)");
  with_list(o.remove);
  o.show = list->add_subcommand("show", "a list's settings");
  with_list(o.show);
  o.ls = list->add_subcommand("ls", "all lists");
  o.ls->add_option("--data", data, "data directory")->capture_default_str();
  o.set = list->add_subcommand("set", "change a list's settings");
  with_list(o.set);
  o.set->add_option("--mode", o.mode, "discussion or announce");
  o.set->add_option("--name", o.name, "display name");
  o.set->add_option("--confirm-text-file", o.confirm_file,
                    "UTF-8 text of the join confirmation ({list}, {address} replaced)");
  o.set->add_option("--welcome-text-file", o.welcome_file, "UTF-8 text of the welcome mail");
  o.set->add_option("--max-message-size", o.max_size, "bytes (0 = [lists] default)");
  o.set->add_option("--max-posts-per-hour", o.max_posts, "0 = [lists] default");
  o.set->add_option("--bounce-threshold", o.bounce_threshold,
                    "bounces before a member is disabled");
  o.set->add_option("--dmarc-rewrite", o.dmarc, "auto, always or never");

  auto* members = list->add_subcommand("members", "a list's members");
  members->require_subcommand(1);
  o.m_add = members->add_subcommand("add", "add members (no confirmation asked)");
  with_list(o.m_add);
  o.m_add->add_option("ADDRESS", o.addrs)->required();
  o.m_add->add_flag("--owner", o.owner, "as owners (may post to announce lists, moderate)");
  o.m_add->add_flag("--moderator", o.moderator, "as moderators");
  o.m_add->add_flag("--no-receive", o.no_receive, "owners/moderators who get no posts");
  o.m_remove = members->add_subcommand("remove", "remove members");
  with_list(o.m_remove);
  o.m_remove->add_option("ADDRESS", o.addrs)->required();
  o.m_list = members->add_subcommand("list", "the members, one address a line");
  with_list(o.m_list);
  o.m_list->add_flag("--verbose,-v", o.verbose, "with roles, delivery and bounce score");
  o.m_import = members->add_subcommand(
      "import", "add members from a CSV file (address,name,roles); all or nothing per file");
  with_list(o.m_import);
  o.m_import->add_option("FILE", o.file, "CSV file, - for standard input")->required();
  o.m_import->add_flag("--update", o.update, "update names and roles of existing members");
  o.m_export = members->add_subcommand("export", "the members as CSV (address,name,roles)");
  with_list(o.m_export);
  o.m_set = members->add_subcommand("set", "a member's settings");
  with_list(o.m_set);
  o.m_set->add_option("ADDRESS", o.addr)->required();
  o.m_set->add_option("--delivery", o.delivery, "on or off");
  o.m_set->add_flag("--enable", o.enable, "enable again after bounces (score cleared)");

  o.posts = list->add_subcommand("posts", "the list's posts");
  with_list(o.posts);
  o.report = list->add_subcommand("report", "delivery report of a post (the latest by default)");
  with_list(o.report);
  o.report->add_option("--post", o.post, "post id (hato list posts)");
  o.report->add_flag("--json", o.json, "as JSON");
  o.moderate = list->add_subcommand("moderate", "held posts; approve or reject one");
  with_list(o.moderate);
  auto* ap = o.moderate->add_option("--approve", o.approve, "held post id to send");
  o.moderate->add_option("--reject", o.reject, "held post id to drop")->excludes(ap);
}

ListCli::~ListCli() = default;

int ListCli::Run() {
  Opts& o = *o_;
  std::vector<CLI::App*> all = {o.create, o.remove,   o.show,   o.ls,       o.set,
                                o.m_add,  o.m_remove, o.m_list, o.m_import, o.m_export,
                                o.m_set,  o.posts,    o.report, o.moderate};
  bool any = false;
  for (auto* c : all) any = any || c->parsed();
  if (!any) return -1;
  auto cfg = LoadConfig(data_);
  if (!cfg) return Fail(cfg.error().message);
  store::StoreOptions so;
  so.compress = cfg->store_compress;
  // The store the configuration names (embedded or PostgreSQL).
  auto opened = OpenConfiguredStore(*cfg, data_, so);
  if (!opened) return Fail(opened.error().message);
  store::Store& s = **opened;

  if (o.ls->parsed()) {
    auto lists = s.ListLists();
    if (!lists) return Fail(lists.error().message);
    for (const auto& l : *lists) {
      std::cout << l.address << "\t"
                << (l.mode == store::ListMode::kAnnounce ? "announce" : "discussion") << "\t"
                << l.members << " members\n";
    }
    return 0;
  }
  auto list_addr = Canonical(o.list);
  if (!list_addr) return Fail(list_addr.error().message);
  if (o.create->parsed()) {
    if (o.mode != "discussion" && o.mode != "announce")
      return Fail("--mode must be discussion or announce");
    auto st = s.CreateList(*list_addr, o.mode == "announce" ? store::ListMode::kAnnounce
                                                            : store::ListMode::kDiscussion);
    if (!st) return Fail(st.error().message);
    std::cout << "created list " << *list_addr << " (" << o.mode << ")\n";
    return 0;
  }
  if (o.remove->parsed()) {
    if (auto st = s.RemoveList(*list_addr); !st) return Fail(st.error().message);
    std::cout << "removed list " << *list_addr << "\n";
    return 0;
  }
  auto list = s.FindList(*list_addr);
  if (!list) return Fail(list.error().message);
  if (o.show->parsed()) {
    std::cout << "address: " << list->address << "\nmode: "
              << (list->mode == store::ListMode::kAnnounce ? "announce" : "discussion")
              << "\nname: " << list->name << "\nmembers: " << list->members
              << "\nmax_message_size: " << list->max_message_size
              << "\nmax_posts_per_hour: " << list->max_posts_per_hour
              << "\nbounce_threshold: " << list->bounce_threshold
              << "\ndmarc_rewrite: " << list->dmarc_rewrite << "\n";
    return 0;
  }
  if (o.set->parsed()) {
    store::ListSettings st;
    if (o.set->count("--mode")) {
      if (o.mode != "discussion" && o.mode != "announce")
        return Fail("--mode must be discussion or announce");
      st.mode = o.mode == "announce" ? store::ListMode::kAnnounce : store::ListMode::kDiscussion;
    }
    if (o.set->count("--name")) st.name = o.name;
    for (auto [flag, file, field] :
         {std::tuple{"--confirm-text-file", &o.confirm_file, &st.confirm_text},
          std::tuple{"--welcome-text-file", &o.welcome_file, &st.welcome_text}}) {
      if (!o.set->count(flag)) continue;
      auto text = io::FileSystem::Default()->ReadFile(*file);
      if (!text) return Fail(text.error().message);
      if (!IsValidUtf8(*text)) return Fail(*file + " is not UTF-8");
      *field = *text;
    }
    if (o.set->count("--max-message-size")) st.max_message_size = o.max_size;
    if (o.set->count("--max-posts-per-hour"))
      st.max_posts_per_hour = static_cast<uint32_t>(o.max_posts);
    if (o.set->count("--bounce-threshold"))
      st.bounce_threshold = static_cast<uint32_t>(o.bounce_threshold);
    if (o.set->count("--dmarc-rewrite")) {
      if (o.dmarc != "auto" && o.dmarc != "always" && o.dmarc != "never")
        return Fail("--dmarc-rewrite must be auto, always or never");
      st.dmarc_rewrite = o.dmarc;
    }
    if (auto r = s.UpdateList(*list_addr, st); !r) return Fail(r.error().message);
    std::cout << "updated " << *list_addr << "\n";
    return 0;
  }
  if (o.m_add->parsed()) {
    std::vector<store::ListMember> ms;
    uint32_t roles = o.no_receive ? 0u : static_cast<uint32_t>(store::kListReceives);
    if (o.owner) roles |= store::kListOwner;
    if (o.moderator) roles |= store::kListModerator;
    if (roles == 0) return Fail("--no-receive needs --owner or --moderator");
    for (const auto& a : o.addrs) {
      auto c = Canonical(a);
      if (!c) return Fail(c.error().message);
      store::ListMember m;
      m.address = *c;
      m.roles = roles;
      ms.push_back(std::move(m));
    }
    auto change = s.AddListMembers(list->id, std::move(ms), o.owner || o.moderator);
    if (!change) return Fail(change.error().message);
    for (const auto& e : change->existing) std::cout << "already a member: " << e << "\n";
    std::cout << "added " << change->added << " members to " << list->address << "\n";
    return 0;
  }
  if (o.m_remove->parsed()) {
    int rc = 0;
    for (const auto& a : o.addrs) {
      auto c = Canonical(a);
      if (!c) return Fail(c.error().message);
      if (auto st = s.RemoveListMember(list->id, *c); !st) {
        rc = Fail(st.error().message);
      } else {
        std::cout << "removed " << *c << "\n";
      }
    }
    return rc;
  }
  if (o.m_list->parsed() || o.m_export->parsed()) {
    auto ms = s.ListListMembers(list->id);
    if (!ms) return Fail(ms.error().message);
    if (o.m_export->parsed()) std::cout << "address,name,roles\r\n";
    for (const auto& m : *ms) {
      if (o.m_export->parsed()) {
        std::cout << lists::CsvField(m.address) << "," << lists::CsvField(m.name) << ","
                  << RoleNames(m.roles) << "\r\n";
      } else if (o.verbose) {
        std::cout << m.address << "\t" << RoleNames(m.roles) << "\t"
                  << (m.delivery ? "delivery" : "no-delivery") << "\t"
                  << (m.disabled ? "disabled" : "enabled") << "\tbounces=" << m.bounce_score
                  << (m.last_bounce.empty() ? "" : "\t" + m.last_bounce) << "\n";
      } else if (m.roles & store::kListReceives) {
        std::cout << m.address << "\n";
      }
    }
    return 0;
  }
  if (o.m_import->parsed()) {
    Result<std::string> text = std::string();
    if (o.file == "-") {
      text = std::string(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      text = io::FileSystem::Default()->ReadFile(o.file);
    }
    if (!text) return Fail(text.error().message);
    lists::CsvResult csv = lists::ParseMembersCsv(*text);
    for (const auto& e : csv.errors) {
      std::cerr << o.file << ":" << e.line << ": " << e.message << "\n";
    }
    std::vector<store::ListMember> ms;
    for (const auto& c : csv.members) {
      store::ListMember m;
      m.address = c.address;
      m.name = c.name;
      m.roles = ParseRoles(c.roles);
      ms.push_back(std::move(m));
    }
    // One transaction: the valid lines all go in, or none (a failure leaves nothing half-done).
    auto change = s.AddListMembers(list->id, std::move(ms), o.update);
    if (!change) return Fail("nothing imported: " + change.error().message);
    std::cout << "imported " << change->added << " new members";
    if (o.update) std::cout << ", updated " << change->updated;
    std::cout << ", " << change->existing.size() - (o.update ? change->updated : 0)
              << " already members, " << csv.errors.size() << " lines with errors\n";
    return csv.errors.empty() ? 0 : 3;
  }
  if (o.m_set->parsed()) {
    auto c = Canonical(o.addr);
    if (!c) return Fail(c.error().message);
    std::optional<bool> delivery;
    if (!o.delivery.empty()) {
      if (o.delivery != "on" && o.delivery != "off") return Fail("--delivery must be on or off");
      delivery = o.delivery == "on";
    }
    if (auto st = s.SetListMemberDelivery(list->id, *c, delivery, o.enable); !st)
      return Fail(st.error().message);
    std::cout << "updated " << *c << "\n";
    return 0;
  }
  if (o.posts->parsed()) {
    auto posts = s.ListPosts(list->id);
    if (!posts) return Fail(posts.error().message);
    for (const auto& p : *posts) {
      std::cout << p.id << "\t" << p.created_at << "\t" << p.recipients << " recipients\t"
                << p.sender << "\t" << p.subject << "\n";
    }
    return 0;
  }
  if (o.report->parsed()) {
    auto rep = s.ListPostReport(list->id, o.post);
    if (!rep) return Fail(rep.error().message);
    std::map<std::string, uint64_t> totals;
    for (const auto& l : rep->lines) {
      std::string name = StateName(l.state, l.attempted);
      if (name == "queued") name = "deferred";  // not delivered yet
      totals[name] += l.count;
    }
    if (o.json) {
      std::cout << "{\"list\":" << Json(list->address) << ",\"post\":" << rep->post.id
                << ",\"sender\":" << Json(rep->post.sender)
                << ",\"subject\":" << Json(rep->post.subject)
                << ",\"created_at\":" << rep->post.created_at
                << ",\"recipients\":" << rep->post.recipients
                << ",\"delivered\":" << totals["delivered"]
                << ",\"deferred\":" << totals["deferred"] << ",\"failed\":" << totals["failed"]
                << ",\"domains\":[";
      for (size_t i = 0; i < rep->lines.size(); ++i) {
        const auto& l = rep->lines[i];
        std::cout << (i ? "," : "") << "{\"domain\":" << Json(l.domain)
                  << ",\"state\":" << Json(StateName(l.state, l.attempted))
                  << ",\"count\":" << l.count << ",\"reason\":" << Json(l.reason)
                  << ",\"addresses\":[";
        for (size_t j = 0; j < l.addresses.size(); ++j)
          std::cout << (j ? "," : "") << Json(l.addresses[j]);
        std::cout << "]}";
      }
      std::cout << "]}\n";
      return 0;
    }
    std::cout << "post " << rep->post.id << " from " << rep->post.sender << ": "
              << rep->post.subject << "\nrecipients: " << rep->post.recipients
              << "\ndelivered: " << totals["delivered"] << "\ndeferred: " << totals["deferred"]
              << "\nfailed: " << totals["failed"] << "\n";
    for (const auto& l : rep->lines) {
      std::cout << "  " << l.domain << "\t" << StateName(l.state, l.attempted) << "\t" << l.count
                << (l.reason.empty() ? "" : "\t" + l.reason) << "\n";
      for (const auto& a : l.addresses) std::cout << "    " << a << "\n";
    }
    return 0;
  }
  if (o.moderate->parsed()) {
    if (o.approve == 0 && o.reject == 0) {
      auto held = s.ListHeldPosts(list->id);
      if (!held) return Fail(held.error().message);
      for (const auto& h : *held) {
        std::cout << h.id << "\t" << h.created_at << "\t" << h.size << " bytes\t" << h.sender
                  << "\t" << h.reason << "\n";
      }
      return 0;
    }
    // Approval fans out like the server: signed with the list domain's key,
    // the poster's DMARC policy looked up for the From rewrite.
    auto keyring = msgauth::KeyRing::Load(*io::FileSystem::Default(), data_ + "/dkim");
    if (!keyring) return Fail(keyring.error().message);
    auto shared_cfg = std::make_shared<const config::Config>(*cfg);
    lists::EngineOptions eo;
    eo.store = &s;
    eo.config = [shared_cfg] { return shared_cfg; };
    eo.sign = [&keyring](const std::string& domain, std::string_view message) {
      return keyring->SignatureAs(domain, message, std::time(nullptr));
    };
    dns::LookupOptions lo;
    lo.forward_to = cfg->outbound.resolver;
    auto lookup = dns::OpenSharedLookup(lo);
    if (lookup) {
      eo.dmarc_policy = [shared = *lookup, shared_cfg](const std::string& domain) {
        dns::BudgetLookup budget(shared,
                                 std::chrono::seconds(shared_cfg->msgauth.check_timeout_seconds));
        msgauth::DmarcInput in;
        in.from_domain = domain;
        msgauth::DmarcOutcome out = msgauth::CheckDmarc(budget, in);
        if (out.record_domain.empty() || out.status == msgauth::DmarcStatus::kTempError ||
            out.status == msgauth::DmarcStatus::kNone) {
          return std::string();
        }
        return std::string(msgauth::DmarcPolicyName(out.requested));
      };
    }
    lists::Engine engine(std::move(eo));
    bool approve = o.approve != 0;
    int64_t id = approve ? o.approve : o.reject;
    if (auto st = engine.Moderate(*list, id, approve); !st) return Fail(st.error().message);
    std::cout << (approve ? "approved" : "rejected") << " held post " << id << "\n";
    return 0;
  }
  return -1;
}

}  // namespace hato::app
