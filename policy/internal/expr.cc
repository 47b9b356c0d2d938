#include "policy/internal/expr.h"

#include "policy/internal/expr_run.h"
#include "policy/internal/frame.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace gatehouse::policy::internal {

const char* TypeName(Type t) noexcept {
  switch (t) {
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kDouble: return "double";
    case Type::kString: return "string";
    case Type::kList: return "list";
    case Type::kDyn: return "dyn";
    case Type::kNull: return "null";
  }
  return "?";
}

std::string_view ProgramPool::Intern(std::string_view s) {
  strings.emplace_back(s);
  return strings.back();
}

namespace {

// ------------------------------------------------------------------------------------------
// Variables
// ------------------------------------------------------------------------------------------

struct VarDef {
  const char* path;
  Var var;
  Type type;
};

constexpr VarDef kVars[] = {
    {"user.id", Var::kUserId, Type::kString},
    {"user.email", Var::kUserEmail, Type::kString},
    {"user.email_verified", Var::kUserEmailVerified, Type::kBool},
    {"org.id", Var::kOrgId, Type::kString},
    {"org.plan", Var::kOrgPlan, Type::kString},
    {"org.status", Var::kOrgStatus, Type::kString},
    {"org.suspended", Var::kOrgSuspended, Type::kBool},
    {"org.features", Var::kOrgFeatures, Type::kList},
    {"org.seats", Var::kOrgSeats, Type::kInt},
    {"org.members", Var::kOrgMembers, Type::kInt},
    {"org.pending_invitations", Var::kOrgPendingInvitations, Type::kInt},
    {"org.members_and_pending", Var::kOrgMembersAndPending, Type::kInt},
    {"org.workspaces", Var::kOrgWorkspaces, Type::kInt},
    {"org.workspace_limit", Var::kOrgWorkspaceLimit, Type::kInt},
    {"org.sso.enabled", Var::kOrgSsoEnabled, Type::kBool},
    {"org.sso.enforced", Var::kOrgSsoEnforced, Type::kBool},
    {"org.sso.idp", Var::kOrgSsoIdp, Type::kString},
    {"org.sso.exempt_roles", Var::kOrgSsoExemptRoles, Type::kList},
    {"workspace.id", Var::kWorkspaceId, Type::kString},
    {"membership.org_role", Var::kMemberOrgRole, Type::kString},
    {"membership.workspace_role", Var::kMemberWorkspaceRole, Type::kString},
    {"membership.effective_role", Var::kMemberEffectiveRole, Type::kString},
    {"membership.implied", Var::kMemberImplied, Type::kBool},
    {"membership.flags", Var::kMemberFlags, Type::kList},
    {"membership.team", Var::kMemberTeam, Type::kString},
    {"membership.contact_visibility", Var::kMemberContactVisibility, Type::kString},
    {"resource.type", Var::kResourceType, Type::kString},
    {"resource.id", Var::kResourceId, Type::kString},
    {"action.name", Var::kActionName, Type::kString},
    {"action.scope", Var::kActionScope, Type::kString},
    {"context.auth.method", Var::kCtxAuthMethod, Type::kString},
    {"context.auth.idp", Var::kCtxAuthIdp, Type::kString},
    {"context.auth.age_s", Var::kCtxAuthAgeS, Type::kInt},
    {"context.client", Var::kCtxClient, Type::kString},
};

struct AttrPrefix {
  const char* prefix;
  Var var;
};
constexpr AttrPrefix kAttrPrefixes[] = {
    {"user.attrs.", Var::kUserAttr},         {"org.attrs.", Var::kOrgAttr},
    {"workspace.attrs.", Var::kWorkspaceAttr}, {"resource.attrs.", Var::kResourceAttr},
    {"context.", Var::kCtxAttr},
};

// ------------------------------------------------------------------------------------------
// Lexer
// ------------------------------------------------------------------------------------------

enum class Tok : uint8_t {
  kEnd, kIdent, kString, kInt, kDouble, kLParen, kRParen, kLBracket, kRBracket, kComma,
  kEq, kNe, kLt, kLe, kGt, kGe, kAnd, kOr, kNot, kError,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;
  std::string text;  // identifier path / decoded string / number text / error message
};

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Token Next() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    Token t;
    t.offset = pos_;
    if (pos_ >= src_.size()) return t;
    char c = src_[pos_];
    auto two = [&](char next) { return pos_ + 1 < src_.size() && src_[pos_ + 1] == next; };
    switch (c) {
      case '(': ++pos_; t.kind = Tok::kLParen; return t;
      case ')': ++pos_; t.kind = Tok::kRParen; return t;
      case '[': ++pos_; t.kind = Tok::kLBracket; return t;
      case ']': ++pos_; t.kind = Tok::kRBracket; return t;
      case ',': ++pos_; t.kind = Tok::kComma; return t;
      case '=':
        if (two('=')) { pos_ += 2; t.kind = Tok::kEq; return t; }
        return Error(t, "unexpected '=' (did you mean '=='?)");
      case '!':
        if (two('=')) { pos_ += 2; t.kind = Tok::kNe; return t; }
        ++pos_; t.kind = Tok::kNot; return t;
      case '<':
        if (two('=')) { pos_ += 2; t.kind = Tok::kLe; return t; }
        ++pos_; t.kind = Tok::kLt; return t;
      case '>':
        if (two('=')) { pos_ += 2; t.kind = Tok::kGe; return t; }
        ++pos_; t.kind = Tok::kGt; return t;
      case '&':
        if (two('&')) { pos_ += 2; t.kind = Tok::kAnd; return t; }
        return Error(t, "unexpected '&' (did you mean '&&'?)");
      case '|':
        if (two('|')) { pos_ += 2; t.kind = Tok::kOr; return t; }
        return Error(t, "unexpected '|' (did you mean '||'?)");
      case '"':
      case '\'':
        return String(t, c);
      default:
        break;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && pos_ + 1 < src_.size() &&
         std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))) {
      size_t start = pos_++;
      bool is_double = false;
      while (pos_ < src_.size()) {
        char d = src_[pos_];
        if (std::isdigit(static_cast<unsigned char>(d))) {
          ++pos_;
        } else if (d == '.' && !is_double) {
          is_double = true;
          ++pos_;
        } else {
          break;
        }
      }
      t.kind = is_double ? Tok::kDouble : Tok::kInt;
      t.text = std::string(src_.substr(start, pos_ - start));
      return t;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < src_.size()) {
        char d = src_[pos_];
        if (std::isalnum(static_cast<unsigned char>(d)) || d == '_' || d == '-') {
          ++pos_;
        } else if (d == '.' && pos_ + 1 < src_.size() &&
                   (std::isalnum(static_cast<unsigned char>(src_[pos_ + 1])) ||
                    src_[pos_ + 1] == '_')) {
          ++pos_;
        } else {
          break;
        }
      }
      t.kind = Tok::kIdent;
      t.text = std::string(src_.substr(start, pos_ - start));
      return t;
    }
    return Error(t, std::string("unexpected character '") + c + "'");
  }

 private:
  Token Error(Token t, std::string msg) {
    t.kind = Tok::kError;
    t.text = std::move(msg);
    pos_ = src_.size();
    return t;
  }

  Token String(Token t, char quote) {
    ++pos_;
    std::string out;
    while (pos_ < src_.size()) {
      char c = src_[pos_++];
      if (c == quote) {
        t.kind = Tok::kString;
        t.text = std::move(out);
        return t;
      }
      if (c == '\\') {
        if (pos_ >= src_.size()) break;
        char e = src_[pos_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case '\\': out += '\\'; break;
          case '"': out += '"'; break;
          case '\'': out += '\''; break;
          default: return Error(t, std::string("unknown escape '\\") + e + "' in string");
        }
        continue;
      }
      out += c;
    }
    return Error(t, "unterminated string literal");
  }

  std::string_view src_;
  size_t pos_ = 0;
};

