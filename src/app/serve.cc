#include "app/serve.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <limits>
#include <thread>

#include "acme/client.h"
#include "app/data_lock.h"
#include "app/http_routes.h"
#include "app/inbound_check.h"
#include "app/open_store.h"
#include "app/status_cli.h"
#include "app/tls.h"
#include "auth/penalty.h"
#include "auth/scram.h"
#include "base/log.h"
#include "base/strings.h"
#include "http/server.h"
#include "imap/server/server.h"
#include "io/asio.h"
#include "io/fault_fs.h"
#include "io/fs.h"
#include "jmap/mail.h"
#include "lists/engine.h"
#include "managesieve/server.h"
#include "metrics/exporter.h"
#include "metrics/server_metrics.h"
#include "msgauth/dmarc.h"
#include "msgauth/keyring.h"
#include "outbound/queue.h"
#include "outbound/srs.h"
#include "pop3/server.h"
#include "reports/send.h"
#include "scan/trainer.h"
#include "search/extract.h"
#include "server/event_loops.h"
#include "server/services.h"
#include "smtp/server.h"
#include "web/audit.h"
#include "web/figures.h"
#include "web/watchdog.h"

namespace hato::app {
namespace {

constexpr int kPurgeIntervalSeconds = 3600;
// How often the daily reports (reports/send.h) are looked for.
constexpr std::chrono::minutes kReportCheckInterval{60};
// SORT/THREAD key records for bodies stored before they were kept
// (Store::BackfillSortKeys): this many bodies a batch, one batch a second.
constexpr size_t kSortKeyBackfillBatch = 256;
// Threads for inbound SPF/DKIM/DMARC checks, which mostly wait on DNS: as many
// messages are checked at once (the rest wait their turn; each wait is
// bounded by [msgauth] check_timeout_seconds).
constexpr size_t kCheckThreads = 16;

void ApplyOverrides(config::Config& c, const ListenOverrides& o) {
  auto apply = [](std::string& listener, const std::optional<std::string>& given) {
    if (given) listener = *given;
  };
  apply(c.listen.smtp, o.smtp);
  apply(c.listen.submission, o.submission);
  apply(c.listen.submissions, o.submissions);
  apply(c.listen.imap, o.imap);
  apply(c.listen.imaps, o.imaps);
  apply(c.listen.managesieve, o.managesieve);
  apply(c.listen.pop3, o.pop3);
  apply(c.listen.pop3s, o.pop3s);
  apply(c.listen.http, o.http);
  apply(c.listen.https, o.https);
}

Result<tcp::endpoint> ParseEndpoint(const std::string& hostport) {
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos)
    return Err(ErrorKind::kInvalid, "expected host:port: " + hostport);
  std::string host = hostport.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Err(ErrorKind::kInvalid, "not an IP address: '" + host + "' in " + hostport);
  unsigned long port = std::strtoul(hostport.c_str() + colon + 1, nullptr, 10);
  if (port == 0 || port > 65535) return Err(ErrorKind::kInvalid, "bad port in " + hostport);
  return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

// A bound listening socket (on the control loop) and the protocol that
// serves its connections (on the session loops).
struct Listener {
  std::string name;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::function<awaitable<void>(tcp::socket)> serve;
  // Connections accepted (hato_listener_connections_total); a unique_ptr so
  // the address stays put while `listeners` grows.
  std::unique_ptr<std::atomic<uint64_t>> accepted = std::make_unique<std::atomic<uint64_t>>(0);
};

Result<std::unique_ptr<tcp::acceptor>> Bind(asio::io_context& io, const std::string& name,
                                            const std::string& hostport) {
  auto ep = ParseEndpoint(hostport);
  if (!ep) return Err(ErrorKind::kInvalid, "listen." + name + ": " + ep.error().message);
  auto acc = std::make_unique<tcp::acceptor>(io);
  boost::system::error_code ec;
  acc->open(ep->protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(*ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Err(ErrorKind::kInvalid,
               "cannot listen on " + hostport + " for " + name + ": " + ec.message());
  }
  return acc;
}

// Runs on the control loop: each connection is accepted straight onto the
// next session loop (round-robin), where its session runs until it closes.
awaitable<void> AcceptLoop(Listener& l, server::EventLoops& loops) {
  while (true) {
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    tcp::socket accepted = co_await l.acceptor->async_accept(token);
    if (ec) {
      if (ec == asio::error::operation_aborted || !l.acceptor->is_open()) co_return;
      spdlog::warn("{}: accept failed: {}", l.name, ec.message());
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer t(l.acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(token);
      continue;
    }
    // The loop is chosen once the connection exists (not while waiting for
    // it), so consecutive connections of all listeners alternate loops; the
    // descriptor moves to a socket of that loop's context.
    size_t loop = loops.Next();
    tcp::socket socket(loops.executor(loop));
    boost::system::error_code assign_ec;
    auto protocol = accepted.local_endpoint(assign_ec).protocol();
    if (!assign_ec) socket.assign(protocol, accepted.release(), assign_ec);
    if (assign_ec) {
      spdlog::warn("{}: cannot hand a connection to loop {}: {}", l.name, loop,
                   assign_ec.message());
      continue;
    }
    l.accepted->fetch_add(1, std::memory_order_relaxed);
    loops.SessionStarted(loop);
    auto session = l.serve(std::move(socket));
    asio::co_spawn(loops.executor(loop), std::move(session),
                   [name = l.name, &loops, loop](const std::exception_ptr& e) {
                     loops.SessionEnded(loop);
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       // A bug, caught once at the session boundary: log it, keep serving.
                       spdlog::error("{}: session aborted by exception: {}", name, ex.what());
                     }
                   });
  }
}

}  // namespace

Result<config::Config> LoadConfig(const std::string& data_dir) {
  std::string path = data_dir + "/hato.toml";
  auto text = io::FileSystem::Default()->ReadFile(path);
  if (!text) {
    if (!io::FileSystem::Default()->Exists(data_dir)) {
      return Err(ErrorKind::kNotFound, "no data directory at " + data_dir +
                                           " (create one with: hato init --data " + data_dir +
                                           " --domain DOMAIN)");
    }
    return Err(ErrorKind::kNotFound, "cannot read " + path + ": " + text.error().message);
  }
  auto cfg = config::Parse(*text);
  if (!cfg) return Err(ErrorKind::kInvalid, path + ": " + cfg.error().message);
  return cfg;
}

int Serve(const ServeOptions& options) {
  auto loaded = LoadConfig(options.data_dir);
  if (!loaded) {
    spdlog::error("{}", loaded.error().message);
    return 1;
  }
  config::Config cfg = std::move(*loaded);
  ApplyOverrides(cfg, options.overrides);
  // [log]: validated by config::Parse.
  (void)SetLogFormat(cfg.log.format);
  (void)SetLogLevel(cfg.log.level);
  // One server per data directory (app/data_lock.h), held until exit.
  auto lock = DataDirLock::Acquire(options.data_dir);
  if (!lock) {
    spdlog::error("{}", lock.error().message);
    return 1;
  }

  std::shared_ptr<asio::ssl::context> tls;
  auto abs = [&](const std::string& p) {
    return p.front() == '/' ? p : options.data_dir + "/" + p;
  };
  // With [acme] on, the certificate it got (key and chain in one file) is
  // used once there is one; until then [tls]'s.
  const std::string acme_cert = acme::Manager::CertificatePath(options.data_dir);
  auto use_acme_cert = [&](const config::Config& c) {
    return !c.acme.directory.empty() && io::FileSystem::Default()->Exists(acme_cert);
  };
  if (use_acme_cert(cfg)) {
    auto ctx = LoadTlsContext(acme_cert, acme_cert);
    if (ctx) {
      tls = *ctx;
    } else {
      spdlog::warn("acme: cannot use {} ({}); using [tls] until a new one is issued", acme_cert,
                   ctx.error().message);
    }
  }
  if (!tls && !cfg.tls_cert.empty()) {
    auto ctx = LoadTlsContext(abs(cfg.tls_cert), abs(cfg.tls_key));
    if (!ctx) {
      spdlog::error("{}", ctx.error().message);
      return 1;
    }
    tls = *ctx;
  }

  if (!cfg.listen.imaps.empty() && !tls) {
    spdlog::error("listen.imaps needs a TLS certificate: set [tls] cert and key");
    return 1;
  }
  if (!cfg.listen.pop3s.empty() && !tls) {
    spdlog::error("listen.pop3s needs a TLS certificate: set [tls] cert and key");
    return 1;
  }

  store::StoreOptions so;
  so.compress = cfg.store_compress;
  so.max_pending_writes = cfg.store_max_pending_writes;
  metrics::Histogram commit_latency;
  web::CommitTracker commits;  // for the health watchdog (web/watchdog.h)
  so.on_commit = [&commit_latency, &commits](int64_t ms) {
    commit_latency.Observe(ms);
    commits.Record(ms);
  };
  so.index_text = search::ExtractIndexText;
  // Fault injection for tests and drills only (io/fault_fs.h).
  std::unique_ptr<io::FaultFileSystem> faults;
  if (const char* control = std::getenv("HATO_FAULTS_FILE"); control && *control) {
    faults = std::make_unique<io::FaultFileSystem>(io::FileSystem::Default(), control);
    so.fs = faults.get();
    spdlog::warn("FAULT INJECTION enabled by HATO_FAULTS_FILE={}", control);
  }
  // On PostgreSQL the queue's leases name this node (DATA/node.id), so after
  // a crash the restarted node resumes its own deliveries at once.
  std::string node_id;
  if (cfg.store_backend == "postgres") {
    auto id = NodeIdOf(options.data_dir);
    if (!id) {
      spdlog::error("cannot keep the node id in {}: {}", options.data_dir, id.error().message);
      return 1;
    }
    node_id = *id;
  }
  auto opened = OpenConfiguredStore(cfg, options.data_dir, so, node_id);
  if (!opened) {
    spdlog::error("cannot open the store in {}: {}", options.data_dir, opened.error().message);
    return 1;
  }
  std::unique_ptr<store::Store> store = std::move(*opened);
  // Made-up SCRAM salts for unknown accounts come from a secret kept in the
  // data dir (0600), so they stay the same across restarts (issue 11).
  {
    const std::string path = options.data_dir + "/scram-fake-salt.key";
    io::FileSystem* fs = io::FileSystem::Default();
    auto secret = fs->ReadRegularFile(path);
    if (!secret || secret->size() != 32) {
      std::string fresh(32, '\0');
      if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), 32) != 1) return 1;
      if (auto st = fs->WriteFileAtomic(path, fresh); !st) {
        spdlog::error("cannot write {}: {}", path, st.error().message);
        return 1;
      }
      secret = fresh;
    }
    auth::SetFakeSaltSecret(*secret);
  }

  // Declared before the io_context: when it is destroyed, the frames of
  // sessions still pending are destroyed with it, and they refer to these.
  server::ConfigSource config_source(std::make_shared<const config::Config>(cfg));
  auth::LoginPenalty penalty(cfg.auth.penalty_base_ms, cfg.auth.penalty_max_ms);
  auth::CredentialCache credentials(static_cast<size_t>(cfg.auth.credential_cache_entries),
                                    std::chrono::seconds(cfg.auth.credential_cache_ttl_seconds));
  // Session loops (server/event_loops.h): the blocking pool grows with them.
  const int loop_option = options.event_loops >= 0 ? options.event_loops : cfg.event_loops;
  const size_t loop_count = loop_option > 0
                                ? static_cast<size_t>(loop_option)
                                : server::DefaultEventLoops(std::thread::hardware_concurrency());
  io::CountingPool blocking(
      server::BlockingThreadsFor(loop_count, static_cast<size_t>(cfg.blocking_threads)));
  spdlog::info("{} session event loop(s), {} blocking thread(s)", loop_count, blocking.threads());
  asio::thread_pool checks(kCheckThreads);
  server::DiskMonitor disk;
  server::Counters counters;
  server::MemoryBudget memory(cfg.memory_budget_bytes, cfg.memory_budget_per_ip_bytes);
  // Isolation (server/isolation.h): password checks and client-driven scans
  // each on their own threads, so neither can starve the blocking pool that
  // serves RCPT, SELECT and RETR. Sizes apply at start.
  server::PasswordChecks passwords(cfg.auth.password_threads, cfg.auth.max_pending_checks);
  asio::thread_pool scans(cfg.imap.search_threads);
  server::AccountSlots scan_slots;
  // Message authentication. Outbound: mail submitted with a From domain that
  // has a key in DATA/dkim (`hato dkim generate`) is DKIM-signed (RFC 6376)
  // before it is stored or queued. Keys are read at start.
  server::MessageHooks hooks;
  auto keyring = msgauth::KeyRing::Load(*io::FileSystem::Default(), options.data_dir + "/dkim");
  if (!keyring) {
    spdlog::error("cannot load the DKIM keys: {}", keyring.error().message);
    return 1;
  }
  if (keyring->size() > 0) {
    spdlog::info("DKIM: signing outbound mail for {} domain(s)", keyring->size());
    hooks.sign_outbound = [&keyring](const std::string& from_domain, std::string_view message) {
      return keyring->SignatureIfFrom(from_domain, message, std::time(nullptr));
    };
  }
  // Inbound: mail received on port 25 gets SPF, DKIM and DMARC checks and
  // an Authentication-Results field ([msgauth], app/inbound_check.h).
  dns::LookupOptions lookup_options;
  lookup_options.forward_to = cfg.outbound.resolver;
  lookup_options.query_timeout = std::chrono::seconds(cfg.msgauth.dns_timeout_seconds);
  auto lookup = dns::OpenSharedLookup(lookup_options);
  if (!lookup) {
    spdlog::error("message authentication: {}", lookup.error().message);
    return 1;
  }
  std::shared_ptr<const msgauth::PublicSuffixList> psl;
  if (!cfg.msgauth.public_suffix_list.empty()) {
    auto text = io::FileSystem::Default()->ReadFile(cfg.msgauth.public_suffix_list);
    auto parsed = text ? msgauth::PublicSuffixList::Parse(*text)
                       : Result<msgauth::PublicSuffixList>(text.error());
    if (parsed) {
      psl = std::make_shared<const msgauth::PublicSuffixList>(std::move(*parsed));
      spdlog::info("DMARC: {} public suffix rules from {}", psl->size(),
                   cfg.msgauth.public_suffix_list);
    } else {
      spdlog::warn("DMARC: cannot use {} ({}); using the built-in suffix table",
                   cfg.msgauth.public_suffix_list, parsed.error().message);
    }
  }
  // Results behind the daily TLS-RPT and DMARC reports (reports/recorder.h).
  reports::Recorder report_recorder(io::FileSystem::Default(), options.data_dir);
  // The outbound queue, once it runs: woken when something was queued.
  std::atomic<outbound::Queue*> queue_ptr{nullptr};
  // DMARC failure reports (reports/failure.h), when [reports] dmarc_failure.
  reports::FailureReporter failure_reporter(*store, options.data_dir, [&queue_ptr] {
    if (outbound::Queue* q = queue_ptr.load()) q->Kick();
  });
  hooks.authenticate_inbound =
      NewInboundCheck(config_source, *lookup, &counters, psl, &report_recorder, &failure_reporter);
  server::Services services{store.get(), &blocking, &config_source, tls,     &penalty,
                            &disk,       &counters, &hooks,         &checks, {}};
  // Every commit's changed mailboxes go to IMAP IDLE and JMAP push alike.
  server::ChangeFeed change_feed;
  services.changes = &change_feed;
  if (faults) jmap::SetDataFiles(faults.get());
  store->SetChangeListener(
      [&change_feed](const std::vector<int64_t>& ids) { change_feed.Publish(ids); });
  // Other nodes' EmailSubmission records and queue outcomes (PostgreSQL).
  store->SetRecordListener(
      [&change_feed](int64_t account) { change_feed.PublishRecords(account); });
  // Spam and virus checks on port 25, and Junk training ([scan], src/scan):
  // each is off while its address is empty; say which are on.
  if (cfg.scan.rspamd_url.empty()) {
    spdlog::info("scan: spam checks off ([scan] rspamd_url is empty)");
  } else {
    spdlog::info("scan: spam checks on: rspamd at {} (spam: {}, reject: {}, timeout {} ms)",
                 cfg.scan.rspamd_url, cfg.scan.on_spam, cfg.scan.on_reject, cfg.scan.timeout_ms);
  }
  if (cfg.scan.clamd.empty()) {
    spdlog::info("scan: virus checks off ([scan] clamd is empty)");
  } else {
    spdlog::info("scan: virus checks on: clamd at {}", cfg.scan.clamd);
  }
  if (cfg.scan.rspamd_controller_url.empty()) {
    spdlog::info("scan: Junk training off ([scan] rspamd_controller_url is empty)");
  } else {
    spdlog::info("scan: Junk training on: rspamd controller at {}", cfg.scan.rspamd_controller_url);
  }
  auto trainer = std::make_unique<scan::Trainer>(store.get(), &config_source, &counters);
  store->SetCopyListener([t = trainer.get()](int64_t account, const store::CopyResult& copy) {
    t->OnCopy(account, copy);
  });
  // Sessions by account, ended when `hato user passwd/remove` (another
  // process) records a session end in the store (server/account_sessions.h).
  server::AccountSessions account_sessions;
  services.account_sessions = &account_sessions;
  // The outbound queue runner is created with the event loop, below; sessions
  // reach it through this callback.
  services.credentials = &credentials;
  // SRS for forwarded mail (outbound/srs.h): [outbound] srs_domain, or the
  // first local domain; the secret lives in the data dir (DATA/srs.key).
  server::Services::Srs srs;
  if (cfg.outbound.srs_domain != "off") {
    srs.domain = cfg.outbound.srs_domain;
    if (srs.domain.empty()) {
      if (auto domains = store->ListDomains(); domains && !domains->empty()) {
        srs.domain = domains->front();
      }
    }
    auto secret = outbound::LoadOrCreateSrsSecret(*io::FileSystem::Default(), options.data_dir);
    if (!secret) {
      spdlog::error("cannot read or create the SRS secret: {}", secret.error().message);
      return 1;
    }
    srs.secret = std::move(*secret);
    if (!srs.domain.empty()) {
      services.srs = &srs;
      spdlog::info("srs: forwarded mail leaves with senders rewritten into {}", srs.domain);
    }
  }
  // Mailing lists (src/lists): posts signed with the list domain's key, the
  // poster's DMARC policy looked up for the From rewrite.
  lists::EngineOptions list_options;
  list_options.store = store.get();
  list_options.config = [&config_source] { return config_source.Get(); };
  list_options.sign = [&keyring](const std::string& domain, std::string_view message) {
    return keyring->SignatureAs(domain, message, std::time(nullptr));
  };
  list_options.dmarc_policy = [shared = *lookup, psl, &config_source](const std::string& domain) {
    auto cfg = config_source.Get();
    dns::BudgetLookup budget(shared, std::chrono::seconds(cfg->msgauth.check_timeout_seconds));
    msgauth::DmarcInput in;
    in.from_domain = domain;
    in.psl = psl.get();
    msgauth::DmarcOutcome out = msgauth::CheckDmarc(budget, in);
    if (out.record_domain.empty() || out.status == msgauth::DmarcStatus::kTempError ||
        out.status == msgauth::DmarcStatus::kNone) {
      return std::string();
    }
    return std::string(msgauth::DmarcPolicyName(out.requested));
  };
  list_options.queued = [&queue_ptr] {
    if (outbound::Queue* q = queue_ptr.load()) q->Kick();
  };
  lists::Engine list_engine(std::move(list_options));
  // RFC 8058 one-click unsubscribe: each member's copy gets its own token
  // (keyed by DATA/list-unsubscribe.key) and its own DKIM signature.
  auto unsubscribe_key = lists::LoadUnsubscribeKey(*io::FileSystem::Default(), options.data_dir);
  if (!unsubscribe_key) {
    spdlog::error("lists: {}", unsubscribe_key.error().message);
    return 1;
  }
  hooks.list_copy = [&keyring, &config_source, key = *unsubscribe_key](
                        const std::string& bounce_address, const std::string& member,
                        std::string_view content) {
    lists::MemberCopyOptions o;
    auto cfg = config_source.Get();
    o.unsubscribe_url = cfg->lists.unsubscribe_url;
    o.key = key;
    // [lists] copy_dkim / copy_dkim_domains: which of the list domain's keys
    // sign the copy (Ed25519 is about a twentieth of RSA-2048's CPU).
    o.sign = [&keyring, cfg](const std::string& domain, std::string_view message) {
      auto choice = msgauth::ParseKeyChoice(cfg->lists.CopyDkimFor(AsciiLower(domain)));
      return keyring->SignaturesAs(domain, message, std::time(nullptr),
                                   choice.value_or(msgauth::KeyChoice::kDomainKey));
    };
    return lists::MemberCopy(o, bounce_address, member, content);
  };
  hooks.is_list = [&list_engine](const std::string& address) {
    return list_engine.Handles(address);
  };
  hooks.deliver_to_list = [&list_engine, &config_source](const server::ListDelivery& d) {
    lists::Inbound in{d.rcpt,     d.mail_from, d.authenticated,
                      d.peer_ip,  d.content,   config_source.Get()->hostname,
                      d.smtputf8, d.eight_bit};
    lists::Reply r = list_engine.Receive(in);
    return server::ListReply{r.code, r.text};
  };
  services.memory = &memory;
  services.passwords = &passwords;
  services.scans = &scans;
  services.scan_slots = &scan_slots;
  services.outbound_queued = [&queue_ptr] {
    if (outbound::Queue* q = queue_ptr.load()) q->Kick();
  };
  smtp::Server smtp_server(services);
  smtp::Server submission_server(services, smtp::Mode::kSubmission);
  smtp::Server submissions_server(services, smtp::Mode::kSubmissionImplicitTls);
  pop3::Server pop3_server(services);
  managesieve::Server managesieve_server(services);
  imap::Server imap_server(services);
  // The health snapshot behind /status, /healthz and /readyz: kept current
  // by its own threads, never waiting on the store (web/watchdog.h).
  web::WatchdogOptions wd;
  wd.store = store.get();
  wd.disk = &disk;
  wd.config = &config_source;
  wd.commits = &commits;
  wd.notes_path = options.data_dir + "/" + kStatusNotesFile;
  auto protocol = [&](const char* name, const std::string& listen, bool writes,
                      const server::Admission* a, std::function<size_t()> max) {
    if (!listen.empty()) wd.protocols.push_back({name, writes, a, std::move(max)});
  };
  protocol("smtp", cfg.listen.smtp, true, &smtp_server.admission(),
           [&] { return config_source.Get()->smtp.max_connections; });
  protocol("submission", cfg.listen.submission, true, nullptr, nullptr);
  protocol("submissions", cfg.listen.submissions, true, nullptr, nullptr);
  protocol("imap", cfg.listen.imap, false, &imap_server.admission(),
           [&] { return config_source.Get()->imap.max_connections; });
  protocol("imaps", cfg.listen.imaps, false, nullptr, nullptr);
  protocol("pop3", cfg.listen.pop3, false, &pop3_server.admission(),
           [&] { return config_source.Get()->pop3.max_connections; });
  protocol("http", cfg.listen.http, false, nullptr, nullptr);
  protocol("pop3s", cfg.listen.pop3s, false, nullptr, nullptr);
  protocol("https", cfg.listen.https, false, nullptr, nullptr);
  web::Watchdog watchdog(std::move(wd));
  watchdog.Start();

  // HTTP (src/http): one router for [listen] http and https; features add
  // their routes in app/http_routes.cc.
  http::Router http_router;
  // The admin console's audit log and key figures (web/audit.h, web/figures.h).
  web::AuditLog audit(options.data_dir + "/audit.log");
  web::Figures figures(&watchdog, services.counters,
                       {{"smtp", &smtp_server.admission()},
                        {"imap", &imap_server.admission()},
                        {"pop3", &pop3_server.admission()}});
  figures.Start();
  // ACME's HTTP-01 answers ([acme], acme/client.h), served by the router below.
  acme::HttpChallenges acme_challenges;
  HttpContext http_context{&services, options.data_dir, &watchdog, &audit, &figures};
  if (!cfg.acme.directory.empty()) http_context.acme_challenges = &acme_challenges;
  RegisterHttpRoutes(http_router, http_context);
  http::Server http_server(services, "http", http_router);
  http::Server https_server(services, "https", http_router);
  // The metrics endpoint is the same HTTP server on its own listener and router.
  http::Router metrics_router;
  http::Server metrics_server(services, "metrics", metrics_router);
  // The control loop (this thread): accepts connections, runs the signals,
  // the periodic timers and the graceful stop; the sessions run on the
  // session loops (server/event_loops.h), which are stopped and destroyed
  // before the servers above (their pending session frames refer to them).
  asio::io_context io(1);
  server::EventLoops loops(loop_count);
  imap_server.Attach(loops.executor(0));
  // The control loop's lag and watchdog (each session loop has its own).
  server::LoopMonitor loop_monitor;
  loop_monitor.Start(io.get_executor(), "control loop");
  // The outbound queue runner lives on session loop 0; destroyed before the
  // loops (its resolver and timers are bound to that loop).
  auto queue = std::make_unique<outbound::Queue>(services, loops.executor(0));
  queue->SetTlsReports(&report_recorder);
  queue->SetDeliveryLoops(&loops);
  if (auto st = queue->Start(); !st) {
    spdlog::error("outbound: {}", st.error().message);
    return 1;
  }
  queue_ptr = queue.get();

  std::vector<Listener> listeners;
  auto add = [&](const std::string& name, const std::string& hostport,
                 std::function<awaitable<void>(tcp::socket)> serve) -> bool {
    if (hostport.empty()) return true;
    auto acc = Bind(io, name, hostport);
    if (!acc) {
      spdlog::error("{}", acc.error().message);
      return false;
    }
    spdlog::info("{}: listening on {}", name, hostport);
    listeners.push_back(Listener{name, std::move(*acc), std::move(serve)});
    return true;
  };
  bool ok =
      add("smtp", cfg.listen.smtp,
          [&](tcp::socket s) { return smtp_server.Serve(std::move(s)); }) &&
      add("pop3", cfg.listen.pop3,
          [&](tcp::socket s) { return pop3_server.Serve(std::move(s)); }) &&
      add("pop3s", cfg.listen.pop3s,
          [&](tcp::socket s) { return pop3_server.Serve(std::move(s), /*implicit_tls=*/true); }) &&
      add("imap", cfg.listen.imap,
          [&](tcp::socket s) { return imap_server.Serve(std::move(s), false); }) &&
      add("imaps", cfg.listen.imaps,
          [&](tcp::socket s) { return imap_server.Serve(std::move(s), /*implicit_tls=*/true); });
  if (!ok) return 1;
  // Submission needs TLS (RFC 8314); without a certificate only a loopback
  // listener makes sense, and 465 cannot work at all.
  if (!cfg.listen.submissions.empty() && !tls) {
    spdlog::error("listen.submissions needs a TLS certificate ([tls] cert and key)");
    return 1;
  }
  ok = add("submission", cfg.listen.submission,
           [&](tcp::socket s) { return submission_server.Serve(std::move(s)); }) &&
       add("submissions", cfg.listen.submissions,
           [&](tcp::socket s) { return submissions_server.Serve(std::move(s)); });
  if (!ok) return 1;
  if (!cfg.listen.https.empty() && !tls) {
    spdlog::error("listen.https needs a TLS certificate ([tls] cert and key)");
    return 1;
  }
  ok =
      add("http", cfg.listen.http,
          [&](tcp::socket s) { return http_server.Serve(std::move(s), false); }) &&
      add("https", cfg.listen.https,
          [&](tcp::socket s) { return https_server.Serve(std::move(s), /*implicit_tls=*/true); }) &&
      add("managesieve", cfg.listen.managesieve,
          [&](tcp::socket s) { return managesieve_server.Serve(std::move(s)); });
  if (!ok) return 1;

  // Freed heap memory back to the system (server/memory_trim.h), checked
  // every kHeapTrimInterval on the blocking pool.
  auto heap_trimmer = std::make_shared<server::HeapTrimmer>();
  asio::steady_timer heap_timer(io);
  std::function<void()> trim_heap = [&] {
    asio::post(blocking, [heap_trimmer] { heap_trimmer->Tick(); });
    heap_timer.expires_after(server::kHeapTrimInterval);
    heap_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) trim_heap();
    });
  };
  trim_heap();

  // The daily aggregate reports (reports/send.h): each hour, from [reports]
  // send_hour (UTC) on, the days that have ended are reported, on the
  // blocking pool; the queue then sends them. Every hour, TLS-RPT reports an
  // https: rua failed to take are posted again when due (RFC 8460 5.3).
  asio::steady_timer report_timer(io);
  std::shared_ptr<dns::SharedLookup> report_dns = *lookup;
  std::function<void()> send_reports = [&] {
    asio::post(blocking, [&, report_dns] {
      auto c = config_source.Get();
      int64_t now = std::time(nullptr);
      if (!c->reports.tls_rpt && !c->reports.dmarc) return;
      dns::BudgetLookup dns(report_dns, std::chrono::seconds(120));
      reports::SendOptions so;
      so.now = now;
      // Before send_hour only the https: posts waiting for another attempt.
      so.retries_only = (now % 86400) / 3600 < c->reports.send_hour;
      so.resolver = c->outbound.resolver;
      so.ca_file = c->outbound.tls_ca_file;
      auto sent = reports::SendDueReports(*store, options.data_dir, *c, dns, so);
      if (!sent) {
        spdlog::warn("reports: {}", sent.error().message);
        return;
      }
      for (const auto& line : sent->log) spdlog::info("reports: {}", line);
      if (sent->reports > 0) {
        if (outbound::Queue* q = queue_ptr.load()) q->Kick();
      }
    });
    report_timer.expires_after(kReportCheckInterval);
    report_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) send_reports();
    });
  };
  send_reports();

  // The metrics endpoint (metrics/exporter.h), off unless [metrics] listen is set.
  if (!cfg.metrics_listen.empty()) {
    metrics::ServerSources sources{{{"smtp", &smtp_server.admission()},
                                    {"submission", &submission_server.admission()},
                                    {"submissions", &submissions_server.admission()},
                                    {"pop3", &pop3_server.admission()},
                                    {"imap", &imap_server.admission()},
                                    {"http", &http_server.admission()}},
                                   &counters,
                                   store.get(),
                                   &commit_latency,
                                   &disk,
                                   {}};
    for (const auto& l : listeners) sources.listeners.emplace_back(l.name, l.accepted.get());
    sources.loop = &loop_monitor;
    sources.loops = &loops;
    sources.blocking = &blocking;
    sources.memory = &memory;
    sources.passwords = &passwords;
    sources.scan_slots = &scan_slots;
    sources.heap = heap_trimmer.get();
    auto render = [sources] { return metrics::RenderServerMetrics(sources); };
    metrics::AddMetricsRoute(metrics_router, std::move(render), &blocking);
    if (!add("metrics", cfg.metrics_listen,
             [&](tcp::socket s) { return metrics_server.Serve(std::move(s), false); })) {
      return 1;
    }
  }
  for (auto& l : listeners) asio::co_spawn(io, AcceptLoop(l, loops), asio::detached);
  // Certificates by ACME ([acme], acme/client.h): orders start once the
  // listeners are open.
  std::shared_ptr<acme::Manager> acme_manager;
  // TLS-ALPN-01 (RFC 8737) when only [listen] https can answer: its
  // listener shows the challenge certificate to "acme-tls/1" clients.
  acme::TlsAlpnChallenges acme_alpn;
  bool tls_alpn = cfg.listen.http.empty() && !cfg.listen.https.empty() && tls;
  if (!cfg.acme.directory.empty()) {
    acme::Settings as;
    as.challenge = tls_alpn ? "tls-alpn-01" : "http-01";
    as.directory = cfg.acme.directory;
    as.contact = cfg.acme.contact;
    as.domains =
        cfg.acme.domains.empty() ? std::vector<std::string>{cfg.hostname} : cfg.acme.domains;
    as.ca_file = cfg.acme.ca_file.empty() ? "" : abs(cfg.acme.ca_file);
    as.resolver = cfg.outbound.resolver;
    as.renew_days = cfg.acme.renew_days;
    as.check_interval_seconds = cfg.acme.check_interval_seconds;
    as.eab_kid = cfg.acme.eab_kid;
    as.eab_hmac_key = cfg.acme.eab_hmac_key;
    acme_manager = std::make_shared<acme::Manager>(
        io.get_executor(), options.data_dir, std::move(as), &acme_challenges,
        [&tls](const std::string& path) {
          if (!tls) {
            return Status(Err(ErrorKind::kInvalid,
                              "no TLS listener context to install it in (set [tls] for the "
                              "first start)"));
          }
          Status st = ReloadTlsContext(*tls, path, path);
          if (st) spdlog::info("acme: the new certificate is in use");
          return st;
        });
  }
  if (acme_manager) {
    if (tls_alpn) {
      EnableTlsAlpnChallenges(*tls, &acme_alpn);
      acme_manager->SetTlsAlpnChallenges(&acme_alpn);
      spdlog::info("acme: [listen] http is off: tls-alpn-01 challenges on [listen] https");
    } else if (cfg.listen.http.empty()) {
      spdlog::warn("acme: neither [listen] http nor https is on: no challenge can be answered");
    }
    if (Status st = acme_manager->Start(); !st) {
      spdlog::error("acme: {}", st.error().message);
      return 1;
    }
  }

  // Retention: destroy what was expunged or removed longer ago than retention.days.
  asio::steady_timer purge_timer(io);
  std::function<void()> schedule_purge = [&] {
    auto c = config_source.Get();
    int64_t cutoff = std::time(nullptr) - int64_t{c->retention_days} * 86400;
    asio::post(blocking, [&store, cutoff] {
      auto n = store->PurgeExpired(cutoff);
      if (!n) {
        spdlog::warn("retention: purge failed: {}", n.error().message);
      } else if (*n > 0) {
        spdlog::info("retention: purged {} messages past retention", *n);
      }
    });
    purge_timer.expires_after(std::chrono::seconds(kPurgeIntervalSeconds));
    purge_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) schedule_purge();
    });
  };
  schedule_purge();

  // Sort keys of bodies stored before blobs.sort_keys existed (issue 16): in
  // the background, a batch a second until none is left (a minute after a
  // failure), so a SORT never has to parse them.
  asio::steady_timer backfill_timer(io);
  bool backfill_stopped = false;
  size_t backfilled = 0;
  std::function<void(std::chrono::seconds)> schedule_backfill = [&](std::chrono::seconds after) {
    backfill_timer.expires_after(after);
    backfill_timer.async_wait([&](boost::system::error_code ec) {
      if (ec || backfill_stopped) return;
      asio::post(blocking, [&] {
        auto n = store->BackfillSortKeys(kSortKeyBackfillBatch);
        if (!n) spdlog::warn("sort keys: backfill failed: {}", n.error().message);
        asio::post(io, [&, n] {
          if (backfill_stopped) return;
          if (!n) {
            schedule_backfill(std::chrono::seconds(60));
          } else if (*n > 0) {
            backfilled += *n;
            schedule_backfill(std::chrono::seconds(1));
          } else if (backfilled > 0) {
            spdlog::info("sort keys: stored for {} bodies kept before they were", backfilled);
          }
        });
      });
    });
  };
  schedule_backfill(std::chrono::seconds(1));

  // Disk reserve: checked every second off the event loop.
  asio::steady_timer disk_timer(io);
  std::function<void()> check_disk = [&] {
    uint64_t reserve = config_source.Get()->ReserveBytes();
    asio::post(blocking, [&disk, &options, reserve] {
      auto free = io::FileSystem::Default()->FreeSpace(options.data_dir);
      if (!free) return;
      if (disk.Update(*free, reserve)) {
        if (disk.low()) {
          spdlog::warn("disk: {} bytes free, below the reserve of {}: refusing new mail", *free,
                       reserve);
        } else {
          spdlog::info("disk: {} bytes free again: accepting mail", *free);
        }
      }
    });
    disk_timer.expires_after(std::chrono::seconds(1));
    disk_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) check_disk();
    });
  };
  check_disk();

  // Session ends (issue 11): the store is polled off the event loop every
  // kSessionEpochPollInterval; the sessions of a changed account end on the loop.
  asio::steady_timer session_end_timer(io);
  int64_t session_end_seen = 0;
  {
    // Ends recorded before this start concern no session of this process.
    auto past = store->SessionEndsSince(0, std::numeric_limits<int32_t>::max());
    if (past && !past->empty()) session_end_seen = past->back().epoch;
  }
  std::function<void()> poll_session_ends = [&] {
    asio::post(blocking, [&] {
      constexpr size_t kBatch = 1000;
      auto ends = store->SessionEndsSince(session_end_seen, kBatch);
      asio::post(io, [&, ends = std::move(ends)] {
        if (!ends) {
          spdlog::warn("sessions: cannot read session ends: {}", ends.error().message);
        } else {
          for (const store::SessionEnd& e : *ends) {
            size_t n = account_sessions.Changed(e.account_id, e.epoch);
            if (n > 0) spdlog::info("sessions: ended {} session(s) of account {}", n, e.account_id);
            session_end_seen = std::max(session_end_seen, e.epoch);
          }
        }
        session_end_timer.expires_after(server::kSessionEpochPollInterval);
        session_end_timer.async_wait([&](boost::system::error_code ec) {
          if (!ec) poll_session_ends();
        });
      });
    });
  };
  poll_session_ends();

  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  asio::signal_set hup(io, SIGHUP);
  asio::steady_timer grace(io);
  std::chrono::steady_clock::time_point deadline;
  // Polls until sessions are done or the grace period ends; transactions not
  // yet acknowledged are then aborted by closing their connections (the
  // client retries; nothing acknowledged is lost).
  std::function<void()> poll_sessions = [&] {
    if (smtp_server.live_sessions() + submission_server.live_sessions() +
                submissions_server.live_sessions() + pop3_server.live_sessions() +
                imap_server.live_sessions() + http_server.live_connections() +
                https_server.live_connections() + queue->active() ==
            0 ||
        std::chrono::steady_clock::now() >= deadline) {
      io.stop();
      return;
    }
    grace.expires_after(std::chrono::milliseconds(50));
    grace.async_wait([&](boost::system::error_code e) {
      if (!e) poll_sessions();
    });
  };
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: no longer accepting; waiting up to {}s for sessions", sig,
                 options.shutdown_grace_seconds);
    for (auto& l : listeners) {
      boost::system::error_code ignored;
      l.acceptor->close(ignored);
    }
    hup.cancel();
    if (acme_manager) acme_manager->Stop();
    purge_timer.cancel();
    backfill_stopped = true;
    backfill_timer.cancel();
    disk_timer.cancel();
    heap_timer.cancel();
    report_timer.cancel();
    session_end_timer.cancel();
    smtp_server.Shutdown();
    submission_server.Shutdown();
    submissions_server.Shutdown();
    queue->Stop();
    pop3_server.Shutdown();
    managesieve_server.Shutdown();
    imap_server.Shutdown();
    http_server.Shutdown();
    https_server.Shutdown();
    metrics_server.Shutdown();
    deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(options.shutdown_grace_seconds);
    poll_sessions();
  });
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      auto next = LoadConfig(options.data_dir);
      Status tls_ok = Ok();
      if (next && tls && use_acme_cert(*next)) {
        // The ACME certificate stays in use ([tls] is its fallback).
        tls_ok = ReloadTlsContext(*tls, acme_cert, acme_cert);
      } else if (next && tls && !next->tls_cert.empty()) {
        // The certificate is validated before anything is swapped (a renewed
        // certificate needs no restart; a bad one must not be announced as
        // reloaded).
        tls_ok = ReloadTlsContext(*tls, abs(next->tls_cert), abs(next->tls_key));
      }
      if (!next) {
        spdlog::error("reload: {}; keeping the running configuration", next.error().message);
      } else if (!tls_ok) {
        spdlog::error("reload: {}; keeping the running configuration and certificate",
                      tls_ok.error().message);
      } else {
        ApplyOverrides(*next, options.overrides);
        // Shards added to [store.shards] are opened now, off the event loop
        // (each is connected and migrated); closed flags apply at once.
        if (next->store_backend == "postgres" && !next->store_shards.empty()) {
          asio::post(blocking, [&store, sharding = ShardingFromConfig(*next)] {
            auto added = store::ReloadShards(*store, sharding);
            if (!added) {
              spdlog::error("reload: shards: {}", added.error().message);
            } else {
              for (const auto& name : *added) spdlog::info("reload: shard {} added", name);
            }
          });
        }
        penalty.SetLimits(next->auth.penalty_base_ms, next->auth.penalty_max_ms);
        memory.SetLimits(next->memory_budget_bytes, next->memory_budget_per_ip_bytes);
        passwords.SetMaxPending(next->auth.max_pending_checks);
        credentials.Configure(static_cast<size_t>(next->auth.credential_cache_entries),
                              std::chrono::seconds(next->auth.credential_cache_ttl_seconds));
        (void)SetLogFormat(next->log.format);
        (void)SetLogLevel(next->log.level);
        config_source.Set(std::make_shared<const config::Config>(std::move(*next)));
        spdlog::info("reload: configuration{} reloaded (listener changes apply at restart)",
                     tls ? " and TLS certificate" : "");
      }
      wait_hup();
    });
  };
  wait_hup();

  spdlog::info("hato: serving {} (pid {}) on {} event loop(s)", options.data_dir,
               static_cast<int>(getpid()), loops.size());
  loops.Start();
  io.run();
  // Sessions still running past the grace period are abandoned here (their
  // frames are destroyed with the loops, at the end of this scope).
  loops.Stop();
  loop_monitor.Stop();
  queue_ptr = nullptr;
  watchdog.Stop();
  blocking.join();
  scans.join();
  passwords.Join();
  checks.join();
  imap_server.Detach();
  store->SetChangeListener(nullptr);
  store->SetCopyListener(nullptr);
  store->SetRecordListener(nullptr);
  trainer.reset();
  store.reset();  // the writer drains its queue before the store closes
  spdlog::info("hato: stopped");
  return 0;
}

}  // namespace hato::app
