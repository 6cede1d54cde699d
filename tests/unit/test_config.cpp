// Deck: TOML parsing, overrides, validation errors naming key and value, round trip through to_toml().
#include <gtest/gtest.h>

#include "partrain/core/config.hpp"
#include "partrain/core/error.hpp"
#include "partrain/models/model_config.hpp"

using partrain::Deck;
using partrain::InputError;

namespace {
Deck sample_deck() {
  Deck d;
  d.declare_int("train.steps", 20, "steps", 1);
  d.declare_float("train.lr", 1e-3, "lr", 0.0);
  d.declare_bool("run.verbose", false, "verbose");
  d.declare_string("model.kind", "gpt", "model", {"gpt", "mlp"});
  d.declare_int_list("model.mlp.widths", {4, 8, 2}, "widths");
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Deck, DefaultsAndDeckValues) {
  auto d = sample_deck();
  EXPECT_EQ(d.get_int("train.steps"), 20);
  d.load_string("[train]\nsteps = 7\nlr = 2\n[model]\nkind = \"mlp\"\nmlp.widths = [3, 5]\n", "test");
  EXPECT_EQ(d.get_int("train.steps"), 7);
  EXPECT_DOUBLE_EQ(d.get_float("train.lr"), 2.0);  // an integer is accepted for a float key
  EXPECT_EQ(d.get_string("model.kind"), "mlp");
  EXPECT_EQ(d.get_int_list("model.mlp.widths"), (Deck::IntList{3, 5}));
}

TEST(Deck, OverridesWinAndBareWordsAreStrings) {
  auto d = sample_deck();
  d.load_string("train.steps = 7", "test");
  d.apply_override("train.steps=9");
  d.apply_override("model.kind = mlp");
  d.apply_override("run.verbose=true");
  d.apply_override("model.mlp.widths=[1,2,3]");
  EXPECT_EQ(d.get_int("train.steps"), 9);
  EXPECT_EQ(d.get_string("model.kind"), "mlp");
  EXPECT_TRUE(d.get_bool("run.verbose"));
  EXPECT_EQ(d.get_int_list("model.mlp.widths").size(), 3u);
}

TEST(Deck, ErrorsNameKeyAndValue) {
  auto d = sample_deck();
  EXPECT_EQ(error_of([&] { d.load_string("train.stepz = 3", "t"); }).rfind("train.stepz = 3: unknown key", 0), 0u);
  EXPECT_EQ(error_of([&] { d.apply_override("train.steps=0"); }), "train.steps = 0: must be >= 1");
  EXPECT_EQ(error_of([&] { d.apply_override("train.steps=abc"); }), "train.steps = abc: must be an integer");
  EXPECT_EQ(error_of([&] { d.apply_override("model.kind=cnn"); }), "model.kind = \"cnn\": must be one of: gpt, mlp");
  EXPECT_EQ(error_of([&] { d.apply_override("nonsense"); }), "--set = nonsense: expected key=value");
  EXPECT_NE(error_of([&] { d.load_string("train = [", "deck.toml"); }).find("TOML syntax error"), std::string::npos);
  EXPECT_NE(error_of([&] { d.load_file("/nonexistent/deck.toml"); }).find("cannot read"), std::string::npos);
  EXPECT_NE(error_of([&] { d.apply_override("train.lr=-1"); }).find("train.lr = -1"), std::string::npos);
}

TEST(Deck, TomlRoundTrip) {
  auto d = sample_deck();
  d.apply_override("train.lr=0.25");
  d.apply_override("model.mlp.widths=[9,8]");
  auto e = sample_deck();
  e.load_string(d.to_toml(), "roundtrip");
  EXPECT_EQ(e.to_toml(), d.to_toml());
  EXPECT_DOUBLE_EQ(e.get_float("train.lr"), 0.25);
  EXPECT_NE(d.table().find("--set"), std::string::npos);
}

TEST(ModelSpec, CrossChecks) {
  Deck d;
  partrain::models::declare_model_keys(d);
  partrain::models::declare_train_keys(d);
  d.apply_override("model.gpt.heads=3");
  EXPECT_EQ(error_of([&] { partrain::models::read_model_spec(d); }),
            "model.gpt.heads = 3: must divide model.gpt.channels = 256");
  d.apply_override("train.warmup=20");  // at least one step is timed: the warm-up is clamped to steps − 1
  const auto ts = partrain::models::read_train_spec(d);
  EXPECT_EQ(ts.warmup, ts.steps - 1);
  EXPECT_EQ(ts.warmup_requested, 20);
  d.apply_override("train.steps=1");
  EXPECT_EQ(partrain::models::read_train_spec(d).warmup, 0);
}

TEST(Deck, ChoiceOrIntList) {
  Deck d;
  d.declare_choice_or_int_list("pp.partition", "uniform", "doc", {"uniform", "flops"});
  EXPECT_EQ(std::get<std::string>(d.get("pp.partition")), "uniform");
  d.apply_override("pp.partition=flops");
  EXPECT_EQ(std::get<std::string>(d.get("pp.partition")), "flops");
  d.apply_override("pp.partition=[3, 1]");
  EXPECT_EQ(std::get<Deck::IntList>(d.get("pp.partition")), (Deck::IntList{3, 1}));
  d.load_string("[pp]\npartition = [2, 2]\n", "t");
  EXPECT_EQ(std::get<Deck::IntList>(d.get("pp.partition")), (Deck::IntList{2, 2}));
  EXPECT_NE(d.to_toml().find("partition = [2, 2]"), std::string::npos);
  EXPECT_EQ(error_of([&] { d.apply_override("pp.partition=even"); }),
            "pp.partition = \"even\": must be one of: uniform, flops, or a list of integers");
  EXPECT_EQ(error_of([&] { d.apply_override("pp.partition=[2, 0]"); }),
            "pp.partition = [2, 0]: every element must be >= 1");
  EXPECT_EQ(error_of([&] { d.load_string("[pp]\npartition = 3\n", "t"); }),
            "pp.partition = 3: must be one of: uniform, flops, or a list of integers");
}