// ------------------------------------------------------------------------------------------
// AST
// ------------------------------------------------------------------------------------------

enum class AstOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn };

enum class NodeKind : uint8_t { kConst, kList, kVar, kHas, kNot, kAnd, kOr, kCmp };

struct AstNode {
  NodeKind kind;
  Type type = Type::kBool;
  Type elem = Type::kString;  // for lists
  size_t offset = 0;
  AstOp cmp = AstOp::kEq;
  Var var = Var::kUserId;
  uint32_t arg = 0;  // const index / list index / name index
  int lhs = -1;
  int rhs = -1;
};

class Parser {
 public:
  Parser(std::string_view src, size_t max_depth, ProgramPool* pool,
         std::vector<ExprError>* errors)
      : lex_(src), max_depth_(max_depth), pool_(pool), errors_(errors) {
    Advance();
  }

  int ParseAll() {
    int root = ParseOr(0);
    if (root < 0) return -1;
    if (cur_.kind != Tok::kEnd) {
      Fail(cur_.offset, cur_.kind == Tok::kError ? cur_.text : "unexpected token after expression");
      return -1;
    }
    return root;
  }

  const std::vector<AstNode>& nodes() const { return nodes_; }

 private:
  void Advance() { cur_ = lex_.Next(); }

  void Fail(size_t offset, std::string msg) {
    if (!failed_) errors_->push_back({offset, std::move(msg)});
    failed_ = true;
  }

