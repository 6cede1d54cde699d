// A deck's TOML values read as they are, without a mini-app's declared keys: a resolved deck (--print-deck, a result
// file's config_toml) or a deck file with `--set` overrides, as the performance model and partrain-predict read them.
//
// toml++ stays inside deck_table.cpp (and config.cpp): the files that include Kokkos are compiled by nvcc in the CUDA
// build, and nvcc cannot compile toml++'s headers (docs/gpu.md, "How the CUDA build splits the files").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace partrain {

class DeckTable {
 public:
  DeckTable();
  ~DeckTable();
  DeckTable(const DeckTable& other);
  DeckTable& operator=(const DeckTable& other);

  /// TOML text; a syntax error is an InputError naming `what` and the line.
  static DeckTable parse(const std::string& text, const std::string& what);
  /// A TOML file; unreadable or a syntax error: an InputError naming `key` and the path.
  static DeckTable load_file(const std::string& key, const std::string& path);

  /// "section.key=value", the value as TOML (a bare word is a string); errors name --set and the assignment.
  void apply_override(const std::string& assignment);
  void set_int(const std::string& section, const std::string& key, std::int64_t value);

  /// The value at section.key, or `def` where it is absent or of another type.
  std::string get_string(const std::string& section, const std::string& key, const std::string& def) const;
  double get_number(const std::string& section, const std::string& key, double def) const;
  std::int64_t get_int(const std::string& section, const std::string& key, std::int64_t def) const;
  bool get_bool(const std::string& section, const std::string& key, bool def) const;

  /// The given sections (those present) as TOML text.
  std::string sections_toml(const std::vector<std::string>& sections) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace partrain
