// An in-memory Store (std::map tables behind the same KV interface as LMDB), for tests and
// fuzzers. Same semantics as the LMDB store — same write functions, group commit, change log,
// snapshots — but nothing is persisted and reads take a short mutex to pick up the snapshot.
//
// Thread-safety: as Store (store.h).
#ifndef GATEHOUSE_STORE_MEMORY_STORE_H_
#define GATEHOUSE_STORE_MEMORY_STORE_H_

#include <memory>

#include "store/store.h"

namespace gatehouse::store {

// Opens an empty in-memory store. options.path, map_size, durable and max_readers are ignored.
Status OpenMemoryStore(const Options& options, std::unique_ptr<Store>* out);

}  // namespace gatehouse::store

#endif  // GATEHOUSE_STORE_MEMORY_STORE_H_
