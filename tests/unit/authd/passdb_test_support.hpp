// passdb_test_support.hpp - shared by the passdb tests: the seeds' password hashes, and the
// temporary directory they write config and passwd files into.
#pragma once

#include "tests/unit/temp_dir.hpp"

#include <string>

namespace passdb_test {

// Seed 003's `doveadm pw -s SHA512-CRYPT` outputs and seed 004's users.db hash.
inline const std::string kFrankHash =
    "$6$dEqUVsCirHzV8kHw$hgC0x0ufah.N0PzUVvhLEMnoww5lo.JBmeLSsRNDkgWVylC55Gk6zA1KWsn.SiIAAIDEqHxtugGZWHl1qMex..";
inline const std::string kLeeoHash =
    "$6$TF7w672arYUk.fGC$enDafylYnih4q140B2Bu4QfEvLCQAiQBHXpqDpHQPHruil4j4QbLXMvctWHdZ/MpuwvhmBGHTlNufVwc9hG34/";
inline const std::string kSeed004Hash =
    "$6$g6adDoglZXU5CJq1$AMojgOJQPtdEEGt1MW86YZUDMlf1Wi6QLz6RH.7BHJpNzjQmYpRmP./IN0eRP8.eLAmEcnoRtzrS1jonKQT9k/";

using postern::testing::TempDir;

}  // namespace passdb_test