  int Add(AstNode n) {
    nodes_.push_back(n);
    return static_cast<int>(nodes_.size() - 1);
  }

  bool CheckDepth(size_t depth, size_t offset) {
    if (depth > max_depth_) {
      Fail(offset, "expression nested too deeply (limit " + std::to_string(max_depth_) + ")");
      return false;
    }
    return true;
  }

  static bool IsBoolish(Type t) { return t == Type::kBool || t == Type::kDyn; }

  int ParseOr(size_t depth) {
    if (!CheckDepth(depth, cur_.offset)) return -1;
    int lhs = ParseAnd(depth + 1);
    while (lhs >= 0 && cur_.kind == Tok::kOr) {
      size_t off = cur_.offset;
      Advance();
      int rhs = ParseAnd(depth + 1);
      if (rhs < 0) return -1;
      lhs = Logical(NodeKind::kOr, "||", off, lhs, rhs);
    }
    return lhs;
  }

  int ParseAnd(size_t depth) {
    if (!CheckDepth(depth, cur_.offset)) return -1;
    int lhs = ParseUnary(depth + 1);
    while (lhs >= 0 && cur_.kind == Tok::kAnd) {
      size_t off = cur_.offset;
      Advance();
      int rhs = ParseUnary(depth + 1);
      if (rhs < 0) return -1;
      lhs = Logical(NodeKind::kAnd, "&&", off, lhs, rhs);
    }
    return lhs;
  }

  int Logical(NodeKind kind, const char* op, size_t off, int lhs, int rhs) {
    for (int side : {lhs, rhs}) {
      if (!IsBoolish(nodes_[side].type)) {
        Fail(off, std::string("type error: '") + op + "' needs bool operands, got " +
                      TypeName(nodes_[side].type));
        return -1;
      }
    }
    AstNode n{kind};
    n.offset = off;
    n.type = Type::kBool;
    n.lhs = lhs;
    n.rhs = rhs;
    return Add(n);
  }

  int ParseUnary(size_t depth) {
    if (!CheckDepth(depth, cur_.offset)) return -1;
    if (cur_.kind == Tok::kNot) {
      size_t off = cur_.offset;
      Advance();
      int operand = ParseUnary(depth + 1);
      if (operand < 0) return -1;
      if (!IsBoolish(nodes_[operand].type)) {
        Fail(off, std::string("type error: '!' needs a bool operand, got ") +
                      TypeName(nodes_[operand].type));
        return -1;
      }
      AstNode n{NodeKind::kNot};
      n.offset = off;
      n.lhs = operand;
      return Add(n);
    }
    return ParseCmp(depth + 1);
  }

  static bool IsCmp(Tok t) {
    return t == Tok::kEq || t == Tok::kNe || t == Tok::kLt || t == Tok::kLe || t == Tok::kGt ||
           t == Tok::kGe || (t == Tok::kIdent);
  }

