// `gatehouse`: the daemon (`gatehouse serve`) and its command-line client.
//
// Client subcommands are table-driven (daemon/cli/commands.h): flags become one protocol request
// sent over the Unix socket; the reply is printed for humans (or raw with --json) and mapped to
// an exit code. Local subcommands (import, export, policy validate|test) work offline on a data
// directory or a policy directory. Only main catches exceptions.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/cli/commands.h"
#include "daemon/cli/import_export.h"
#include "daemon/cli/line_client.h"
#include "daemon/config.h"
#include "daemon/serve.h"
#include "policy/policy.h"
#include "policy/policy_test_runner.h"
#include "store/store.h"

namespace gatehouse::daemon::cli {
namespace {

using nlohmann::json;

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "gatehouse: %s\n", msg.c_str());
  return code;
}

std::string ReqString(const json& req, const char* key) {
  return req.contains(key) && req[key].is_string() ? req[key].get<std::string>() : std::string();
}

// Sends one request and reads one reply. Returns false (after printing why) on failure.
bool RoundTrip(const Invocation& inv, LineClient* client, const json& req, json* reply) {
  std::string err, line;
  if (!client->Send(req.dump(), &err) || !client->ReadLine(&line, inv.timeout_ms, &err)) {
    Fail(kExitError, err);
    return false;
  }
  *reply = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (reply->is_discarded() || !reply->is_object()) {
    Fail(kExitError, "the daemon sent a reply that is not a JSON object: " + line.substr(0, 200));
    return false;
  }
  return true;
}

std::unique_ptr<LineClient> Dial(const Invocation& inv) {
  std::string err;
  auto c = LineClient::Connect(inv.socket, &err);
  if (!c) Fail(kExitError, err);
  return c;
}

int RunRequest(const Invocation& inv) {
  auto client = Dial(inv);
  if (!client) return kExitError;
  json reply;
  if (!RoundTrip(inv, client.get(), inv.request, &reply)) return kExitError;
  PrintReply(*inv.cmd, reply, inv.json, stdout, stderr);
  return ExitCodeForReply(*inv.cmd, reply);
}

int RunBatch(const Invocation& inv) {
  const std::string file = ReqString(inv.request, "file");
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) return Fail(kExitUsage, "batch: cannot open " + file + ": " + std::strerror(errno));
    in = &f;
  }
  std::vector<json> checks;
  std::vector<size_t> linenos;
  std::string line;
  size_t lineno = 0;
  while (std::getline(*in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json c = json::parse(line, nullptr, false);
    if (c.is_discarded() || !c.is_object()) {
      return Fail(kExitUsage, file + ":" + std::to_string(lineno) + ": not a JSON object");
    }
    c.erase("op");
    c.erase("id");
    checks.push_back(std::move(c));
    linenos.push_back(lineno);
  }
  if (checks.empty()) return Fail(kExitUsage, "batch: " + file + " has no checks");
  auto client = Dial(inv);
  if (!client) return kExitError;
  constexpr size_t kMaxBatch = 1000;
  bool any_deny = false;
  for (size_t start = 0; start < checks.size(); start += kMaxBatch) {
    size_t end = std::min(checks.size(), start + kMaxBatch);
    json req{{"op", "check_batch"},
             {"checks", json(std::vector<json>(checks.begin() + start, checks.begin() + end))}};
    json reply;
    if (!RoundTrip(inv, client.get(), req, &reply)) return kExitError;
    if (!reply.value("ok", false) || !reply.contains("results") || !reply["results"].is_array() ||
        reply["results"].size() != end - start) {
      PrintReply(*inv.cmd, reply, inv.json, stdout, stderr);
      if (reply.value("ok", false)) Fail(kExitError, "batch: reply has no matching results");
      return kExitError;
    }
    const json& results = reply["results"];
    for (size_t i = 0; i < results.size(); ++i) {
      const json& r = results[i];
      bool allow = r.value("allow", false);
      any_deny = any_deny || !allow;
      if (inv.json) {
        std::printf("%s\n", r.dump().c_str());
      } else {
        std::string reason = r.contains("reason") && r["reason"].is_string()
                                 ? r["reason"].get<std::string>() : "";
        std::string rule = r.contains("rule") && r["rule"].is_string()
                               ? r["rule"].get<std::string>() : "";
        std::printf("%zu\t%s\t%s%s%s\n", linenos[start + i], allow ? "ALLOW" : "DENY",
                    reason.c_str(), rule.empty() ? "" : "\t", rule.c_str());
      }
    }
  }
  return any_deny ? kExitNo : kExitOk;
}

