// map_lookup_test_support.hpp - shared by the map_lookup tests: a MapSource and a
// MapDefinition made with the few fields a test cares about.
#pragma once

#include "lookupd/map_lookup.hpp"

#include <string>
#include <utility>
#include <vector>

namespace map_lookup_test {

inline postern::lookupd::MapSource source(std::string path) {
  postern::lookupd::MapSource s;
  s.path = std::move(path);
  s.query = "SELECT v FROM t WHERE k='%s'";
  return s;
}

inline postern::lookupd::MapDefinition def(postern::lookupd::MapKind kind,
                                           std::vector<postern::lookupd::MapSource> sources,
                                           std::string delim = "+") {
  postern::lookupd::MapDefinition d;
  d.name = "m";
  d.kind = kind;
  d.recipient_delimiter = std::move(delim);
  d.sources = std::move(sources);
  return d;
}

}  // namespace map_lookup_test
