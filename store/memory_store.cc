// In-memory backend: copy-on-write snapshots of std::map tables.
#include "store/memory_store.h"

#include <array>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/internal/coding.h"
#include "store/internal/kv.h"
#include "store/internal/reader_impl.h"
#include "store/internal/store_impl.h"

namespace gatehouse::store {
namespace {

using internal::KvRead;
using internal::KvTxn;
using internal::ScanFn;
using internal::Table;
using Map = std::map<std::string, std::string, std::less<>>;
using State = std::array<Map, internal::kTableCount>;

bool MapGet(const State& s, Table t, std::string_view key, std::string_view* k, std::string_view* v) {
  const Map& m = s[static_cast<int>(t)];
  auto it = m.find(key);
  if (it == m.end()) return false;
  *k = it->first;
  *v = it->second;
  return true;
}

bool MapScan(const State& s, Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) {
  const Map& m = s[static_cast<int>(t)];
  auto it = m.lower_bound(start.empty() ? prefix : start);
  for (; it != m.end(); ++it) {
    std::string_view k = it->first;
    if (k.substr(0, prefix.size()) != prefix) break;
    if (!fn(k, it->second)) break;
  }
  return true;
}

class MemoryBackend;

class MemReadKv : public KvRead {
 public:
  bool Get(Table t, std::string_view key, std::string_view* k, std::string_view* v) noexcept override {
    return state_ && MapGet(*state_, t, key, k, v);
  }
  bool Scan(Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    return state_ && MapScan(*state_, t, prefix, start, fn);
  }
  bool error() const noexcept override { return false; }
  std::shared_ptr<const State> state_;
};

class MemWriteKv : public KvTxn {
 public:
  explicit MemWriteKv(std::shared_ptr<State> s) : state_(std::move(s)) {}
  bool Get(Table t, std::string_view key, std::string_view* k, std::string_view* v) noexcept override {
    return MapGet(*state_, t, key, k, v);
  }
  bool Scan(Table t, std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    return MapScan(*state_, t, prefix, start, fn);
  }
  bool error() const noexcept override { return false; }
  bool Put(Table t, std::string_view key, std::string_view value) override {
    Map& m = (*state_)[static_cast<int>(t)];
    auto it = m.find(key);
    if (nested_) undo_.push_back({t, std::string(key), it == m.end() ? std::nullopt : std::optional<std::string>(it->second)});
    if (it == m.end()) {
      m.emplace(std::string(key), std::string(value));
    } else {
      it->second.assign(value);
    }
    return true;
  }
  bool Del(Table t, std::string_view key) override {
    Map& m = (*state_)[static_cast<int>(t)];
    auto it = m.find(key);
    if (it == m.end()) return true;
    if (nested_) undo_.push_back({t, std::string(key), std::move(it->second)});
    m.erase(it);
    return true;
  }
  bool AppendChange(uint64_t rev, std::string_view json) override {
    std::string k;
    internal::PutBigEndian64(&k, rev);
    return Put(Table::kChanges, k, json);
  }
  bool BeginNested() override {
    nested_ = true;
    undo_.clear();
    return true;
  }
  bool CommitNested() override {
    nested_ = false;
    undo_.clear();
    return true;
  }
  void AbortNested() override {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      Map& m = (*state_)[static_cast<int>(it->t)];
      if (it->old) {
        m[it->key] = std::move(*it->old);
      } else {
        m.erase(it->key);
      }
    }
    undo_.clear();
    nested_ = false;
  }
  std::shared_ptr<State> state_;

 private:
  struct Undo {
    Table t;
    std::string key;
    std::optional<std::string> old;
  };
  bool nested_ = false;
  std::vector<Undo> undo_;
};

class MemoryBackend : public internal::Backend {
 public:
  MemoryBackend() : current_(std::make_shared<State>()) {}

  std::shared_ptr<const State> Current() {
    std::lock_guard<std::mutex> l(mu_);
    return current_;
  }

  std::unique_ptr<ReadTxn> NewReadTxn(const std::function<int64_t()>* clock) override;

  Status BeginWrite(std::unique_ptr<KvTxn>* out) override {
    *out = std::make_unique<MemWriteKv>(std::make_shared<State>(*Current()));
    return Status::Ok();
  }
  Status CommitWrite(std::unique_ptr<KvTxn> txn) override {
    auto* w = static_cast<MemWriteKv*>(txn.get());
    std::lock_guard<std::mutex> l(mu_);
    current_ = std::move(w->state_);
    return Status::Ok();
  }
  uint64_t StoredRevision() override { return 0; }
  uint64_t StoreBytes() override {
    auto s = Current();
    uint64_t n = 0;
    for (const Map& m : *s) {
      for (const auto& [k, v] : m) n += k.size() + v.size();
    }
    return n;
  }

 private:
  std::mutex mu_;
  std::shared_ptr<const State> current_;  // GUARDED_BY(mu_)
};

class MemReadTxn : public internal::KvReader {
 public:
  MemReadTxn(MemoryBackend* b, const std::function<int64_t()>* clock) : KvReader(&kv_, clock), backend_(b) {}
  bool Renew() noexcept override {
    kv_.state_ = backend_->Current();
    clear_corrupt();
    NextSnapshot();
    return LoadRevision();
  }
  void Reset() noexcept override {
    kv_.state_.reset();
    NextSnapshot();
    set_rev(0);
  }

 private:
  MemReadKv kv_;
  MemoryBackend* backend_;
};

std::unique_ptr<ReadTxn> MemoryBackend::NewReadTxn(const std::function<int64_t()>* clock) {
  return std::make_unique<MemReadTxn>(this, clock);
}

}  // namespace

Status OpenMemoryStore(const Options& options, std::unique_ptr<Store>* out) {
  try {
    *out = std::make_unique<internal::StoreImpl>(options, std::make_unique<MemoryBackend>());
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("cannot open memory store: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace gatehouse::store