  int ParseCmp(size_t depth) {
    int lhs = ParsePrimary(depth + 1);
    if (lhs < 0) return -1;
    AstOp op;
    const char* name;
    switch (cur_.kind) {
      case Tok::kEq: op = AstOp::kEq; name = "=="; break;
      case Tok::kNe: op = AstOp::kNe; name = "!="; break;
      case Tok::kLt: op = AstOp::kLt; name = "<"; break;
      case Tok::kLe: op = AstOp::kLe; name = "<="; break;
      case Tok::kGt: op = AstOp::kGt; name = ">"; break;
      case Tok::kGe: op = AstOp::kGe; name = ">="; break;
      case Tok::kIdent:
        if (cur_.text == "in") {
          op = AstOp::kIn;
          name = "in";
          break;
        }
        Fail(cur_.offset, "unexpected '" + cur_.text + "' (expected an operator)");
        return -1;
      default:
        return lhs;
    }
    size_t off = cur_.offset;
    Advance();
    int rhs = ParsePrimary(depth + 1);
    if (rhs < 0) return -1;
    if (IsCmp(cur_.kind) && (cur_.kind != Tok::kIdent || cur_.text == "in")) {
      Fail(cur_.offset, "comparisons do not chain; use && and parentheses");
      return -1;
    }
    Type lt = nodes_[lhs].type, rt = nodes_[rhs].type;
    auto numeric = [](Type t) { return t == Type::kInt || t == Type::kDouble; };
    auto mismatch = [&]() {
      Fail(off, std::string("type error: '") + name + "' between " + TypeName(lt) + " and " +
                    TypeName(rt));
      return -1;
    };
    if (op == AstOp::kIn) {
      if (rt != Type::kList) {
        Fail(off, std::string("type error: right side of 'in' must be a list, got ") +
                      TypeName(rt));
        return -1;
      }
      if (lt == Type::kList || lt == Type::kNull || lt == Type::kBool) return mismatch();
      Type elem = nodes_[rhs].elem;
      if (lt != Type::kDyn && elem != Type::kDyn && lt != elem &&
          !(numeric(lt) && numeric(elem))) {
        Fail(off, std::string("type error: 'in' of ") + TypeName(lt) + " in a list of " +
                      TypeName(elem));
        return -1;
      }
    } else if (op == AstOp::kEq || op == AstOp::kNe) {
      if (lt == Type::kList || rt == Type::kList) {
        if (lt != Type::kDyn && rt != Type::kDyn) return mismatch();
      } else if (!(lt == rt || (numeric(lt) && numeric(rt)) || lt == Type::kDyn ||
                   rt == Type::kDyn || lt == Type::kNull || rt == Type::kNull)) {
        return mismatch();
      }
    } else {
      bool ok = (numeric(lt) && numeric(rt)) || (lt == Type::kString && rt == Type::kString) ||
                (lt == Type::kDyn && (numeric(rt) || rt == Type::kString || rt == Type::kDyn)) ||
                (rt == Type::kDyn && (numeric(lt) || lt == Type::kString));
      if (!ok) return mismatch();
    }
    AstNode n{NodeKind::kCmp};
    n.offset = off;
    n.cmp = op;
    n.lhs = lhs;
    n.rhs = rhs;
    return Add(n);
  }

  bool ParseLiteral(Value* v, Type* t) {
    switch (cur_.kind) {
      case Tok::kString:
        *v = Value::String(pool_->Intern(cur_.text));
        *t = Type::kString;
        break;
      case Tok::kInt: {
        int64_t x = 0;
        auto [p, ec] = std::from_chars(cur_.text.data(), cur_.text.data() + cur_.text.size(), x);
        if (ec != std::errc()) {
          Fail(cur_.offset, "integer literal out of range");
          return false;
        }
        *v = Value::Int(x);
        *t = Type::kInt;
        break;
      }
      case Tok::kDouble:
        *v = Value::Double(std::strtod(cur_.text.c_str(), nullptr));
        *t = Type::kDouble;
        break;
      case Tok::kIdent:
        if (cur_.text == "true" || cur_.text == "false") {
          *v = Value::Bool(cur_.text == "true");
          *t = Type::kBool;
          break;
        }
        if (cur_.text == "null") {
          *v = Value::Null();
          *t = Type::kNull;
          break;
        }
        return false;
      default:
        return false;
    }
    Advance();
    return true;
  }

  int ParsePrimary(size_t depth) {
    if (!CheckDepth(depth, cur_.offset)) return -1;
    size_t off = cur_.offset;
    Value v;
    Type t;
    if (ParseLiteral(&v, &t)) {
      AstNode n{NodeKind::kConst};
      n.offset = off;
      n.type = t;
      n.arg = static_cast<uint32_t>(pool_->consts.size());
      pool_->consts.push_back(RtValue::From(v));
      return Add(n);
    }
    if (failed_) return -1;
    switch (cur_.kind) {
      case Tok::kError:
        Fail(cur_.offset, cur_.text);
        return -1;
      case Tok::kLParen: {
        Advance();
        int inner = ParseOr(depth + 1);
        if (inner < 0) return -1;
        if (cur_.kind != Tok::kRParen) {
          Fail(cur_.offset, "expected ')'");
          return -1;
        }
        Advance();
        return inner;
      }
      case Tok::kLBracket:
        return ParseList(off);
      case Tok::kIdent:
        break;
      case Tok::kEnd:
        Fail(off, "unexpected end of expression");
        return -1;
      default:
        Fail(off, "expected a value, variable, '(' or '['");
        return -1;
    }
    std::string ident = cur_.text;
    Advance();
    if (ident == "has") {
      if (cur_.kind != Tok::kLParen) {
        Fail(cur_.offset, "expected '(' after has");
        return -1;
      }
      Advance();
      if (cur_.kind != Tok::kIdent) {
        Fail(cur_.offset, "has() takes a variable path");
        return -1;
      }
      size_t voff = cur_.offset;
      std::string path = cur_.text;
      Advance();
      int var = VarNode(path, voff);
      if (var < 0) return -1;
      if (cur_.kind != Tok::kRParen) {
        Fail(cur_.offset, "expected ')'");
        return -1;
      }
      Advance();
      nodes_[var].kind = NodeKind::kHas;
      nodes_[var].type = Type::kBool;
      return var;
    }
    return VarNode(ident, off);
  }

