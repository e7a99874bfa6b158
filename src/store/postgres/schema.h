// Versioned schema of the PostgreSQL backend and its migrations. The table
// hato_schema holds the version; Migrate() applies each missing step in one
// transaction, under an advisory lock so that nodes starting together on the
// same database migrate it once. A database newer than this binary is refused.
#pragma once

#include <string>
#include <vector>

#include "store/postgres/conn.h"

namespace hato::store::pg {

// The SQL of each migration; migration i takes the schema from version i to i+1.
const std::vector<std::string>& Migrations();
inline int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

Result<int> SchemaVersion(Conn& conn);
Status Migrate(Conn& conn, int target = -1);

}  // namespace hato::store::pg
