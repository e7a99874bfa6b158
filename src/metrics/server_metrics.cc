#include "metrics/server_metrics.h"

#include <algorithm>
#include <ctime>

#include "msgauth/dmarc.h"
#include "store/postgres/round_trips.h"

namespace hato::metrics {

std::string RenderServerMetrics(const ServerSources& s) {
  TextWriter w;
  auto proto = [](const std::string& p) { return "protocol=\"" + p + "\""; };
  w.Family("hato_sessions", "gauge", "Sessions open now, per protocol.");
  for (const auto& [name, a] : s.protocols) w.Sample("hato_sessions", proto(name), a->live());
  w.Family("hato_connections_total", "counter", "Connections admitted since start, per protocol.");
  for (const auto& [name, a] : s.protocols) {
    w.Sample("hato_connections_total", proto(name), static_cast<double>(a->stats().admitted));
  }
  w.Family("hato_connections_refused_total", "counter",
           "Connections refused by admission control, per protocol and reason.");
  for (const auto& [name, a] : s.protocols) {
    auto st = a->stats();
    w.Sample("hato_connections_refused_total", proto(name) + ",reason=\"too_many\"",
             static_cast<double>(st.refused_total));
    w.Sample("hato_connections_refused_total", proto(name) + ",reason=\"too_many_from_address\"",
             static_cast<double>(st.refused_per_ip));
  }
  if (!s.listeners.empty()) {
    w.Family("hato_listener_connections_total", "counter",
             "Connections accepted per listener since start (before admission control).");
    for (const auto& [name, n] : s.listeners) {
      w.Sample("hato_listener_connections_total", "listener=\"" + name + "\"",
               static_cast<double>(n->load()));
    }
  }
  if (s.counters) {
    w.Family("hato_login_failures_total", "counter",
             "Failed logins (wrong password or unknown account) per protocol.");
    for (size_t i = 0; i < server::Counters::kLoginProtocols.size(); ++i) {
      w.Sample("hato_login_failures_total", proto(server::Counters::kLoginProtocols[i]),
               static_cast<double>(s.counters->login_failures[i].load()));
    }
    w.Family("hato_smtp_transactions_total", "counter",
             "SMTP transactions by outcome: accepted (250 once durable) or refused by reply "
             "class (at MAIL or at the end of the data).");
    w.Sample("hato_smtp_transactions_total", "result=\"accepted\"",
             static_cast<double>(s.counters->smtp_accepted.load()));
    w.Sample("hato_smtp_transactions_total", "result=\"refused_4xx\"",
             static_cast<double>(s.counters->smtp_refused_4xx.load()));
    w.Sample("hato_smtp_transactions_total", "result=\"refused_5xx\"",
             static_cast<double>(s.counters->smtp_refused_5xx.load()));
  }
  if (s.store) {
    store::StoreHealth h = s.store->Health();
    w.Family("hato_store_pending_writes", "gauge",
             "Writes queued for the store's next group commits (the write backlog).");
    w.Sample("hato_store_pending_writes", "", static_cast<double>(h.pending_writes));
    w.Family("hato_store_commit_in_flight_seconds", "gauge",
             "Age of the group commit in progress; 0 when idle.");
    w.Sample("hato_store_commit_in_flight_seconds", "",
             static_cast<double>(h.commit_in_flight_ms) / 1000);
    w.Family("hato_store_database_round_trips_total", "counter",
             "Waits for PostgreSQL's answer (a statement, or a pipeline of them) since start; "
             "0 with the embedded store.");
    w.Sample("hato_store_database_round_trips_total", "",
             static_cast<double>(store::pg::RoundTrips()));
  }
  if (s.counters) {
    w.Family("hato_msgauth_dmarc_total", "counter",
             "Messages checked on port 25 by DMARC result (RFC 7489; RFC 8601 names).");
    for (size_t i = 0; i < server::Counters::kDmarcResults; ++i) {
      auto status = static_cast<msgauth::DmarcStatus>(i);
      w.Sample("hato_msgauth_dmarc_total",
               "result=\"" + std::string(msgauth::DmarcStatusName(status)) + "\"",
               static_cast<double>(s.counters->dmarc_results[i].load()));
    }
    w.Family("hato_msgauth_dmarc_actions_total", "counter",
             "Messages failing a DMARC policy: rejected with 550 5.7.1, or delivered to Junk.");
    w.Sample("hato_msgauth_dmarc_actions_total", "action=\"rejected\"",
             static_cast<double>(s.counters->dmarc_rejected.load()));
    w.Sample("hato_msgauth_dmarc_actions_total", "action=\"junk\"",
             static_cast<double>(s.counters->dmarc_junked.load()));
    const server::Counters& c = *s.counters;
    w.Family("hato_scan_messages_total", "counter",
             "Messages on port 25 by scanner outcome: passed unscanned (scanner on but down, "
             "slow or skipping), refused for a virus, or by the spam policy.");
    w.Sample("hato_scan_messages_total", "result=\"spam_unscanned\"",
             static_cast<double>(c.scan_spam_unscanned.load()));
    w.Sample("hato_scan_messages_total", "result=\"virus_unscanned\"",
             static_cast<double>(c.scan_virus_unscanned.load()));
    w.Sample("hato_scan_messages_total", "result=\"spam_rejected\"",
             static_cast<double>(c.scan_spam_rejected.load()));
    w.Sample("hato_scan_messages_total", "result=\"spam_junked\"",
             static_cast<double>(c.scan_spam_junked.load()));
    w.Sample("hato_scan_messages_total", "result=\"spam_marked\"",
             static_cast<double>(c.scan_spam_marked.load()));
    w.Sample("hato_scan_messages_total", "result=\"virus_refused\"",
             static_cast<double>(c.scan_virus_refused.load()));
    w.Family("hato_scan_learn_total", "counter",
             "Junk-training requests to rspamd's controller: sent, failed, or dropped because "
             "the training queue was full.");
    w.Sample("hato_scan_learn_total", "result=\"sent\"", static_cast<double>(c.learn_sent.load()));
    w.Sample("hato_scan_learn_total", "result=\"failed\"",
             static_cast<double>(c.learn_failed.load()));
    w.Sample("hato_scan_learn_total", "result=\"dropped\"",
             static_cast<double>(c.learn_dropped.load()));
    w.Family("hato_outbound_recipients_total", "counter",
             "Outbound recipients by recorded outcome since start: delivered, deferred (an "
             "attempt failed temporarily; retried later) or bounced (failed for good).");
    w.Sample("hato_outbound_recipients_total", "result=\"delivered\"",
             static_cast<double>(s.counters->outbound_delivered.load()));
    w.Sample("hato_outbound_recipients_total", "result=\"deferred\"",
             static_cast<double>(s.counters->outbound_deferred.load()));
    w.Sample("hato_outbound_recipients_total", "result=\"bounced\"",
             static_cast<double>(s.counters->outbound_bounced.load()));
    w.Family("hato_outbound_sessions_total", "counter",
             "SMTP sessions opened to other servers since start (each reused for several "
             "transactions where it can: outbound.max_messages_per_connection).");
    w.Sample("hato_outbound_sessions_total", "",
             static_cast<double>(s.counters->outbound_sessions.load()));
    w.Family("hato_outbound_transactions_total", "counter",
             "SMTP mail transactions (MAIL FROM) sent to other servers since start.");
    w.Sample("hato_outbound_transactions_total", "",
             static_cast<double>(s.counters->outbound_transactions.load()));
    w.Family("hato_outbound_dane_total", "counter",
             "DANE (RFC 7672) per MX host tried: matched, mismatch (deferred), unusable TLSA "
             "records (unauthenticated TLS), no TLSA, insecure (not DNSSEC-validated: DANE does "
             "not apply), lookup_failed (deferred).");
    for (size_t i = 0; i < server::Counters::kDaneOutcomes.size(); ++i) {
      w.Sample("hato_outbound_dane_total",
               std::string("result=\"") + server::Counters::kDaneOutcomes[i] + "\"",
               static_cast<double>(s.counters->dane[i].load()));
    }
  }
  if (s.store) {
    // One aggregate query (Store::GetQueueStats); a failed read leaves the
    // queue families out of this scrape rather than reporting zeros.
    auto q = s.store->GetQueueStats();
    if (q) {
      w.Family("hato_outbound_queue_messages", "gauge",
               "Messages in the outbound queue (recipients left to try, or a report owed).");
      w.Sample("hato_outbound_queue_messages", "", static_cast<double>(q->messages));
      w.Family("hato_outbound_queue_recipients", "gauge",
               "Outbound recipients not yet delivered or failed, by state (queued: waiting for "
               "an attempt; held: by hato queue hold).");
      w.Sample("hato_outbound_queue_recipients", "state=\"queued\"",
               static_cast<double>(q->queued));
      w.Sample("hato_outbound_queue_recipients", "state=\"held\"", static_cast<double>(q->held));
      w.Family("hato_outbound_queue_oldest_age_seconds", "gauge",
               "Age of the oldest message in the outbound queue; 0 when it is empty.");
      int64_t age = q->oldest_created_at == 0
                        ? 0
                        : std::max<int64_t>(0, std::time(nullptr) - q->oldest_created_at);
      w.Sample("hato_outbound_queue_oldest_age_seconds", "", static_cast<double>(age));
    }
  }
  if (s.commit_latency) {
    w.WriteHistogram("hato_store_commit_seconds",
                     "Duration of each group commit (bodies fdatasync + metadata COMMIT).",
                     *s.commit_latency);
  }
  if (s.disk) {
    w.Family("hato_disk_low", "gauge", "1 while free space is below the reserve (452 4.3.1).");
    w.Sample("hato_disk_low", "", s.disk->low() ? 1 : 0);
  }
  if (s.loop || s.loops) {
    // Every loop's lag together (the session loops', and the control loop's
    // when there are no session loops to report).
    const Histogram& lag = s.loops ? s.loops->lag() : s.loop->lag();
    int64_t max_ms = 0;
    uint64_t blocked = 0;
    if (s.loop) {
      max_ms = s.loop->max_lag_ms();
      blocked = s.loop->blocked();
    }
    if (s.loops) {
      max_ms = std::max(max_ms, s.loops->max_lag_ms());
      blocked += s.loops->blocked();
    }
    w.WriteHistogram("hato_event_loop_lag_seconds",
                     "How late a 50 ms timer fires on the session loops: time a loop spent on "
                     "something else (every session of that loop waits meanwhile).",
                     lag);
    w.Family("hato_event_loop_lag_max_seconds", "gauge",
             "The largest event-loop lag seen (any loop, the control loop included).");
    w.Sample("hato_event_loop_lag_max_seconds", "", static_cast<double>(max_ms) / 1000);
    w.Family("hato_event_loop_blocked_total", "counter",
             "Times an event loop was blocked longer than 100 ms (each is logged).");
    w.Sample("hato_event_loop_blocked_total", "", static_cast<double>(blocked));
  }
  if (s.loops) {
    w.Family("hato_event_loops", "gauge", "Session event loops ([server] event_loops).");
    w.Sample("hato_event_loops", "", static_cast<double>(s.loops->size()));
    w.Family("hato_event_loop_sessions_total", "counter",
             "Connections handed to each session loop since start (every protocol).");
    for (size_t i = 0; i < s.loops->size(); ++i) {
      w.Sample("hato_event_loop_sessions_total", "loop=\"" + std::to_string(i) + "\"",
               static_cast<double>(s.loops->started(i)));
    }
    w.Family("hato_event_loop_outbound_sessions_total", "counter",
             "Outbound SMTP sessions opened on each session loop (the queue's deliveries).");
    for (size_t i = 0; i < s.loops->size(); ++i) {
      w.Sample("hato_event_loop_outbound_sessions_total", "loop=\"" + std::to_string(i) + "\"",
               static_cast<double>(s.loops->outbound_sessions(i)));
    }
    w.Family("hato_event_loop_sessions", "gauge", "Connections open on each session loop.");
    for (size_t i = 0; i < s.loops->size(); ++i) {
      w.Sample("hato_event_loop_sessions", "loop=\"" + std::to_string(i) + "\"",
               static_cast<double>(s.loops->live(i)));
    }
    w.Family("hato_event_loop_lag_max_by_loop_seconds", "gauge",
             "The largest lag seen on each session loop.");
    for (size_t i = 0; i < s.loops->size(); ++i) {
      w.Sample("hato_event_loop_lag_max_by_loop_seconds", "loop=\"" + std::to_string(i) + "\"",
               static_cast<double>(s.loops->monitor(i).max_lag_ms()) / 1000);
    }
  }
  if (s.blocking) {
    w.Family("hato_blocking_pool_threads", "gauge",
             "Threads of the blocking pool (store reads, filters): [server] blocking_threads, "
             "or 2 plus 2 per event loop.");
    w.Sample("hato_blocking_pool_threads", "", static_cast<double>(s.blocking->threads()));
    w.Family("hato_blocking_pool_pending", "gauge",
             "Session work queued or running on the blocking pool; above the thread count, "
             "work waits its turn.");
    w.Sample("hato_blocking_pool_pending", "", static_cast<double>(s.blocking->pending()));
  }
  if (s.memory) {
    w.Family("hato_memory_budget_used_bytes", "gauge",
             "Client input held in memory now (IMAP commands and literals, SMTP data).");
    w.Sample("hato_memory_budget_used_bytes", "", static_cast<double>(s.memory->used()));
    w.Family("hato_memory_budget_refusals_total", "counter",
             "Sessions refused temporarily because the memory budget was exhausted.");
    w.Sample("hato_memory_budget_refusals_total", "", static_cast<double>(s.memory->refused()));
  }
  if (s.passwords) {
    w.Family("hato_password_checks_pending", "gauge", "Password checks queued or running.");
    w.Sample("hato_password_checks_pending", "", static_cast<double>(s.passwords->pending()));
    w.Family("hato_password_checks_refused_total", "counter",
             "Logins failed temporarily because the password-check queue was full.");
    w.Sample("hato_password_checks_refused_total", "", static_cast<double>(s.passwords->refused()));
  }
  if (s.scan_slots) {
    w.Family("hato_searches_refused_total", "counter",
             "Searches refused because the account already ran its maximum at once.");
    w.Sample("hato_searches_refused_total", "", static_cast<double>(s.scan_slots->refused()));
  }
  if (s.heap) {
    w.Family("hato_heap_free_bytes", "gauge",
             "Free bytes held in the allocator's arenas at the last trim check.");
    w.Sample("hato_heap_free_bytes", "", static_cast<double>(s.heap->free_bytes()));
    w.Family("hato_heap_trims_total", "counter", "Times freed heap memory was given back.");
    w.Sample("hato_heap_trims_total", "", static_cast<double>(s.heap->trims()));
    w.Family("hato_heap_trim_released_bytes_total", "counter",
             "Resident memory given back by those trims.");
    w.Sample("hato_heap_trim_released_bytes_total", "",
             static_cast<double>(s.heap->released_bytes()));
  }
  w.Family("hato_resident_memory_bytes", "gauge", "Resident set size of the server process.");
  w.Sample("hato_resident_memory_bytes", "", static_cast<double>(ResidentBytes()));
  return w.text();
}

}  // namespace hato::metrics
