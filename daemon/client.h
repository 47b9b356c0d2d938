// A small blocking client for the Gatehouse socket: connect, send a line, read a line, with
// timeouts. Used by the CLI and the integration tests; not used by the daemon itself.
//
// Thread-safety: a Client is used by one thread at a time.
#ifndef GATEHOUSE_DAEMON_CLIENT_H_
#define GATEHOUSE_DAEMON_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>

namespace gatehouse::daemon {

class Client {
 public:
  // Connects to the Unix socket at `path`. Returns nullptr and sets *err on failure.
  static std::unique_ptr<Client> Connect(const std::string& path, std::string* err);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `line`, adding '\n' if it does not end with one. Waits up to timeout_ms for the
  // socket to accept it. Returns false and sets *err on error or timeout.
  bool Send(std::string_view line, std::string* err, int timeout_ms = 5000);
  // Reads one line (without its '\n') into *line. Returns false and sets *err on timeout
  // ("timeout"), end of stream ("eof") or error.
  bool ReadLine(std::string* line, std::string* err, int timeout_ms = 5000);
  // Send + ReadLine.
  bool Call(std::string_view request, std::string* reply, std::string* err,
            int timeout_ms = 5000);

  // Half-closes the sending side (the server sees EOF after the lines already sent).
  void ShutdownWrite();
  void Close();
  int fd() const { return fd_; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_;
  std::string buf_;  // bytes received but not yet returned
};

}  // namespace gatehouse::daemon

#endif  // GATEHOUSE_DAEMON_CLIENT_H_
