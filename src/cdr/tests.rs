use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::*;
use crate::config::{CdrConfig, NumberPolicy};

fn record(call_id: &str) -> CallRecord {
    let setup = UNIX_EPOCH + Duration::from_millis(1_714_566_896_789);
    let answer = setup + Duration::from_millis(2_500);
    let end = answer + Duration::from_millis(61_234);
    CallRecord {
        call_id: call_id.to_owned(),
        tenant: "customer1.sbc.example.test".to_owned(),
        trunk: "cc1".to_owned(),
        direction: CallDirection::TeamsToTrunk,
        from: Some("+14255550123".to_owned()),
        to: Some("+4930123456789".to_owned()),
        teams_call_id: Some("a1b2@teams".to_owned()),
        trunk_call_id: Some("c3d4@sbc".to_owned()),
        setup_time: setup,
        answer_time: Some(answer),
        end_time: end,
        duration_s: CallRecord::talk_seconds(Some(answer), end),
        status: 200,
        end_reason: "bye".to_owned(),
        ended_by: EndedBy::Trunk,
        media: Some(MediaRecord {
            packets_teams_to_trunk: 3000,
            bytes_teams_to_trunk: 516_000,
            lost_teams_to_trunk: 2,
            packets_trunk_to_teams: 2990,
            bytes_trunk_to_teams: 514_280,
            lost_trunk_to_teams: 0,
        }),
        transfers: Vec::new(),
    }
}

fn config(path: &Path, numbers: NumberPolicy) -> CdrConfig {
    CdrConfig {
        path: Some(path.to_owned()),
        numbers,
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes `records` through a writer with `numbers` and returns the lines.
fn written(numbers: NumberPolicy, records: Vec<CallRecord>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    let w = CdrWriter::start(&config(&path, numbers)).unwrap();
    for r in records {
        w.write(r);
    }
    w.stop();
    lines(&path)
}

#[test]
fn record_is_one_json_line_with_every_field() {
    let out = written(NumberPolicy::Full, vec![record("00ff")]);
    assert_eq!(out.len(), 1);
    let want = serde_json::json!({
        "call_id": "00ff",
        "tenant": "customer1.sbc.example.test",
        "trunk": "cc1",
        "direction": "teams-to-trunk",
        "from": "+14255550123",
        "to": "+4930123456789",
        "teams_call_id": "a1b2@teams",
        "trunk_call_id": "c3d4@sbc",
        "setup_time": "2024-05-01T12:34:56.789Z",
        "answer_time": "2024-05-01T12:34:59.289Z",
        "end_time": "2024-05-01T12:36:00.523Z",
        "duration_s": 61.234,
        "status": 200,
        "end_reason": "bye",
        "ended_by": "trunk",
        "media": {
            "packets_teams_to_trunk": 3000,
            "bytes_teams_to_trunk": 516000,
            "lost_teams_to_trunk": 2,
            "packets_trunk_to_teams": 2990,
            "bytes_trunk_to_teams": 514280,
            "lost_trunk_to_teams": 0
        }
    });
    assert_eq!(out[0], want);
}

#[test]
fn unanswered_call_has_null_answer_time_and_zero_duration() {
    let mut r = record("01");
    r.direction = CallDirection::TrunkToTeams;
    r.answer_time = None;
    r.duration_s = CallRecord::talk_seconds(None, r.end_time);
    r.status = 486;
    r.end_reason = "rejected".to_owned();
    r.ended_by = EndedBy::Teams;
    r.media = None;
    let out = written(NumberPolicy::Full, vec![r]);
    let line = &out[0];
    assert_eq!(line["direction"], "trunk-to-teams");
    assert_eq!(line["answer_time"], Value::Null);
    assert_eq!(line["duration_s"], 0.0);
    assert_eq!(line["status"], 486);
    assert_eq!(line["ended_by"], "teams");
    assert_eq!(line["media"], Value::Null);
}

#[test]
fn ended_by_sbc_serializes_as_sbc() {
    let mut r = record("02");
    r.ended_by = EndedBy::Sbc;
    r.end_reason = "media-timeout".to_owned();
    let out = written(NumberPolicy::Full, vec![r]);
    assert_eq!(out[0]["ended_by"], "sbc");
    assert_eq!(out[0]["end_reason"], "media-timeout");
}

#[test]
fn masked_policy_masks_both_numbers_in_the_file() {
    let out = written(NumberPolicy::Masked, vec![record("03")]);
    assert_eq!(out[0]["from"], "+1425*****23");
    assert_eq!(out[0]["to"], "+4930*******89");
}

#[test]
fn a_transfer_is_in_the_record_with_its_target_as_numbers_allows() {
    let mut r = record("05");
    let at = r.answer_time.unwrap() + Duration::from_secs(30);
    r.transfers = vec![
        TransferRecord {
            time: at,
            requested_by: TransferredBy::Trunk,
            target: Some("+4930999888777".to_owned()),
            status: 486,
            completed: false,
            replaced_call_id: None,
            new_call_id: None,
        },
        TransferRecord {
            time: at + Duration::from_secs(5),
            requested_by: TransferredBy::Trunk,
            target: Some("+4930999888666".to_owned()),
            status: 200,
            completed: true,
            replaced_call_id: Some("c3d4@sbc".to_owned()),
            new_call_id: Some("e5f6@sbc".to_owned()),
        },
    ];
    let full = written(NumberPolicy::Full, vec![r.clone()]);
    assert_eq!(
        full[0]["transfers"][1],
        serde_json::json!({
            "time": "2024-05-01T12:35:34.289Z",
            "requested_by": "trunk",
            "target": "+4930999888666",
            "status": 200,
            "completed": true,
            "replaced_call_id": "c3d4@sbc",
            "new_call_id": "e5f6@sbc"
        })
    );
    assert_eq!(full[0]["transfers"][0]["completed"], false);
    let masked = written(NumberPolicy::Masked, vec![r.clone()]);
    assert_eq!(masked[0]["transfers"][0]["target"], "+4930*******77");
    let omitted = written(NumberPolicy::Omit, vec![r]);
    assert_eq!(omitted[0]["transfers"][1]["target"], Value::Null);
    // A call without transfers has no such key (record_is_one_json_line_with_every_field).
}

#[test]
fn omit_policy_writes_no_number() {
    let out = written(NumberPolicy::Omit, vec![record("04")]);
    assert_eq!(out[0]["from"], Value::Null);
    assert_eq!(out[0]["to"], Value::Null);
    let text = out[0].to_string();
    assert!(
        !text.contains("4255550123") && !text.contains("30123456789"),
        "{text}"
    );
}

#[test]
fn every_record_written_before_stop_is_in_the_file_in_order() {
    let records = (0..500).map(|i| record(&format!("{i:04x}"))).collect();
    let out = written(NumberPolicy::Full, records);
    assert_eq!(out.len(), 500);
    for (i, line) in out.iter().enumerate() {
        assert_eq!(line["call_id"], format!("{i:04x}"));
    }
}

#[test]
fn writer_appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let w = CdrWriter::start(&config(&path, NumberPolicy::Full)).unwrap();
    w.write(record("05"));
    w.stop();
    let out = lines(&path);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["earlier"], true);
    assert_eq!(out[1]["call_id"], "05");
}

