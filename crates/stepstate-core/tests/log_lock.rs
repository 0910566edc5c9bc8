//! The store directory lock: exclusive, names its holder, released on drop and when the
//! holding process dies.

mod common;

use std::path::Path;
use std::process::Command;

use common::TempDir;
use stepstate_core::log::DirLock;

#[test]
fn a_second_acquire_fails_with_locked_and_names_our_pid() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("second");
    let lock = DirLock::acquire(&dir.0).unwrap();
    let content = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(content.trim(), std::process::id().to_string());
    let mode = std::fs::metadata(lock.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let err = DirLock::acquire(&dir.0).unwrap_err();
    assert_eq!(err.code(), "LOCKED");
    assert!(
        err.to_string()
            .contains(&format!("process {}", std::process::id())),
        "{err}"
    );
}

#[test]
fn the_lock_is_released_on_drop() {
    let dir = TempDir::new("drop");
    let lock = DirLock::acquire(&dir.0).unwrap();
    drop(lock);
    let again = DirLock::acquire(&dir.0).unwrap();
    drop(again);
}

#[test]
fn a_lock_file_left_by_a_dead_process_does_not_block() {
    let dir = TempDir::new("dead");
    // A process that exits right away: its pid in a LOCK file nobody holds.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    std::fs::write(dir.0.join("LOCK"), format!("{dead_pid}\n")).unwrap();
    let lock = DirLock::acquire(&dir.0).unwrap();
    let content = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(content.trim(), std::process::id().to_string());
}

const CHILD_ENV: &str = "STEPSTATE_LOCK_CHILD";

#[test]
fn a_lock_held_by_another_process_names_it_and_is_released_when_it_is_killed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // In the child: hold the lock until killed (30 s at most).
        let _lock = DirLock::acquire(Path::new(&dir)).unwrap();
        println!("locked");
        std::thread::sleep(std::time::Duration::from_secs(30));
        return;
    }
    let dir = TempDir::new("other");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_lock_held_by_another_process_names_it_and_is_released_when_it_is_killed",
            "--nocapture",
        ])
        .env(CHILD_ENV, &dir.0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|line| line.unwrap().contains("locked")));
    let err = DirLock::acquire(&dir.0).unwrap_err();
    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    assert_eq!(err.code(), "LOCKED");
    assert!(
        err.to_string().contains(&format!("process {}", child.id())),
        "{err}"
    );
    // The kernel released the dead child's lock; its pid is still in the file.
    let lock = DirLock::acquire(&dir.0).unwrap();
    let content = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(content.trim(), std::process::id().to_string());
}
