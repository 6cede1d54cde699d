#include "partrain/core/config.hpp"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "partrain/core/error.hpp"

namespace partrain {
namespace {

std::string type_name(const Deck::Value& v) {
  switch (v.index()) {
    case 0: return "an integer";
    case 1: return "a number";
    case 2: return "true or false";
    case 3: return "a string";
    default: return "a list of integers";
  }
}

std::string render_node(const toml::node& n) {
  std::ostringstream os;
  if (auto s = n.as_string()) return "\"" + s->get() + "\"";
  n.visit([&](auto&& x) { os << x; });
  return os.str();
}

// Converts a TOML node to the type of `like`; returns false when it cannot.
bool convert(const toml::node& n, const Deck::Value& like, Deck::Value& out) {
  switch (like.index()) {
    case 0:
      if (auto v = n.as_integer()) { out = v->get(); return true; }
      return false;
    case 1:
      if (auto v = n.as_floating_point()) { out = v->get(); return true; }
      if (auto v = n.as_integer()) { out = static_cast<double>(v->get()); return true; }
      return false;
    case 2:
      if (auto v = n.as_boolean()) { out = v->get(); return true; }
      return false;
    case 3:
      if (auto v = n.as_string()) { out = v->get(); return true; }
      return false;
    default: {
      auto arr = n.as_array();
      if (!arr) return false;
      Deck::IntList list;
      for (auto&& e : *arr) {
        auto v = e.as_integer();
        if (!v) return false;
        list.push_back(v->get());
      }
      out = list;
      return true;
    }
  }
}

/// convert() for a key of one type, or, for a choice-or-list key, a string or a list of integers.
bool convert_any(const toml::node& n, const Deck::Value& like, bool choice_or_list, Deck::Value& out) {
  if (!choice_or_list) return convert(n, like, out);
  return convert(n, Deck::Value{std::string()}, out) || convert(n, Deck::Value{Deck::IntList{}}, out);
}

std::string expected(const Deck::Value& like, bool choice_or_list, const std::vector<std::string>& choices) {
  if (!choice_or_list) return type_name(like);
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  return "one of: " + list + ", or a list of integers";
}

void flatten(const toml::table& t, const std::string& prefix, std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = v.as_table()) flatten(*sub, key, out);
    else out.emplace_back(key, &v);
  }
}

}  // namespace

std::string Deck::render(const Value& v) {
  std::ostringstream os;
  switch (v.index()) {
    case 0: os << std::get<0>(v); break;
    case 1: {
      const double d = std::get<1>(v);
      std::string s;
      for (int prec = 6; prec <= 17; ++prec) {  // the shortest text that reads back as the same double
        std::ostringstream t;
        t << std::setprecision(prec) << d;
        s = t.str();
        if (std::stod(s) == d) break;
      }
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a TOML float
      return s;
    }
    case 2: os << (std::get<2>(v) ? "true" : "false"); break;
    case 3: os << std::quoted(std::get<3>(v)); break;
    default: {
      os << "[";
      const auto& l = std::get<4>(v);
      for (size_t i = 0; i < l.size(); ++i) os << (i ? ", " : "") << l[i];
      os << "]";
    }
  }
  return os.str();
}

void Deck::declare(Entry e) {
  PARTRAIN_REQUIRE(!has(e.key), "key declared twice: " + e.key);
  entries_.push_back(std::move(e));
}

void Deck::declare_int(const std::string& key, std::int64_t def, const std::string& doc, std::int64_t min,
                       std::int64_t max) {
  Entry e{key, doc, def, Source::Default, 0, 0, false, 0, 0, {}};
  e.imin = min;
  e.imax = max;
  declare(std::move(e));
}

void Deck::declare_float(const std::string& key, double def, const std::string& doc, double min, double max,
                         bool min_exclusive) {
  Entry e{key, doc, def, Source::Default, 0, 0, false, 0, 0, {}};
  e.min = min;
  e.max = max;
  e.min_exclusive = min_exclusive;
  declare(std::move(e));
}

void Deck::declare_bool(const std::string& key, bool def, const std::string& doc) { declare(Entry{key, doc, def, Source::Default, 0, 0, false, 0, 0, {}}); }

void Deck::declare_string(const std::string& key, const std::string& def, const std::string& doc,
                          std::vector<std::string> choices) {
  Entry e{key, doc, def, Source::Default, 0, 0, false, 0, 0, {}};
  e.choices = std::move(choices);
  declare(std::move(e));
}

void Deck::declare_choice_or_int_list(const std::string& key, const std::string& def, const std::string& doc,
                                      std::vector<std::string> choices, std::int64_t min_each) {
  Entry e{key, doc, def, Source::Default, 0, 0, false, 0, 0, {}};
  e.choices = std::move(choices);
  e.imin = min_each;
  e.imax = INT64_MAX;
  e.choice_or_list = true;
  declare(std::move(e));
}

void Deck::declare_int_list(const std::string& key, IntList def, const std::string& doc, std::int64_t min_each) {
  Entry e{key, doc, std::move(def), Source::Default, 0, 0, false, 0, 0, {}};
  e.imin = min_each;
  e.imax = INT64_MAX;
  declare(std::move(e));
}

bool Deck::has(const std::string& key) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
}

Deck::Entry& Deck::find(const std::string& key, const std::string& value_for_error) {
  for (auto& e : entries_)
    if (e.key == key) return e;
  input_error(key, value_for_error, "unknown key (--print-deck lists every key)");
}

const Deck::Entry& Deck::find(const std::string& key) const {
  for (const auto& e : entries_)
    if (e.key == key) return e;
  throw RuntimeError("partrain internal error: deck key not declared: " + key);
}

