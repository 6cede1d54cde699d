#include "partrain/core/deck_table.hpp"

#include <toml++/toml.h>

#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain {

struct DeckTable::Impl {
  toml::table t;
};

DeckTable::DeckTable() : impl_(std::make_unique<Impl>()) {}
DeckTable::~DeckTable() = default;
DeckTable::DeckTable(const DeckTable& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
DeckTable& DeckTable::operator=(const DeckTable& other) {
  if (this != &other) *impl_ = *other.impl_;
  return *this;
}

DeckTable DeckTable::parse(const std::string& text, const std::string& what) {
  DeckTable d;
  try {
    d.impl_->t = toml::parse(text, what);
  } catch (const toml::parse_error& e) {
    input_error(what, "", "TOML syntax error at line " + std::to_string(e.source().begin.line) + ": " +
                              std::string(e.description()));
  }
  return d;
}

DeckTable DeckTable::load_file(const std::string& key, const std::string& path) {
  DeckTable d;
  try {
    d.impl_->t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const std::string what(e.description());
    if (what.find("File could not be opened") != std::string::npos) input_error(key, path, "cannot read the deck");
    input_error(key, path, "TOML syntax error at line " + std::to_string(e.source().begin.line) + ": " + what);
  }
  return d;
}

void DeckTable::apply_override(const std::string& kv) {
  const auto eq = kv.find('='), dot = kv.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq) input_error("--set", kv, "must be section.key=value");
  const std::string sec = kv.substr(0, dot), key = kv.substr(dot + 1, eq - dot - 1), val = kv.substr(eq + 1);
  toml::table one;
  try {
    one = toml::parse("v = " + val);
  } catch (const toml::parse_error&) {
    one = toml::parse("v = \"" + val + "\"");
  }
  auto& t = impl_->t;
  if (!t.contains(sec)) t.insert(sec, toml::table{});
  auto* s = t[sec].as_table();
  if (!s) input_error("--set", kv, sec + " is not a table in the deck");
  s->insert_or_assign(key, *one.get("v"));
}

void DeckTable::set_int(const std::string& section, const std::string& key, std::int64_t value) {
  auto& t = impl_->t;
  if (!t.contains(section)) t.insert(section, toml::table{});
  if (auto* s = t[section].as_table()) s->insert_or_assign(key, value);
}

std::string DeckTable::get_string(const std::string& section, const std::string& key, const std::string& def) const {
  return impl_->t[section][key].value<std::string>().value_or(def);
}
double DeckTable::get_number(const std::string& section, const std::string& key, double def) const {
  return impl_->t[section][key].value<double>().value_or(def);  // an integer reads as a number too
}
std::int64_t DeckTable::get_int(const std::string& section, const std::string& key, std::int64_t def) const {
  return impl_->t[section][key].value<std::int64_t>().value_or(def);
}
bool DeckTable::get_bool(const std::string& section, const std::string& key, bool def) const {
  return impl_->t[section][key].value<bool>().value_or(def);
}

std::string DeckTable::sections_toml(const std::vector<std::string>& sections) const {
  toml::table sub;
  for (const auto& s : sections)
    if (const auto* n = impl_->t.get(s)) sub.insert(s, *n);
  std::ostringstream os;
  os << sub;
  return os.str();
}

}  // namespace partrain
