//! C ABI (see include/keyval.h).