#[test]
fn clones_share_one_file_and_the_last_drop_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    let w = CdrWriter::start(&config(&path, NumberPolicy::Full)).unwrap();
    let w2 = w.clone();
    w.write(record("06"));
    w.stop();
    w2.write(record("07"));
    drop(w2);
    let ids: Vec<_> = lines(&path).iter().map(|l| l["call_id"].clone()).collect();
    assert_eq!(ids, ["06", "07"]);
}

#[test]
fn disabled_writer_discards_records_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = CdrWriter::start(&CdrConfig::default()).unwrap();
    assert!(!w.is_enabled());
    w.write(record("08"));
    w.reopen();
    w.stop();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn start_fails_when_the_directory_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope/cdr.jsonl");
    let err = CdrWriter::start(&config(&path, NumberPolicy::Full)).unwrap_err();
    assert!(
        matches!(&err, CdrError::Open { path: p, .. } if *p == path),
        "{err}"
    );
    assert!(err.to_string().contains("nope/cdr.jsonl"), "{err}");
}

#[cfg(unix)]
#[test]
fn file_is_created_without_world_access() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    CdrWriter::start(&config(&path, NumberPolicy::Full))
        .unwrap()
        .stop();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o007, 0, "mode {mode:o}");
}

#[test]
fn full_queue_drops_the_record_and_counts_it() {
    let recorder = crate::metrics::builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    let (open_gate, gate) = std::sync::mpsc::channel();
    let w = metrics::with_local_recorder(&recorder, || {
        crate::metrics::describe();
        CdrWriter::start_with(&config(&path, NumberPolicy::Full), 2, Some(gate)).unwrap()
    });
    // The thread waits at the gate: two records fill the queue, the third finds it full.
    for i in 0..3 {
        w.write(record(&format!("{i}")));
    }
    let text = handle.render();
    assert!(
        text.contains(r#"drawbridge_cdr_dropped_total{reason="queue_full"} 1"#),
        "{text}"
    );
    open_gate.send(()).unwrap();
    w.stop();
    let ids: Vec<_> = lines(&path).iter().map(|l| l["call_id"].clone()).collect();
    assert_eq!(ids, ["0", "1"]);
    let text = handle.render();
    assert!(text.contains("drawbridge_cdr_written_total 2"), "{text}");
}

#[test]
fn reopen_after_rename_writes_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.jsonl");
    let rotated = dir.path().join("cdr.jsonl.1");
    let w = CdrWriter::start(&config(&path, NumberPolicy::Full)).unwrap();
    w.write(record("before"));
    // logrotate's `create` mode: rename, then signal.
    std::fs::rename(&path, &rotated).unwrap();
    w.reopen();
    w.write(record("after"));
    w.stop();
    let old: Vec<_> = lines(&rotated)
        .iter()
        .map(|l| l["call_id"].clone())
        .collect();
    let new: Vec<_> = lines(&path).iter().map(|l| l["call_id"].clone()).collect();
    assert_eq!(old, ["before"]);
    assert_eq!(new, ["after"]);
}

