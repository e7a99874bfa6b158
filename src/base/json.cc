// Boost.JSON, compiled once for the whole program (header-only mode: this is
// the one translation unit that includes its sources). Used by JMAP
// (src/jmap) and the HTTP API routes.
#include <boost/json/src.hpp>
