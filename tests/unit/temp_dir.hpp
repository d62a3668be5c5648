// temp_dir.hpp - a private directory for one test under the system temp dir, removed with
// everything in it when the test ends. Shared by every unit-test binary.
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace postern::testing {

struct TempDir {
  std::string path;

  // Under base, by default the system temp dir ($TMPDIR or /tmp).
  explicit TempDir(const std::string& tag = "postern-test",
                   const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::string tmpl = (base / (tag + ".XXXXXX")).string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // path/name.
  std::filesystem::path operator/(const std::string& name) const { return std::filesystem::path(path) / name; }

  // Writes text, bytes as given, to path/name and returns that file's path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string file = (*this / name).string();
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    return file;
  }
};

}  // namespace postern::testing
