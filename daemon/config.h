// Daemon configuration: flags > environment (GATEHOUSE_*) > YAML config file > defaults.
//
// Every setting has one snake_case name used in all three places:
//   flag      --max-line 4096  or  --max-line=4096  (underscores also accepted)
//             boolean flags: --durable, --durable=false, --durable false, --no-durable
//   env       GATEHOUSE_MAX_LINE=4096
//   YAML      max_line: 4096
// Tier lists take comma-separated uids/gids (numbers or names) in flags/env, and YAML lists;
// the YAML file may also nest them: tiers: {reader: {uids: [...], gids: [...]}, ...}.
//
// Thread-safety: Config is a plain value; LoadServeConfig is not thread-safe (reads getenv).
#ifndef GATEHOUSE_DAEMON_CONFIG_H_
#define GATEHOUSE_DAEMON_CONFIG_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gatehouse::daemon {

enum class Tier : uint8_t { kNone = 0, kReader = 1, kWriter = 2, kOperator = 3 };
const char* TierName(Tier t) noexcept;  // "none", "reader", "writer", "operator"

struct TierMembers {
  std::vector<uint32_t> uids;
  std::vector<uint32_t> gids;
  bool Matches(uint32_t uid, uint32_t gid) const noexcept;
};

struct Config {
  std::string socket_path = "./gatehouse.sock";
  std::string data_dir = "./data";
  std::string policy_dir;   // default: ./policy if it exists, else ./policies/respondio
  std::string config_file;  // the file that was loaded, if any

  unsigned threads = 0;                     // 0: number of cores
  size_t max_line = size_t{1} << 20;        // bytes per request line
  size_t max_connections = 1024;
  unsigned idle_timeout_s = 300;            // 0: never
  size_t max_output_bytes = size_t{4} << 20;  // pending reply bytes per connection
  unsigned min_rev_wait_ms = 1000;
  unsigned socket_mode = 0660;
  unsigned shutdown_grace_ms = 5000;        // in-flight requests get this long on shutdown
  unsigned busy_poll_us = 0;                // workers poll this long before sleeping (0: off)

  // Callers. When no operator uid/gid is configured, the daemon's own uid is the operator.
  TierMembers readers, writers, operators;

  std::string metrics_listen;  // "127.0.0.1:9464"; empty: no metrics endpoint
  std::string audit_log;       // path; empty: no audit log
  bool log_decisions = false;  // audit every check decision too (not only writes)
  std::string log_level = "info";  // debug | info | warn | error

  std::string default_workspace_name = "My Workspace";
  bool durable = true;       // false: no fsync per commit (tests, benchmarks)
  // LMDB map size (virtual address space reserved for the store; the file grows as needed).
  // Smaller values let tools with a limited address space (valgrind) run the daemon. Never
  // below the store's current size (LMDB raises it to that).
  size_t map_size = size_t{64} << 30;
  bool watch_policy = true;  // reload when files in the policy dir change (inotify)
  // Entries of each worker's org cache (StoreFacts, facts_adapter.h): org rows served without a
  // store read while the store's revision is unchanged. Rounded up to a power of two; about
  // 256 bytes each per worker. 0: off (every decision reads the org row).
  size_t org_cache_entries = 4096;

  // Tier of a peer with these credentials.
  Tier TierFor(uint32_t uid, uint32_t gid) const noexcept;
};

// Fills *config from argv (argv[0] is skipped; a leading "serve" is skipped too), the
// environment and the config file. Returns false with *err set on a bad flag or value, an
// unreadable or invalid config file. Never throws.
bool LoadServeConfig(int argc, char** argv, Config* config, std::string* err);

// Help text for `gatehouse serve`.
const char* ServeUsage();

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_CONFIG_H_