  int VarNode(const std::string& path, size_t off) {
    for (const VarDef& d : kVars) {
      if (path == d.path) {
        AstNode n{NodeKind::kVar};
        n.offset = off;
        n.type = d.type;
        n.elem = Type::kString;
        n.var = d.var;
        n.arg = kNoKey;
        return Add(n);
      }
    }
    for (const AttrPrefix& p : kAttrPrefixes) {
      size_t len = std::strlen(p.prefix);
      if (path.size() > len && path.compare(0, len, p.prefix) == 0) {
        AstNode n{NodeKind::kVar};
        n.offset = off;
        n.type = Type::kDyn;
        n.var = p.var;
        std::string_view key = std::string_view(path).substr(len);
        auto it = pool_->name_ids.find(key);
        if (it == pool_->name_ids.end()) {
          key = pool_->Intern(key);
          it = pool_->name_ids.emplace(key, static_cast<uint32_t>(pool_->names.size())).first;
          pool_->names.push_back(key);
          pool_->name_heads.push_back(HeadWord(key));
        }
        n.arg = it->second;
        return Add(n);
      }
    }
    Fail(off, "unknown variable '" + path + "'");
    return -1;
  }

  int ParseList(size_t off) {
    Advance();  // '['
    ListConst lc{static_cast<uint32_t>(pool_->list_items.size()), 0};
    std::vector<Value> items;
    Type elem = Type::kDyn;
    bool first = true;
    while (cur_.kind != Tok::kRBracket) {
      if (!first) {
        if (cur_.kind != Tok::kComma) {
          Fail(cur_.offset, "expected ',' or ']' in list");
          return -1;
        }
        Advance();
      }
      size_t item_off = cur_.offset;
      Value v;
      Type t;
      if (!ParseLiteral(&v, &t)) {
        if (!failed_) Fail(item_off, "list elements must be literals");
        return -1;
      }
      if (t == Type::kNull || t == Type::kBool) {
        Fail(item_off, std::string("list elements must be strings or numbers, got ") +
                           TypeName(t));
        return -1;
      }
      if (first) {
        elem = t;
      } else if (t != elem && !((t == Type::kInt || t == Type::kDouble) &&
                                (elem == Type::kInt || elem == Type::kDouble))) {
        Fail(item_off, std::string("list elements must all have one type (") + TypeName(elem) +
                           " and " + TypeName(t) + ")");
        return -1;
      }
      if (items.size() >= kMaxListItems) {
        Fail(item_off, "list literal too long (limit " + std::to_string(kMaxListItems) + ")");
        return -1;
      }
      items.push_back(v);
      first = false;
    }
    Advance();  // ']'
    for (const Value& v : items) pool_->list_items.push_back(RtValue::From(v));
    lc.count = static_cast<uint32_t>(items.size());
    AstNode n{NodeKind::kList};
    n.offset = off;
    n.type = Type::kList;
    n.elem = elem;
    n.arg = static_cast<uint32_t>(pool_->lists.size());
    pool_->lists.push_back(lc);
    return Add(n);
  }

  Lexer lex_;
  Token cur_;
  size_t max_depth_;
  ProgramPool* pool_;
  std::vector<ExprError>* errors_;
  std::vector<AstNode> nodes_;
  bool failed_ = false;
};

// Lowers the AST to matcher nodes (ProgramPool::nodes). Returns the node index.
class Lowerer {
 public:
  Lowerer(const std::vector<AstNode>& ast, ProgramPool* pool) : ast_(ast), pool_(pool) {}

