// passdb_test_support.hpp - shared by the passdb tests: the seeds' password hashes and a
// temporary directory to write config and passwd files into.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <stdlib.h>
#include <string>
#include <system_error>

namespace passdb_test {

// Seed 003's `doveadm pw -s SHA512-CRYPT` outputs and seed 004's users.db hash.
inline const std::string kFrankHash =
    "$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..";
inline const std::string kLeeoHash =
    "$6$TF7w672arYUk.fGC$enDafylYnih4q140B2Bu4QfEvLCQAiQBHXpqDpHQPHruil4j4QbLXMvctWHdZ/MpuwvhmBGHTlNufVwc9hG34/";
inline const std::string kSeed004Hash =
    "$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH.7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/";

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "postern-passdb-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream out(path / name, std::ios::binary | std::ios::trunc);
    out << text;
    return (path / name).string();
  }
};

}  // namespace passdb_test
