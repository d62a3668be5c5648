// query_command.hpp - `lookupd -c FILE -q KEY MAP`: one lookup, run locally and explained.
//
// Like `postmap -q KEY TABLE`, but it also prints each step: the keys tried, the SQL each
// source ran, what it answered, the final result and the time taken. Exit status: 0
// found (value on the last line), 1 not found, 2 error.
#pragma once

#include "lookupd/lookupd_config.hpp"

#include <string>

namespace postern::lookupd {

int run_query_command(const LookupdConfig& config, const std::string& key, const std::string& map_name);

}  // namespace postern::lookupd
