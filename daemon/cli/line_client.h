// A minimal blocking client for the newline-delimited JSON protocol over a Unix socket, for the
// `gatehouse` CLI: connect, send a line, read lines (with a timeout).
//
// Thread-safety: a LineClient is used by one thread at a time.
#ifndef GATEHOUSE_DAEMON_CLI_LINE_CLIENT_H_
#define GATEHOUSE_DAEMON_CLI_LINE_CLIENT_H_

#include <memory>
#include <string>

namespace gatehouse::daemon::cli {

class LineClient {
 public:
  // Connects to the Unix stream socket at `path`. Returns nullptr with *err set ("cannot
  // connect to PATH: reason") on failure.
  static std::unique_ptr<LineClient> Connect(const std::string& path, std::string* err);
  ~LineClient();
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  // Writes `line` followed by '\n'. REQUIRES: line contains no '\n'.
  bool Send(const std::string& line, std::string* err);
  // Reads the next line (without its '\n') into *line. timeout_ms < 0 waits forever.
  // Returns false with *err set on timeout, error, or EOF before a full line ("connection
  // closed by the daemon").
  bool ReadLine(std::string* line, int timeout_ms, std::string* err);

 private:
  explicit LineClient(int fd) : fd_(fd) {}
  int fd_;
  std::string buf_;  // bytes read but not yet returned
};

}  // namespace gatehouse::daemon::cli

#endif  // GATEHOUSE_DAEMON_CLI_LINE_CLIENT_H_
