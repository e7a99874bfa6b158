#include "metrics/server_metrics.h"

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
  if (s.counters) {
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
  w.Family("hato_resident_memory_bytes", "gauge", "Resident set size of the server process.");
  w.Sample("hato_resident_memory_bytes", "", static_cast<double>(ResidentBytes()));
  return w.text();
}

}  // namespace hato::metrics