int RunWatch(const Invocation& inv) {
  auto client = Dial(inv);
  if (!client) return kExitError;
  json ack;
  if (!RoundTrip(inv, client.get(), inv.request, &ack)) return kExitError;
  if (!ack.value("ok", false)) {
    PrintReply(*inv.cmd, ack, inv.json, stdout, stderr);
    return ExitCodeForReply(*inv.cmd, ack);
  }
  if (inv.json) {
    std::printf("%s\n", ack.dump().c_str());
  } else {
    std::fprintf(stderr, "watching changes after rev %s (Ctrl-C stops)\n",
                 ack.contains("rev") ? ack["rev"].dump().c_str() : "?");
  }
  std::fflush(stdout);
  std::string line, err;
  while (client->ReadLine(&line, -1, &err)) {
    if (inv.json) {
      std::printf("%s\n", line.c_str());
    } else {
      json ev = json::parse(line, nullptr, false);
      std::printf("%s\n", ev.is_object() ? FormatChange(ev).c_str() : line.c_str());
    }
    std::fflush(stdout);
  }
  return Fail(kExitError, err);
}

int RunImport(const Invocation& inv) {
  const std::string file = ReqString(inv.request, "file");
  const std::string data = ReqString(inv.request, "data");
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) return Fail(kExitUsage, "import: cannot open " + file + ": " + std::strerror(errno));
    in = &f;
  }
  std::vector<ImportLine> lines;
  std::vector<std::string> errors;
  if (!ParseImportStream(*in, &lines, &errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s:%s\n", file.c_str(), e.c_str());
    return Fail(kExitNo, "import: " + file + " has invalid lines; nothing imported");
  }
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) return Fail(kExitError, "import: cannot create " + data + ": " + ec.message());
  store::Options opt;
  opt.path = data;
  std::unique_ptr<store::Store> st;
  store::Status s = store::Store::Open(opt, &st);
  if (!s.ok()) return Fail(kExitError, "import: opening the store at " + data + ": " + s.ToString());
  store::ImportStats stats;
  size_t suspended = 0;
  s = ImportInto(st.get(), lines, &stats, &suspended);
  uint64_t rev = st->Revision();
  st->Close();
  if (!s.ok()) {
    return Fail(s.code() == store::Code::kInternal ? kExitError : kExitNo,
                "import refused, nothing of this batch was applied: " + s.ToString());
  }
  std::printf("imported %zu records (%llu memberships, %zu orgs suspended) into %s in %.2f s; rev %llu\n",
              lines.size(), static_cast<unsigned long long>(stats.memberships), suspended,
              data.c_str(), stats.seconds, static_cast<unsigned long long>(rev));
  return kExitOk;
}

int RunExport(const Invocation& inv) {
  const std::string data = ReqString(inv.request, "data");
  const std::string out_path = ReqString(inv.request, "out");
  struct stat sb;
  if (::stat((data + "/data.mdb").c_str(), &sb) != 0) {
    return Fail(kExitError, "export: no store at " + data + " (no data.mdb)");
  }
  store::Options opt;
  opt.path = data;
  std::unique_ptr<store::Store> st;
  store::Status s = store::Store::Open(opt, &st);
  if (!s.ok()) return Fail(kExitError, "export: opening the store at " + data + ": " + s.ToString());
  std::FILE* out = stdout;
  if (!out_path.empty() && out_path != "-") {
    out = std::fopen(out_path.c_str(), "w");
    if (!out) return Fail(kExitError, "export: cannot write " + out_path + ": " + std::strerror(errno));
  }
  auto txn = st->NewReadTxn();
  if (!txn->Renew()) return Fail(kExitError, "export: cannot open a read transaction");
  size_t lines = 0;
  s = ExportFrom(txn.get(), out, &lines);
  uint64_t rev = txn->Revision();
  txn->Reset();
  if (out != stdout && std::fclose(out) != 0) s = store::Status(store::Code::kInternal, "export: write error");
  if (out == stdout) std::fflush(stdout);
  st->Close();
  if (!s.ok()) return Fail(kExitError, s.ToString());
  std::fprintf(stderr, "exported %zu lines at rev %llu\n", lines, static_cast<unsigned long long>(rev));
  return kExitOk;
}

