// Round trips to PostgreSQL since the process started, over every connection
// (store/postgres/conn.h: each Exec and each ExecPipeline waits once for the
// server's answers). For /metrics (hato_store_database_round_trips_total)
// and the benchmarks; 0 when no PostgreSQL store was used. Free of libpq's
// headers, so that any file may include it. Thread-safe (an atomic).
#pragma once

#include <cstdint>

namespace hato::store::pg {

uint64_t RoundTrips();

}  // namespace hato::store::pg