  uint32_t Lower(int i) {
    const AstNode& n = ast_[i];
    Node out;
    switch (n.kind) {
      case NodeKind::kConst:
      case NodeKind::kList:
      case NodeKind::kVar:
        out.kind = Node::Kind::kTruth;
        out.a = Leaf(i);
        return Add(Specialise(out));
      case NodeKind::kHas:
        out.kind = Node::Kind::kHas;
        out.a = Operand{Operand::Kind::kVar, n.var, n.arg};
        return Add(out);
      case NodeKind::kNot:
        out.kind = Node::Kind::kNot;
        out.a = Operand{Operand::Kind::kNode, Var::kUserId, Lower(n.lhs)};
        return Add(out);
      case NodeKind::kAnd:
      case NodeKind::kOr: {
        std::vector<uint32_t> kids;
        Flatten(i, n.kind, &kids);
        out.kind = n.kind == NodeKind::kAnd ? Node::Kind::kAnd : Node::Kind::kOr;
        out.first = static_cast<uint32_t>(pool_->children.size());
        out.count = static_cast<uint32_t>(kids.size());
        for (uint32_t k : kids) pool_->children.push_back(k);
        return Add(out);
      }
      case NodeKind::kCmp:
        out.kind = n.cmp == AstOp::kIn ? Node::Kind::kIn : Node::Kind::kCmp;
        if (n.cmp != AstOp::kIn) out.cmp = static_cast<Op>(n.cmp);
        out.a = Leaf(n.lhs);
        out.b = Leaf(n.rhs);
        return Add(Specialise(out));
    }
    return Add(out);
  }

 private:
  bool IsVar(const Operand& o) const { return o.kind == Operand::Kind::kVar; }
  bool IsStrConst(const Operand& o) const {
    return o.kind == Operand::Kind::kConst && pool_->consts[o.idx].kind == RtValue::Kind::kString;
  }
  bool IsStrList(const Operand& o) const {
    if (o.kind != Operand::Kind::kList) return false;
    const ListConst& lc = pool_->lists[o.idx];
    for (uint32_t k = 0; k < lc.count; ++k) {
      if (pool_->list_items[lc.begin + k].kind != RtValue::Kind::kString) return false;
    }
    return true;
  }

  // Picks a specialised leaf kind for the commonest operand shapes (see Node::Kind). Equality
  // is symmetric in the runtime semantics (RtCompare), so `"lit" == var` becomes var == "lit".
  Node Specialise(Node n) const {
    switch (n.kind) {
      case Node::Kind::kTruth:
        if (IsVar(n.a)) n.kind = Node::Kind::kVarTruth;
        break;
      case Node::Kind::kCmp:
        if ((n.cmp == Op::kEq || n.cmp == Op::kNe) && IsStrConst(n.a) && IsVar(n.b)) {
          std::swap(n.a, n.b);
        }
        if ((n.cmp == Op::kEq || n.cmp == Op::kNe) && IsVar(n.a) && IsStrConst(n.b)) {
          n.kind = n.cmp == Op::kEq ? Node::Kind::kVarEqStr : Node::Kind::kVarNeStr;
        } else if (IsVar(n.a) && IsVar(n.b)) {
          n.kind = Node::Kind::kVarCmpVar;
        } else if (IsVar(n.a) && n.b.kind == Operand::Kind::kConst) {
          n.kind = Node::Kind::kVarCmpConst;
        }
        break;
      case Node::Kind::kIn:
        if (IsVar(n.a) && IsStrList(n.b)) {
          n.kind = Node::Kind::kVarInStrs;
        } else if (IsStrConst(n.a) && IsVar(n.b)) {
          n.kind = Node::Kind::kStrInVar;
        }
        break;
      default:
        break;
    }
    return n;
  }

  void Flatten(int i, NodeKind kind, std::vector<uint32_t>* kids) {
    const AstNode& n = ast_[i];
    if (n.kind == kind) {
      Flatten(n.lhs, kind, kids);
      Flatten(n.rhs, kind, kids);
    } else {
      kids->push_back(Lower(i));
    }
  }

  Operand Leaf(int i) {
    const AstNode& n = ast_[i];
    switch (n.kind) {
      case NodeKind::kConst: return Operand{Operand::Kind::kConst, Var::kUserId, n.arg};
      case NodeKind::kList: return Operand{Operand::Kind::kList, Var::kUserId, n.arg};
      case NodeKind::kVar: return Operand{Operand::Kind::kVar, n.var, n.arg};
      default: return Operand{Operand::Kind::kNode, Var::kUserId, Lower(i)};
    }
  }

  uint32_t Add(const Node& n) {
    pool_->nodes.push_back(n);
    return static_cast<uint32_t>(pool_->nodes.size() - 1);
  }

  const std::vector<AstNode>& ast_;
  ProgramPool* pool_;
};