int RunPolicyValidate(const Invocation& inv) {
  const std::string dir = ReqString(inv.request, "dir");
  std::vector<policy::Issue> issues;
  auto compiled = policy::LoadPolicyDir(dir, &issues);
  for (const auto& i : issues) std::printf("%s\n", i.ToString().c_str());
  if (!compiled || !issues.empty()) {
    std::fprintf(stderr, "gatehouse: %s: %zu problem%s\n", dir.c_str(), issues.size(),
                 issues.size() == 1 ? "" : "s");
    return kExitNo;
  }
  policy::PolicyInfo info = policy::Info(*compiled);
  if (inv.json) {
    std::printf("%s\n", json{{"ok", true}, {"files", info.files}, {"rules", info.rules},
                             {"roles", info.roles}, {"actions", info.actions},
                             {"program_actions", info.program_actions},
                             {"program_steps", info.program_steps},
                             {"digest", info.digest}, {"name", info.name}}.dump().c_str());
  } else {
    std::printf("ok: %s: %zu files, %zu rules, %zu roles, %zu actions (digest %s); "
                "decision programs: %zu actions, %zu steps\n",
                dir.c_str(), info.files, info.rules, info.roles, info.actions,
                info.digest.c_str(), info.program_actions, info.program_steps);
  }
  return kExitOk;
}

int RunPolicyTest(const Invocation& inv) {
  const std::string dir = ReqString(inv.request, "dir");
  policy::PolicyTestReport report = policy::RunPolicyTests(dir);
  for (const auto& i : report.load_issues) std::printf("%s\n", i.ToString().c_str());
  size_t failed = 0;
  for (const auto& r : report.results) {
    if (r.passed) continue;
    ++failed;
    std::printf("FAIL %s\n", r.ToString().c_str());
  }
  std::printf("%s: %zu suites, %zu tests, %zu failed%s\n", dir.c_str(), report.suites,
              report.results.size(), failed,
              report.load_issues.empty() ? "" : ", load problems (see above)");
  if (report.suites == 0) std::fprintf(stderr, "gatehouse: warning: no policy test suites in %s\n", dir.c_str());
  return report.ok() ? kExitOk : kExitNo;
}

int RunServeCommand(const Invocation& inv) {
  for (const auto& a : inv.passthrough) {
    if (a == "--help" || a == "-h") {
      std::printf("%s", ServeUsage());
      return kExitOk;
    }
  }
  std::vector<std::string> args = {"gatehouse", "serve"};
  args.insert(args.end(), inv.passthrough.begin(), inv.passthrough.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Config config;
  std::string err;
  if (!LoadServeConfig(static_cast<int>(args.size()), argv.data(), &config, &err)) {
    return Fail(kExitUsage, "serve: " + err + " (try gatehouse serve --help)");
  }
  return RunServe(config);
}

int Main(int argc, char** argv) {
  Invocation inv;
  std::string err;
  if (!ParseInvocation(argc, argv, std::getenv("GATEHOUSE_SOCKET"), &inv, &err)) {
    return Fail(kExitUsage, err);
  }
  if (inv.help) {
    std::printf("%s", inv.cmd ? (inv.cmd->kind == Kind::kServe ? std::string(ServeUsage())
                                                              : CommandHelp(*inv.cmd)).c_str()
                              : TopLevelHelp().c_str());
    return kExitOk;
  }
  switch (inv.cmd->kind) {
    case Kind::kCheck:
    case Kind::kRequest:
    case Kind::kRaw: return RunRequest(inv);
    case Kind::kBatch: return RunBatch(inv);
    case Kind::kWatch: return RunWatch(inv);
    case Kind::kServe: return RunServeCommand(inv);
    case Kind::kImport: return RunImport(inv);
    case Kind::kExport: return RunExport(inv);
    case Kind::kPolicyValidate: return RunPolicyValidate(inv);
    case Kind::kPolicyTest: return RunPolicyTest(inv);
  }
  return Fail(kExitError, "internal: unhandled command");
}

}  // namespace
}  // namespace gatehouse::daemon::cli

int main(int argc, char** argv) {
  try {
    return gatehouse::daemon::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gatehouse: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "gatehouse: internal error\n");
  }
  return gatehouse::daemon::cli::kExitError;
}
