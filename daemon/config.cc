#include "daemon/config.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <map>
#include <string_view>

#include <yaml-cpp/yaml.h>

namespace gatehouse::daemon {

const char* TierName(Tier t) noexcept {
  switch (t) {
    case Tier::kNone: return "none";
    case Tier::kReader: return "reader";
    case Tier::kWriter: return "writer";
    case Tier::kOperator: return "operator";
  }
  return "none";
}

bool TierMembers::Matches(uint32_t uid, uint32_t gid) const noexcept {
  return std::find(uids.begin(), uids.end(), uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), gid) != gids.end();
}

Tier Config::TierFor(uint32_t uid, uint32_t gid) const noexcept {
  if (operators.uids.empty() && operators.gids.empty()) {
    if (uid == static_cast<uint32_t>(geteuid())) return Tier::kOperator;
  } else if (operators.Matches(uid, gid)) {
    return Tier::kOperator;
  }
  if (writers.Matches(uid, gid)) return Tier::kWriter;
  if (readers.Matches(uid, gid)) return Tier::kReader;
  return Tier::kNone;
}

namespace {

using Setter = std::function<bool(Config*, const std::string&, std::string*)>;

struct Option {
  const char* name;  // snake_case
  const char* arg;   // "" for a boolean flag that may be given without a value
  const char* help;
  Setter set;
};

template <typename T>
bool ParseUnsigned(const std::string& v, T* out, uint64_t max, int base = 10) {
  uint64_t x = 0;
  if (v.empty()) return false;
  auto r = std::from_chars(v.data(), v.data() + v.size(), x, base);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || x > max) return false;
  *out = static_cast<T>(x);
  return true;
}

bool ParseBool(const std::string& v, bool* out) {
  std::string l = v;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "1" || l == "true" || l == "yes" || l == "on") { *out = true; return true; }
  if (l == "0" || l == "false" || l == "no" || l == "off") { *out = false; return true; }
  return false;
}

// Bytes with an optional binary suffix: 1048576, 512K, 64M, 4G, 1T (KiB/MiB/... also accepted).
bool ParseSize(const std::string& v, size_t* out, uint64_t min, uint64_t max) {
  size_t digits = 0;
  while (digits < v.size() && std::isdigit(static_cast<unsigned char>(v[digits]))) ++digits;
  if (digits == 0) return false;
  uint64_t x = 0;
  auto r = std::from_chars(v.data(), v.data() + digits, x);
  if (r.ec != std::errc() || r.ptr != v.data() + digits) return false;
  std::string suffix = v.substr(digits);
  std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  unsigned shift = 0;
  if (suffix.empty() || suffix == "b") shift = 0;
  else if (suffix == "k" || suffix == "kib") shift = 10;
  else if (suffix == "m" || suffix == "mib") shift = 20;
  else if (suffix == "g" || suffix == "gib") shift = 30;
  else if (suffix == "t" || suffix == "tib") shift = 40;
  else return false;
  if (shift && x > (max >> shift)) return false;
  x <<= shift;
  if (x < min || x > max) return false;
  *out = static_cast<size_t>(x);
  return true;
}

bool ParseIdList(const std::string& v, bool groups, std::vector<uint32_t>* out,
                 std::string* err) {
  out->clear();
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    std::string item = v.substr(pos, comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      uint32_t id;
      if (ParseUnsigned(item, &id, 0xFFFFFFFFu)) {
        out->push_back(id);
      } else if (groups) {
        struct group* g = getgrnam(item.c_str());
        if (!g) { *err = "unknown group '" + item + "'"; return false; }
        out->push_back(static_cast<uint32_t>(g->gr_gid));
      } else {
        struct passwd* p = getpwnam(item.c_str());
        if (!p) { *err = "unknown user '" + item + "'"; return false; }
        out->push_back(static_cast<uint32_t>(p->pw_uid));
      }
    }
    pos = comma + 1;
  }
  return true;
}

#define GH_STR(field)                                                   \
  [](Config* c, const std::string& v, std::string*) { c->field = v; return true; }
