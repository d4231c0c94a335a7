//! A second open of the same directory, in this process or another, gets
//! Locked, never Corruption, and the first handle keeps working.
mod common;
use common::*;
use keyval::{Db, Error};
use std::process::{Command, Stdio};

#[test]
fn second_open_in_process_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("a", "1").expect("set");
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(Error::Locked(_))
    ));
    db.set("b", "2").expect("first handle still works");
    db.close().expect("close");
    let db = Db::open(dir.path(), small_opts()).expect("open after close");
    assert_eq!(db.len().expect("len"), 2);
}

/// Child-process entry point, run by the parent with `--ignored`.
#[test]
#[ignore = "child process entry point"]
fn lock_child() {
    // Child mode: hold the store open until stdin closes.
    let Ok(dir) = std::env::var("KEYVAL_LOCK_CHILD") else {
        return;
    };
    let db = Db::open(&dir, small_opts()).expect("child open");
    println!("OPEN");
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    drop(db);
}

#[test]
fn second_open_from_another_process_is_locked() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "lock_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KEYVAL_LOCK_CHILD", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("OPEN") {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "child exited early"
        );
    }
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(Error::Locked(_))
    ));
    drop(child.stdin.take());
    child.wait().expect("wait");
    Db::open(dir.path(), small_opts()).expect("free after child exits");
}