// Appends the branch program of tree node `idx` to pool->steps; returns its entry step.
// on_true / on_false / on_notbool: where to continue for each result of the node (the
// semantics of Interpreter::Eval: And and Or treat a non-bool child as false, `!` of a
// non-bool is false). Children are threaded last to first so each knows its successor.
uint32_t Thread(ProgramPool* pool, uint32_t idx, uint32_t on_true, uint32_t on_false,
                uint32_t on_notbool) {
  const Node n = pool->nodes[idx];
  switch (n.kind) {
    case Node::Kind::kNot:
      return Thread(pool, n.a.idx, on_false, on_true, on_false);
    case Node::Kind::kAnd: {
      uint32_t next = on_true;
      for (uint32_t k = n.count; k-- > 0;) {
        next = Thread(pool, pool->children[n.first + k], next, on_false, on_false);
      }
      return next;
    }
    case Node::Kind::kOr: {
      uint32_t next = on_false;
      for (uint32_t k = n.count; k-- > 0;) {
        next = Thread(pool, pool->children[n.first + k], on_true, next, next);
      }
      return next;
    }
    default: {
      Step s;
      s.leaf = n;
      s.next[static_cast<int>(Truth::kFalse)] = on_false;
      s.next[static_cast<int>(Truth::kTrue)] = on_true;
      s.next[static_cast<int>(Truth::kNotBool)] = on_notbool;
      pool->steps.push_back(s);
      return static_cast<uint32_t>(pool->steps.size() - 1);
    }
  }
}

// The operand-resolved form of one step (FStep): a specialised op when every operand is a
// slot variable, a request attribute or a constant of the right shape, else kGeneric. Each case
// states why it equals the generic leaf (expr_run.h Leaf / RtCompare / RtIn).
FStep ResolveStep(const ProgramPool& pool, uint32_t index) {
  const Step& st = pool.steps[index];
  const Node& n = st.leaf;
  FStep f;
  f.next[0] = st.next[static_cast<int>(Truth::kFalse)];
  f.next[1] = st.next[static_cast<int>(Truth::kTrue)];
  auto is_var = [](const Operand& o) { return o.kind == Operand::Kind::kVar; };
  auto slot = [&](const Operand& o) { return is_var(o) ? SlotOf(o.var) : Slot{}; };
  auto is_attr = [&](const Operand& o) {
    return is_var(o) && (o.var == Var::kResourceAttr || o.var == Var::kCtxAttr);
  };
  auto set_a = [&](Slot s) { f.abase = s.base; f.aoff = s.off; };
  auto set_b = [&](Slot s) { f.bbase = s.base; f.boff = s.off; };
  auto set_attr = [&](const Operand& o) {
    f.abase = o.var == Var::kResourceAttr ? kBaseResourceAttrs : kBaseContextAttrs;
    f.arg2 = o.idx;
  };
  auto int_const = [&](const Operand& o) {
    return o.kind == Operand::Kind::kConst && pool.consts[o.idx].kind == RtValue::Kind::kInt;
  };
  const Slot sa = slot(n.a), sb = slot(n.b);
  switch (n.kind) {
    case Node::Kind::kVarTruth:  // a bool is never "not a bool"
      if (sa.rep == Rep::kBool) { f.op = FOp::kBool; set_a(sa); }
      break;
    case Node::Kind::kHas:
      if (sa.rep == Rep::kStr) { f.op = FOp::kStrHas; set_a(sa); }
      else if (sa.rep == Rep::kIntOpt) { f.op = FOp::kIntOptHas; set_a(sa); }
      else if (is_attr(n.a)) { f.op = FOp::kAttrHas; set_attr(n.a); }
      break;
    case Node::Kind::kVarEqStr:
    case Node::Kind::kVarNeStr: {
      // StrConstEq: equal iff the value is a string with the constant's bytes. A slot string is
      // never "" (that is absent), so the constant must be non-empty for the length test alone
      // to rule out an absent value.
      const bool eq = n.kind == Node::Kind::kVarEqStr;
      if (sa.rep == Rep::kStr && pool.consts[n.b.idx].n != 0) {
        f.op = eq ? FOp::kStrEqC : FOp::kStrNeC;
        set_a(sa);
        f.arg = n.b.idx;
      } else if (is_attr(n.a)) {
        f.op = eq ? FOp::kAttrEqC : FOp::kAttrNeC;
        set_attr(n.a);
        f.arg = n.b.idx;
      }
      break;
    }
    case Node::Kind::kVarInStrs:  // false unless a string equal to an item
      if (sa.rep == Rep::kStr) { f.op = FOp::kStrInC; set_a(sa); f.arg = n.b.idx; }
      else if (is_attr(n.a)) { f.op = FOp::kAttrInC; set_attr(n.a); f.arg = n.b.idx; }
      break;
    case Node::Kind::kStrInVar:  // a list slot is always a string list
      if (sb.rep == Rep::kList) { f.op = FOp::kCInList; set_a(sb); f.arg = n.a.idx; }
      break;
    case Node::Kind::kVarCmpVar:
      if (n.cmp == Op::kEq || n.cmp == Op::kNe) {
        // Both strings: byte equality; either absent: only != holds; a present non-string
        // attribute never equals a string. == and != are symmetric, and neither kind of load
        // can fail, so the operands may be swapped.
        const bool eq = n.cmp == Op::kEq;
        if (sa.rep == Rep::kStr && sb.rep == Rep::kStr) {
          f.op = eq ? FOp::kStrEqStr : FOp::kStrNeStr;
          set_a(sa);
          set_b(sb);
        } else if (is_attr(n.a) && sb.rep == Rep::kStr) {
          f.op = eq ? FOp::kAttrEqStr : FOp::kAttrNeStr;
          set_attr(n.a);
          set_b(sb);
        } else if (sa.rep == Rep::kStr && is_attr(n.b)) {
          f.op = eq ? FOp::kAttrEqStr : FOp::kAttrNeStr;
          set_attr(n.b);
          set_b(sa);
        }
      }
      if (f.op == FOp::kGeneric && sa.rep == Rep::kInt && sb.rep == Rep::kInt) {
        f.op = FOp::kIntCmpInt;  // two present ints: integer order
        f.cmp = n.cmp;
        set_a(sa);
        set_b(sb);
      }
      break;
    case Node::Kind::kVarCmpConst:
      if ((sa.rep == Rep::kInt || sa.rep == Rep::kIntOpt) && int_const(n.b)) {
        f.op = sa.rep == Rep::kInt ? FOp::kIntCmpC : FOp::kIntOptCmpC;  // absent: only !=
        f.cmp = n.cmp;
        set_a(sa);
        f.arg = n.b.idx;
      }
      break;
    case Node::Kind::kIn:  // RtIn: absent is in nothing; a string against a string list
      if (sa.rep == Rep::kStr && sb.rep == Rep::kList) {
        f.op = FOp::kStrInList;
        set_a(sa);
        set_b(sb);
      }
      break;
    default:
      break;
  }
  if (f.op == FOp::kGeneric) {  // the step whose Node to run, and where a non-bool goes
    f.arg = index;
    f.arg2 = st.next[static_cast<int>(Truth::kNotBool)];
  }
  return f;
}