#define GH_UINT(field, max)                                                           \
  [](Config* c, const std::string& v, std::string* e) {                               \
    if (!ParseUnsigned(v, &c->field, max)) { *e = "must be an integer <= " #max; return false; } \
    return true;                                                                      \
  }
#define GH_BOOL(field)                                                                \
  [](Config* c, const std::string& v, std::string* e) {                               \
    if (!ParseBool(v, &c->field)) { *e = "must be true or false"; return false; }     \
    return true;                                                                      \
  }
#define GH_IDS(field, groups)                                                         \
  [](Config* c, const std::string& v, std::string* e) {                               \
    return ParseIdList(v, groups, &c->field, e);                                      \
  }

const std::vector<Option>& Options() {
  static const std::vector<Option> kOptions = {
      {"socket", "PATH", "Unix socket path (default ./gatehouse.sock)", GH_STR(socket_path)},
      {"data", "DIR", "store directory (default ./data)", GH_STR(data_dir)},
      {"policy", "DIR", "policy directory (default ./policy or ./policies/respondio)",
       GH_STR(policy_dir)},
      {"threads", "N", "worker threads (default: number of cores)", GH_UINT(threads, 256)},
      {"max_line", "BYTES", "longest request line (default 1048576)",
       GH_UINT(max_line, 1ull << 30)},
      {"max_connections", "N", "concurrent connections (default 1024)",
       GH_UINT(max_connections, 1000000)},
      {"idle_timeout_s", "S", "close idle connections after S seconds; 0 never (default 300)",
       GH_UINT(idle_timeout_s, 86400 * 365)},
      {"max_output_bytes", "BYTES",
       "pending reply bytes per connection before reading pauses (default 4194304)",
       GH_UINT(max_output_bytes, 1ull << 32)},
      {"min_rev_wait_ms", "MS", "longest wait for min_rev (default 1000)",
       GH_UINT(min_rev_wait_ms, 600000)},
      {"socket_mode", "OCTAL", "socket file mode (default 0660)",
       [](Config* c, const std::string& v, std::string* e) {
         if (!ParseUnsigned(v, &c->socket_mode, 07777, 8)) {
           *e = "must be an octal mode such as 0660";
           return false;
         }
         return true;
       }},
      {"shutdown_grace_ms", "MS", "time in-flight requests get on shutdown (default 5000)",
       GH_UINT(shutdown_grace_ms, 600000)},
      {"busy_poll_us", "US",
       "workers poll this long for more requests before sleeping: lower latency, more CPU "
       "(default 0: off)",
       GH_UINT(busy_poll_us, 100000)},
      {"reader_uids", "LIST", "uids (or user names) with reader access", GH_IDS(readers.uids, false)},
      {"reader_gids", "LIST", "gids (or group names) with reader access", GH_IDS(readers.gids, true)},
      {"writer_uids", "LIST", "uids with writer access", GH_IDS(writers.uids, false)},
      {"writer_gids", "LIST", "gids with writer access", GH_IDS(writers.gids, true)},
      {"operator_uids", "LIST", "uids with operator access (default: the daemon's own uid)",
       GH_IDS(operators.uids, false)},
      {"operator_gids", "LIST", "gids with operator access", GH_IDS(operators.gids, true)},
      {"metrics_listen", "HOST:PORT", "Prometheus /metrics endpoint, e.g. 127.0.0.1:9464",
       GH_STR(metrics_listen)},
      {"audit_log", "PATH", "audit log file (JSON lines)", GH_STR(audit_log)},
      {"log_decisions", "", "also audit every check decision", GH_BOOL(log_decisions)},
      {"log_level", "LEVEL", "debug | info | warn | error (default info)",
       [](Config* c, const std::string& v, std::string* e) {
         if (v != "debug" && v != "info" && v != "warn" && v != "error") {
           *e = "must be debug, info, warn or error";
           return false;
         }
         c->log_level = v;
         return true;
       }},
      {"default_workspace_name", "NAME", "name of the workspace org.create makes (My Workspace)",
       GH_STR(default_workspace_name)},
      {"durable", "", "fsync every commit (default true)", GH_BOOL(durable)},
      {"map_size", "BYTES", "LMDB map size, e.g. 4G (default 64G; address space, not memory)",
       [](Config* c, const std::string& v, std::string* e) {
         if (!ParseSize(v, &c->map_size, uint64_t{1} << 20, uint64_t{1} << 44)) {
           *e = "must be a size between 1M and 16T, e.g. 4G or 1073741824";
           return false;
         }
         return true;
       }},
      {"watch_policy", "", "reload on policy file changes (default true)", GH_BOOL(watch_policy)},
      {"org_cache_entries", "N",
       "org rows cached per worker while the store revision is unchanged (default 4096; 0: off)",
       GH_UINT(org_cache_entries, 65536)},
  };
  return kOptions;
}

const Option* FindOption(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  for (const Option& o : Options()) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

std::string EnvName(const char* name) {
  std::string e = "GATEHOUSE_";
  for (const char* p = name; *p; ++p) e.push_back(static_cast<char>(std::toupper(*p)));
  return e;
}

bool ScalarOrList(const YAML::Node& n, std::string* out) {
  if (n.IsScalar()) {
    *out = n.Scalar();
    return true;
  }
  if (n.IsSequence()) {
    out->clear();
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node e = n[i];
      if (!e.IsScalar()) return false;
      if (i) out->push_back(',');
      *out += e.Scalar();
    }
    return true;
  }
  if (n.IsNull()) {
    out->clear();
    return true;
  }
  return false;
}

bool LoadFile(const std::string& path, std::vector<std::pair<std::string, std::string>>* kv,
              std::string* err) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) return true;
    if (!root.IsMap()) {
      *err = path + ": config file must be a YAML mapping";
      return false;
    }
    // Iterate by value: yaml-cpp 0.7's iterator-> hands out a proxy that dies at the end of
    // the full expression, so references taken through it dangle.
    for (YAML::const_iterator it = root.begin(); it != root.end(); ++it) {
      const YAML::Node key_node = it->first;
      const YAML::Node v = it->second;
      std::string key = key_node.Scalar();
      if (key == "tiers") {
        if (!v.IsMap()) {
          *err = path + ": 'tiers' must be a mapping of reader/writer/operator";
          return false;
        }
        for (YAML::const_iterator t = v.begin(); t != v.end(); ++t) {
          const YAML::Node tier_node = t->first;
          const YAML::Node members = t->second;
          std::string tier = tier_node.Scalar();
          if (tier != "reader" && tier != "writer" && tier != "operator") {
            *err = path + ": unknown tier '" + tier + "'";
            return false;
          }
          if (!members.IsMap()) {
            *err = path + ": tiers." + tier + " must be a mapping with uids/gids";
            return false;
          }
          for (YAML::const_iterator f = members.begin(); f != members.end(); ++f) {
            const YAML::Node which_node = f->first;
            const YAML::Node list = f->second;
            std::string which = which_node.Scalar();
            if (which != "uids" && which != "gids") {
              *err = path + ": tiers." + tier + "." + which + " is not uids or gids";
              return false;
            }
            std::string val;
            if (!ScalarOrList(list, &val)) {
              *err = path + ": tiers." + tier + "." + which + " must be a list";
              return false;
            }
            kv->emplace_back(tier + "_" + which, val);
          }
        }
        continue;
      }
      std::string val;
      if (!ScalarOrList(v, &val)) {
        *err = path + ": '" + key + "' must be a scalar or a list";
        return false;
      }
      kv->emplace_back(key, val);
    }
  } catch (const YAML::Exception& e) {
    *err = path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
           ": " + e.msg;
    return false;
  } catch (const std::exception& e) {
    *err = path + ": " + e.what();
    return false;
  }
  return true;
}