void Deck::assign(Entry& e, const Value& v, Source source) {
  const std::string shown = render(v);
  if (v.index() == 0) {
    auto x = std::get<0>(v);
    if (x < e.imin) input_error(e.key, shown, "must be >= " + std::to_string(e.imin));
    if (x > e.imax) input_error(e.key, shown, "must be <= " + std::to_string(e.imax));
  } else if (v.index() == 1) {
    double x = std::get<1>(v);
    if (!std::isfinite(x)) input_error(e.key, shown, "must be finite");
    if (e.min_exclusive && x <= e.min) input_error(e.key, shown, "must be > " + render(Value{e.min}));
    if (x < e.min) input_error(e.key, shown, "must be >= " + render(Value{e.min}));
    if (x > e.max) input_error(e.key, shown, "must be <= " + render(Value{e.max}));
  } else if (v.index() == 3 && !e.choices.empty()) {
    const auto& s = std::get<3>(v);
    if (std::find(e.choices.begin(), e.choices.end(), s) == e.choices.end()) {
      std::string list;
      for (const auto& c : e.choices) list += (list.empty() ? "" : ", ") + c;
      input_error(e.key, shown, "must be one of: " + list + (e.choice_or_list ? ", or a list of integers" : ""));
    }
  } else if (v.index() == 4) {
    const auto& l = std::get<4>(v);
    if (l.empty()) input_error(e.key, shown, "must not be empty");
    for (auto x : l)
      if (x < e.imin) input_error(e.key, shown, "every element must be >= " + std::to_string(e.imin));
  }
  e.value = v;
  e.source = source;
}

void Deck::load_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) input_error("--input", path, "is a directory, not an input deck");
  std::ifstream in(path);
  if (!in) input_error("--input", path, "cannot read the input deck");
  std::stringstream ss;
  ss << in.rdbuf();
  load_string(ss.str(), path);
}

void Deck::load_string(const std::string& text, const std::string& origin) {
  toml::table tbl;
  try {
    tbl = toml::parse(text, origin);
  } catch (const toml::parse_error& err) {
    const auto& where = err.source().begin;
    input_error("--input", origin, "TOML syntax error at line " + std::to_string(where.line) + ", column " +
                                       std::to_string(where.column) + ": " + std::string(err.description()));
  }
  std::vector<std::pair<std::string, const toml::node*>> flat;
  flatten(tbl, "", flat);
  for (auto& [key, node] : flat) {
    Entry& e = find(key, render_node(*node));
    Value v;
    if (!convert_any(*node, e.value, e.choice_or_list, v)) input_error(key, render_node(*node), "must be " + expected(e.value, e.choice_or_list, e.choices));
    assign(e, v, Source::Deck);
  }
}

void Deck::apply_override(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) input_error("--set", assignment, "expected key=value");
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
  };
  std::string key = trim(assignment.substr(0, eq)), text = trim(assignment.substr(eq + 1));
  Entry& e = find(key, text);
  Value v;
  bool ok = false;
  try {
    auto t = toml::parse("v = " + text);
    ok = convert_any(*t.get("v"), e.value, e.choice_or_list, v);
  } catch (const toml::parse_error&) {
    ok = false;
  }
  if (!ok && (e.value.index() == 3 || e.choice_or_list)) {  // a bare word for a string key
    v = text;
    ok = true;
  }
  if (!ok) input_error(key, text, "must be " + expected(e.value, e.choice_or_list, e.choices));
  assign(e, v, Source::Override);
}

std::int64_t Deck::get_int(const std::string& key) const { return std::get<0>(find(key).value); }
double Deck::get_float(const std::string& key) const { return std::get<1>(find(key).value); }
bool Deck::get_bool(const std::string& key) const { return std::get<2>(find(key).value); }
const std::string& Deck::get_string(const std::string& key) const { return std::get<3>(find(key).value); }
const Deck::IntList& Deck::get_int_list(const std::string& key) const { return std::get<4>(find(key).value); }
const Deck::Value& Deck::get(const std::string& key) const { return find(key).value; }


std::string Deck::to_toml() const {
  // Group by section (everything before the last dot), in declaration order of first appearance.
  std::vector<std::string> sections;
  for (const auto& e : entries_) {
    auto dot = e.key.rfind('.');
    std::string sec = dot == std::string::npos ? "" : e.key.substr(0, dot);
    if (std::find(sections.begin(), sections.end(), sec) == sections.end()) sections.push_back(sec);
  }
  std::ostringstream os;
  for (const auto& sec : sections) {
    if (!sec.empty()) os << "\n[" << sec << "]\n";
    for (const auto& e : entries_) {
      auto dot = e.key.rfind('.');
      std::string esec = dot == std::string::npos ? "" : e.key.substr(0, dot);
      if (esec != sec) continue;
      os << (dot == std::string::npos ? e.key : e.key.substr(dot + 1)) << " = " << render(e.value) << "\n";
    }
  }
  return os.str();
}

std::string Deck::table() const {
  size_t wk = 3, wv = 5;
  for (const auto& e : entries_) {
    wk = std::max(wk, e.key.size());
    wv = std::max(wv, std::min<size_t>(render(e.value).size(), 40));
  }
  std::ostringstream os;
  os << "# " << std::left << std::setw(int(wk)) << "key" << "  " << std::setw(int(wv)) << "value" << "  "
     << std::setw(8) << "source" << "  doc\n";
  for (const auto& e : entries_) {
    const char* src = e.source == Source::Default ? "default" : e.source == Source::Deck ? "deck" : "--set";
    os << "  " << std::left << std::setw(int(wk)) << e.key << "  " << std::setw(int(wv)) << render(e.value) << "  "
       << std::setw(8) << src << "  " << e.doc << "\n";
  }
  return os.str();
}

}  // namespace partrain