// Appends the FStep of every step added since the last call.
void ResolveSteps(ProgramPool* pool) {
  for (size_t i = pool->fsteps.size(); i < pool->steps.size(); ++i) {
    pool->fsteps.push_back(ResolveStep(*pool, static_cast<uint32_t>(i)));
  }
}

}  // namespace

bool CompileExpr(std::string_view text, size_t max_depth, ProgramPool* pool, Program* out,
                 std::vector<ExprError>* errors) {
  if (text.size() > kMaxExprBytes) {
    errors->push_back({0, "expression too long (" + std::to_string(text.size()) +
                              " bytes, limit " + std::to_string(kMaxExprBytes) + ")"});
    return false;
  }
  Parser parser(text, max_depth, pool, errors);
  int root = parser.ParseAll();
  if (root < 0) return false;
  const AstNode& r = parser.nodes()[root];
  if (r.type != Type::kBool && r.type != Type::kDyn) {
    errors->push_back({r.offset, std::string("type error: a condition must be bool, got ") +
                                     TypeName(r.type)});
    return false;
  }
  Lowerer lowerer(parser.nodes(), pool);
  out->root = lowerer.Lower(root);
  out->steps_begin = static_cast<uint32_t>(pool->steps.size());
  out->entry = Thread(pool, out->root, kStepAccept, kStepReject, kStepReject);
  out->steps_end = static_cast<uint32_t>(pool->steps.size());
  ResolveSteps(pool);
  out->present = true;
  out->uses_action = false;
  for (const AstNode& n : parser.nodes()) {
    if ((n.kind == NodeKind::kVar || n.kind == NodeKind::kHas) &&
        (n.var == Var::kActionName || n.var == Var::kActionScope)) {
      out->uses_action = true;
    }
  }
  return true;
}

bool Run(const ProgramPool& pool, const Program& program, VarSource& vars, bool* error) noexcept {
  return RunProgram(pool, program, vars, error);
}

bool RunTree(const ProgramPool& pool, const Program& program, VarSource& vars,
             bool* error) noexcept {
  if (!program.present) return true;
  Truth t = Interpreter<VarSource>(pool, vars).Eval(program.root);
  if (t == Truth::kError) *error = true;
  return t == Truth::kTrue;
}

}  // namespace gatehouse::policy::internal