#[test]
fn record_written_while_the_file_cannot_be_opened_is_counted_and_later_ones_recover() {
    let recorder = crate::metrics::builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cdr");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("cdr.jsonl");
    let w = metrics::with_local_recorder(&recorder, || {
        CdrWriter::start(&config(&path, NumberPolicy::Full)).unwrap()
    });
    // The directory disappears; a reopen then finds nowhere to write.
    std::fs::remove_dir_all(&sub).unwrap();
    w.reopen();
    w.write(record("lost"));
    w.sync();
    // Directory back: the next record opens the file again.
    std::fs::create_dir(&sub).unwrap();
    w.write(record("kept"));
    w.stop();
    let ids: Vec<_> = lines(&path).iter().map(|l| l["call_id"].clone()).collect();
    assert_eq!(ids, ["kept"]);
    let text = handle.render();
    assert!(
        text.contains(r#"drawbridge_cdr_dropped_total{reason="write_error"} 1"#),
        "{text}"
    );
}

#[test]
fn media_record_takes_received_packets_bytes_and_losses_per_direction() {
    let mut s = crate::media::SessionStats::default();
    s.teams_to_trunk.packets_in = 10;
    s.teams_to_trunk.bytes_in = 1720;
    s.teams_to_trunk.packets_out = 9;
    s.teams_to_trunk.lost = 1;
    s.trunk_to_teams.packets_in = 20;
    s.trunk_to_teams.bytes_in = 3440;
    s.trunk_to_teams.lost = 3;
    let m = MediaRecord::from_stats(&s);
    assert_eq!(
        m,
        MediaRecord {
            packets_teams_to_trunk: 10,
            bytes_teams_to_trunk: 1720,
            lost_teams_to_trunk: 1,
            packets_trunk_to_teams: 20,
            bytes_trunk_to_teams: 3440,
            lost_trunk_to_teams: 3,
        }
    );
}

#[test]
fn wall_anchor_maps_earlier_and_later_instants() {
    let now = crate::clock::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let a = WallAnchor::new(now, wall);
    assert_eq!(
        a.system_time(now - Duration::from_secs(90)),
        wall - Duration::from_secs(90)
    );
    assert_eq!(
        a.system_time(now + Duration::from_millis(5)),
        wall + Duration::from_millis(5)
    );
    assert_eq!(a.system_time(now), wall);
}

#[test]
fn talk_seconds_is_zero_unanswered_or_when_the_clock_stepped_back() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    assert_eq!(CallRecord::talk_seconds(None, t), 0.0);
    assert_eq!(
        CallRecord::talk_seconds(Some(t + Duration::from_secs(1)), t),
        0.0
    );
    assert_eq!(
        CallRecord::talk_seconds(Some(t), t + Duration::from_millis(1500)),
        1.5
    );
}
