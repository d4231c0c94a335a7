//! openraft's own storage test suite against the KeyVal adapter.

#![allow(clippy::result_large_err)] // openraft's StorageError

use keyval::Options;
use keyval_openraft::{open, LogStore, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = Options {
            segment_size: 64 << 10,
            ..Options::default()
        };
        let (log, sm) = open(dir.path(), opts)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError<u64>> {
    Suite::test_all(Builder)
}
