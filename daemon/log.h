// Structured logs: one JSON object per line on stderr:
//   {"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"listening","socket":"./gatehouse.sock"}
//
// Not for the request path (formatting allocates); used for lifecycle events, reloads, errors.
//
// Thread-safety: Log() may be called from any thread; each line is written with one write(2).
#ifndef GATEHOUSE_DAEMON_LOG_H_
#define GATEHOUSE_DAEMON_LOG_H_

#include <string_view>

#include <nlohmann/json.hpp>

namespace gatehouse::daemon {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Lines below `level` are dropped. Default: kInfo.
void SetLogLevel(LogLevel level) noexcept;
// Parses "debug" | "info" | "warn" | "error"; unknown names give kInfo.
LogLevel ParseLogLevel(std::string_view name) noexcept;
bool LogEnabled(LogLevel level) noexcept;

// Writes one line with ts, level, msg and the members of `fields` (an object). Never throws.
void Log(LogLevel level, std::string_view msg, const nlohmann::json& fields = nullptr) noexcept;

// Redirects log lines (tests). nullptr restores stderr. The sink is called with a complete line
// including '\n'.
void SetLogSinkForTest(void (*sink)(std::string_view line)) noexcept;

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_LOG_H_
