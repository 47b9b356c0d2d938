#include "policy/internal/yaml_util.h"

namespace gatehouse::policy::internal {

std::pair<int, int> MarkPos(const YAML::Mark& m) {
  if (m.line < 0 || m.column < 0) return {1, 1};
  return {m.line + 1, m.column + 1};
}

bool ParseYaml(const SourceDoc& doc, YAML::Node* root, std::vector<Issue>* issues) {
  try {
    *root = YAML::Load(doc.text);
    return true;
  } catch (const YAML::Exception& e) {
    auto [line, col] = MarkPos(e.mark);
    issues->push_back(Issue{doc.name, line, col, "YAML syntax error: " + e.msg});
  } catch (const std::exception& e) {
    issues->push_back(Issue{doc.name, 1, 1, std::string("cannot parse YAML: ") + e.what()});
  }
  return false;
}

std::pair<int, int> ScalarPos(const SourceDoc& doc, const YAML::Mark& m, size_t offset) {
  const std::string& t = doc.text;
  if (m.pos < 0 || static_cast<size_t>(m.pos) >= t.size()) return MarkPos(m);
  size_t q = static_cast<size_t>(m.pos);
  int line = m.line + 1;
  auto line_start = [&](size_t p) {
    size_t s = t.rfind('\n', p == 0 ? 0 : p - 1);
    return (s == std::string::npos || p == 0) ? size_t{0} : s + 1;
  };
  char c = t[q];
  if (c == '"' || c == '\'') {
    ++q;
  } else if (c == '|' || c == '>') {
    size_t nl = t.find('\n', q);
    if (nl == std::string::npos) return MarkPos(m);
    q = nl + 1;
    ++line;
    // Skip blank lines before the content.
    while (true) {
      size_t s = q;
      while (q < t.size() && t[q] == ' ') ++q;
      if (q < t.size() && t[q] == '\n') {
        ++q;
        ++line;
        continue;
      }
      (void)s;
      break;
    }
  }
  size_t remaining = offset;
  while (true) {
    size_t end = t.find('\n', q);
    if (end == std::string::npos) end = t.size();
    size_t len = end - q;
    if (remaining <= len || end == t.size()) {
      return {line, static_cast<int>(q + remaining - line_start(q)) + 1};
    }
    remaining -= len + 1;
    q = end + 1;
    ++line;
    while (q < t.size() && (t[q] == ' ' || t[q] == '\t')) ++q;
  }
}

}  // namespace gatehouse::policy::internal