bool Apply(Config* c, const std::string& name, const std::string& value, const std::string& where,
           std::string* err) {
  const Option* o = FindOption(name);
  if (!o) {
    *err = where + ": unknown setting '" + name + "'";
    return false;
  }
  std::string e;
  if (!o->set(c, value, &e)) {
    *err = where + ": " + o->name + " " + e + " (got '" + value + "')";
    return false;
  }
  return true;
}

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

bool LoadServeConfig(int argc, char** argv, Config* config, std::string* err) {
  try {
    std::vector<std::pair<std::string, std::string>> flags;
    std::string config_file;
    int i = 1;
    if (i < argc && std::string_view(argv[i]) == "serve") ++i;
    for (; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        *err = "unexpected argument '" + a + "' (see --help)";
        return false;
      }
      std::string name = a.substr(2), value;
      bool has_value = false;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      std::replace(name.begin(), name.end(), '-', '_');
      if (name == "config") {
        if (!has_value) {
          if (i + 1 >= argc) { *err = "--config needs a value"; return false; }
          value = argv[++i];
        }
        config_file = value;
        continue;
      }
      bool negated = false;
      const Option* o = FindOption(name);
      if (!o && name.rfind("no_", 0) == 0) {
        o = FindOption(name.substr(3));
        negated = o && o->arg[0] == '\0';
        if (!negated) o = nullptr;
      }
      if (!o) {
        *err = "unknown flag '--" + name + "' (see --help)";
        return false;
      }
      if (negated) {
        value = "false";
      } else if (!has_value) {
        if (o->arg[0] == '\0') {
          // A boolean flag: `--durable false` (separate value) as well as `--durable`.
          // serve takes no positional arguments, so a following boolean word is the value.
          bool ignored;
          if (i + 1 < argc && ParseBool(argv[i + 1], &ignored)) {
            value = argv[++i];
          } else {
            value = "true";
          }
        } else {
          if (i + 1 >= argc) { *err = "--" + name + " needs a value"; return false; }
          value = argv[++i];
        }
      }
      flags.emplace_back(o->name, value);
    }
    if (config_file.empty()) {
      if (const char* e = std::getenv("GATEHOUSE_CONFIG")) config_file = e;
    }
    Config c;
    if (!config_file.empty()) {
      std::vector<std::pair<std::string, std::string>> file_kv;
      if (!LoadFile(config_file, &file_kv, err)) return false;
      for (auto& [k, v] : file_kv) {
        if (!Apply(&c, k, v, config_file, err)) return false;
      }
      c.config_file = config_file;
    }
    for (const Option& o : Options()) {
      std::string env = EnvName(o.name);
      if (const char* v = std::getenv(env.c_str())) {
        if (!Apply(&c, o.name, v, env, err)) return false;
      }
    }
    for (auto& [k, v] : flags) {
      if (!Apply(&c, k, v, "--" + k, err)) return false;
    }
    if (c.policy_dir.empty()) {
      c.policy_dir = IsDir("./policy") ? "./policy" : "./policies/respondio";
    }
    if (c.max_line < 64) {
      *err = "max_line must be at least 64";
      return false;
    }
    if (c.max_output_bytes < 4096) {
      *err = "max_output_bytes must be at least 4096";
      return false;
    }
    if (c.max_connections == 0) {
      *err = "max_connections must be at least 1";
      return false;
    }
    *config = std::move(c);
    return true;
  } catch (const std::exception& e) {
    *err = std::string("config: ") + e.what();
    return false;
  }
}

const char* ServeUsage() {
  static const std::string kUsage = [] {
    std::string s =
        "usage: gatehouse serve [--config FILE] [--socket PATH] [--data DIR] [--policy DIR] "
        "[options]\n\n"
        "Runs the Gatehouse authorization daemon on a Unix socket.\n"
        "Every option may also be set as GATEHOUSE_<NAME> in the environment or as <name>: in\n"
        "the YAML config file (precedence: flag > environment > file > default).\n\n"
        "  --config FILE                YAML config file (env GATEHOUSE_CONFIG)\n";
    for (const Option& o : Options()) {
      std::string flag = std::string("--") + o.name;
      std::replace(flag.begin(), flag.end(), '_', '-');
      if (o.arg[0]) flag += std::string(" ") + o.arg;
      else flag += "[=BOOL]";
      s += "  " + flag;
      s += std::string(flag.size() < 29 ? 29 - flag.size() : 1, ' ');
      s += o.help;
      s += "\n";
    }
    s +=
        "\nSignals: SIGHUP reloads the policy; SIGTERM/SIGINT shut down gracefully.\n"
        "systemd socket activation (LISTEN_FDS) is used when present.\n";
    return s;
  }();
  return kUsage.c_str();
}

}  // namespace gatehouse::daemon
