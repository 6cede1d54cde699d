// Input decks: a declared schema of dotted keys, filled from a TOML file and `--set key=value` overrides.
//
// Every key a mini-app accepts is declared with its type, default, range or choices and a one-line doc. A deck
// key that is not declared, a value of the wrong type or out of range is an InputError naming the key and value
// ("train.steps = -3: must be >= 1"). The resolved deck prints as a table at start-up and serialises to TOML
// (the `config_toml` attribute of every result file) so that a run can be repeated from its result.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace partrain {

class Deck {
 public:
  using IntList = std::vector<std::int64_t>;
  using Value = std::variant<std::int64_t, double, bool, std::string, IntList>;

  void declare_int(const std::string& key, std::int64_t def, const std::string& doc,
                   std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
  /// min_exclusive: the value must be strictly greater than min (e.g. a positive size).
  void declare_float(const std::string& key, double def, const std::string& doc, double min = -1e300,
                     double max = 1e300, bool min_exclusive = false);
  void declare_bool(const std::string& key, bool def, const std::string& doc);
  void declare_string(const std::string& key, const std::string& def, const std::string& doc,
                      std::vector<std::string> choices = {});
  void declare_int_list(const std::string& key, IntList def, const std::string& doc, std::int64_t min_each = 1);
  /// A key that is either one of `choices` (a string) or a list of integers >= min_each (pp.partition).
  void declare_choice_or_int_list(const std::string& key, const std::string& def, const std::string& doc,
                                  std::vector<std::string> choices, std::int64_t min_each = 1);

  /// Reads a TOML deck; unreadable file, syntax error, unknown key or bad value: InputError.
  void load_file(const std::string& path);
  /// Same, from text (`origin` names it in errors).
  void load_string(const std::string& text, const std::string& origin);
  /// Applies "key=value" (value in TOML syntax; a bare word is taken as a string).
  void apply_override(const std::string& assignment);

  std::int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const IntList& get_int_list(const std::string& key) const;
  /// The value of any key, whatever its type (for keys that take more than one).
  const Value& get(const std::string& key) const;
  bool has(const std::string& key) const;

  /// The resolved deck as TOML, sections in declaration order.
  std::string to_toml() const;
  /// A fixed-width table: key, value, source (default, deck, --set), doc.
  std::string table() const;

  /// Renders a value as TOML.
  static std::string render(const Value& v);

 private:
  enum class Source { Default, Deck, Override };
  struct Entry {
    std::string key, doc;
    Value value;
    Source source = Source::Default;
    double min = 0, max = 0;
    bool min_exclusive = false;
    std::int64_t imin = 0, imax = 0;
    std::vector<std::string> choices;
    bool choice_or_list = false;
  };
  Entry& find(const std::string& key, const std::string& value_for_error);
  const Entry& find(const std::string& key) const;
  void assign(Entry& e, const Value& v, Source source);
  void declare(Entry e);
  std::vector<Entry> entries_;
};

}  // namespace partrain
