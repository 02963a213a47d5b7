//! `drawbridge check-config`, run as the operator runs it: the example config passes, and each
//! broken config in tests/configs/ is refused with exit 1 and `FILE:LINE:COL: reason`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn check_config(file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drawbridge"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn example_config_passes_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The example points at the development certificates that `drawbridge run` makes.
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(
        &root.join("certs/dev"),
        "sbc.example.test",
    )
    .unwrap();
    let (code, stdout, stderr) = check_config(&root.join("config/drawbridge.example.toml"));
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("ok: 2 tenants, 2 trunks, 3 Teams proxies"),
        "{stdout}"
    );
}

#[test]
fn each_broken_config_fails_with_file_line_and_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let work = tempfile::tempdir().unwrap();
    drawbridge::sip::transport::dev_certs::ensure_dev_certs(work.path(), "sbc.example.test")
        .unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!(
                    "{} lacks an '# expect: LINE:COL: reason' first line",
                    path.display()
                )
            });
        let (place, fragment) = expect.split_at(expect.find(": ").unwrap());
        let fragment = &fragment[2..];
        let target = work.path().join(path.file_name().unwrap());
        std::fs::write(&target, &text).unwrap();
        let (code, _, stderr) = check_config(&target);
        assert_eq!(
            code,
            1,
            "{} should be refused; stderr: {stderr}",
            path.display()
        );
        let want = format!("{}:{place}: ", target.display());
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| {
                panic!(
                    "{}: expected a line starting {want:?}, got:\n{stderr}",
                    path.display()
                )
            });
        // The expectation names the key and a piece of the reason, e.g. `tls.key: does not match`.
        for part in fragment.split(": ") {
            assert!(
                line.contains(part),
                "{}: {line:?} lacks {part:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} broken configs found");
}
