// The deterministic write functions: every write the store makes is ApplyWrite (or ApplyImport)
// over a KvTxn. Given the same prior state, request and inputs (clock value, random bytes,
// revision), they make the same changes — so any backend, or a replica replaying the inputs,
// reaches the same state. All ten invariants of shared/spec/model.md are enforced here.
//
// Thread-safety: stateless; the KvTxn is used by the calling (writer) thread only.
#ifndef GATEHOUSE_STORE_INTERNAL_APPLY_H_
#define GATEHOUSE_STORE_INTERNAL_APPLY_H_

#include <cstdint>
#include <string>

#include "store/internal/kv.h"
#include "store/store.h"

namespace gatehouse::store::internal {

struct ApplyInputs {
  uint64_t rev = 0;    // revision this write commits as (previous + 1)
  int64_t now = 0;     // clock value, unix seconds
  std::string random;  // 32 random bytes when NeedsRandom(op), else empty
};

// True iff the op consumes random bytes (it mints an invitation token).
bool NeedsRandom(std::string_view op);

// Applies req. On success all changes, the change record of inputs.rev and result fields are
// written and Ok is returned. On refusal a non-ok Status is returned and the caller must discard
// the (nested) transaction: partial changes may have been made.
// REQUIRES: the caller puts Table::kMeta "rev" itself.
Status ApplyWrite(KvTxn& txn, const Options& options, const WriteRequest& req,
                  const ApplyInputs& in, WriteResult* result);

// Applies a batch of import records as one revision (one summary change record).
// Same contract as ApplyWrite on refusal. *memberships counts org + workspace memberships.
Status ApplyImport(KvTxn& txn, const Options& options, const ImportRecord* records, size_t n,
                   uint64_t rev, int64_t now, uint64_t* memberships);

// Validation shared with tests: ids are 1..128 bytes of UTF-8 without control characters.
Status CheckId(std::string_view field, std::string_view value);

}  // namespace gatehouse::store::internal

#endif  // GATEHOUSE_STORE_INTERNAL_APPLY_H_
